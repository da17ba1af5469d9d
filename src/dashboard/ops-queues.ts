import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter as BullBoardAdapter } from '@bull-board/fastify';
import { getQueueToken } from '@nestjs/bullmq';
import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { Queue } from 'bullmq';
import { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

import { roleAtLeast } from '../admin/tokens.service';
import { AppConfig } from '../config/app-config';
import { QueueName } from '../queue/queue-name.enum';
import { LOGIN_PATH } from './dashboard.filter';
import { DashboardRequest } from './dashboard.guard';
import { LANG_COOKIE, pickLang } from './i18n/i18n';
import { page } from './page';
import { DashboardSessionService, SESSION_COOKIE } from './session.service';

export const QUEUES_PATH = '/dashboard/queues';

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/**
 * Bull Board (queue internals) at /dashboard/queues, for the admin role only. It is a Fastify
 * plugin, not a Nest controller, so the DashboardGuard cannot reach it: an onRequest hook in the
 * plugin's own scope does the same checks on every one of its routes (pages, API, static files):
 * a live dashboard session (else the login form), the admin role (else 403). Its API's actions
 * (retry, clean, pause…) are fetch() calls of its own UI without our CSRF token: the session
 * cookie is SameSite=Strict, and a state-changing request must also come from this origin
 * (Sec-Fetch-Site / Origin), so no other site can make them.
 */
export async function registerQueueBoard(app: NestFastifyApplication): Promise<void> {
  const sessions = app.get(DashboardSessionService, { strict: false });
  const publicHost = new URL(app.get(AppConfig, { strict: false }).publicBaseUrl).host;
  const queues = Object.values(QueueName).map(
    (name) => new BullMQAdapter(app.get<Queue>(getQueueToken(name), { strict: false })),
  );
  const board = new BullBoardAdapter();
  board.setBasePath(QUEUES_PATH);
  createBullBoard({
    queues,
    serverAdapter: board,
    options: { uiConfig: { boardTitle: 'closeloop queues' } },
  });
  const root = app.getHttpAdapter().getInstance() as unknown as FastifyInstance;

  const guard = async (req: FastifyRequest, reply: FastifyReply) => {
    const session = await sessions.resolve(req.cookies?.[SESSION_COOKIE]);
    if (!session) {
      const next = req.method === 'GET' ? `?next=${encodeURIComponent(QUEUES_PATH)}` : '';
      return reply.redirect(`${LOGIN_PATH}${next}`, req.method === 'GET' ? 302 : 303);
    }
    const dreq = req as DashboardRequest;
    dreq.dashboard = session;
    dreq.lang = pickLang(req.cookies?.[LANG_COOKIE], req.headers['accept-language']);
    const crossSite =
      !SAFE_METHODS.has(req.method) &&
      ((req.headers['sec-fetch-site'] !== undefined &&
        req.headers['sec-fetch-site'] !== 'same-origin') ||
        (req.headers.origin !== undefined && !sameOrigin(req.headers.origin, req, publicHost)));
    const allowed = roleAtLeast(session.actor.role, 'admin');
    if (!allowed || crossSite) {
      const model = page(
        dreq,
        { title: 'error.title' },
        {
          message: allowed ? 'error.403.csrf' : 'ops.queues.forbidden',
          messageParams: { role: 'admin' },
          status: 403,
        },
      );
      const html = await (
        root as unknown as { view: (t: string, d: unknown) => Promise<string> }
      ).view('error', model);
      return reply
        .code(403)
        .header('content-type', 'text/html; charset=utf-8')
        .header('cache-control', 'no-store')
        .send(html);
    }
    // Its Content-Security-Policy and the other security headers: src/security/security-headers.ts.
    reply.header('cache-control', 'no-store');
  };

  await app.register(async (scope: FastifyInstance) => {
    scope.addHook('onRequest', guard);
    await scope.register(board.registerPlugin() as never, { prefix: QUEUES_PATH });
  }, {} as never);
}

/**
 * Whether a browser's Origin is this hub: the Host it asked for (X-Forwarded-Host only from a
 * proxy trusted through TRUST_PROXY), or PUBLIC_BASE_URL's host (a proxy that rewrites Host).
 */
function sameOrigin(origin: string, req: FastifyRequest, publicHost: string): boolean {
  try {
    const host = new URL(origin).host;
    return host === req.host || host === publicHost;
  } catch {
    return false;
  }
}
