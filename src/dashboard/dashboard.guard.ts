import type {} from '@fastify/cookie';
import { CanActivate, ExecutionContext, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { FastifyRequest } from 'fastify';

import { roleAtLeast } from '../admin/tokens.service';
import { TokenRole } from '../generated/prisma/client';
import { LANG_COOKIE, Lang, pickLang } from './i18n/i18n';
import {
  DashboardSession,
  DashboardSessionService,
  SESSION_COOKIE,
  sameSecret,
} from './session.service';

const DASHBOARD_ROLE = Symbol('closeloop:dashboard-role');
const DASHBOARD_PUBLIC = Symbol('closeloop:dashboard-public');

/** The least role that may open a page or post an action (viewer ⊂ finance ⊂ admin); default viewer. */
export const DashboardRole = (role: TokenRole) => SetMetadata(DASHBOARD_ROLE, role);
/** Reachable without a session (login, language switch, assets). */
export const DashboardPublic = () => SetMetadata(DASHBOARD_PUBLIC, true);

export type DashboardRequest = FastifyRequest & {
  dashboard?: DashboardSession;
  lang?: Lang;
};

/** No live session: pages redirect to the login form. */
export class DashboardUnauthenticated extends Error {}

/** A live session that may not do this: a CSRF mismatch or a missing role. Answered with a 403 page. */
export class DashboardForbidden extends Error {
  constructor(
    readonly reason: 'csrf' | 'role',
    readonly role?: TokenRole,
  ) {
    super(reason === 'csrf' ? 'CSRF token mismatch' : `needs the ${role} role`);
  }
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** The CSRF token a form (`_csrf`) or an htmx request (`X-CSRF-Token`) sent. */
export function sentCsrf(req: FastifyRequest): string | undefined {
  const header = req.headers['x-csrf-token'];
  if (typeof header === 'string') return header;
  const body = req.body as Record<string, unknown> | undefined;
  const field = body && typeof body === 'object' ? body._csrf : undefined;
  return typeof field === 'string' ? field : undefined;
}

/**
 * Every dashboard route: picks the language, then (unless public) requires a live session,
 * a matching CSRF synchronizer token on every state-changing method, and the route's role.
 */
@Injectable()
export class DashboardGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly sessions: DashboardSessionService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const req = context.switchToHttp().getRequest<DashboardRequest>();
    req.lang = pickLang(req.cookies?.[LANG_COOKIE], req.headers['accept-language']);
    const targets = [context.getHandler(), context.getClass()];
    if (this.reflector.getAllAndOverride<boolean>(DASHBOARD_PUBLIC, targets)) return true;

    const session = await this.sessions.resolve(req.cookies?.[SESSION_COOKIE]);
    if (!session) throw new DashboardUnauthenticated();
    req.dashboard = session;
    if (!SAFE_METHODS.has(req.method) && !sameSecret(sentCsrf(req), session.csrfToken)) {
      throw new DashboardForbidden('csrf');
    }
    const need = this.reflector.getAllAndOverride<TokenRole>(DASHBOARD_ROLE, targets) ?? 'viewer';
    if (!roleAtLeast(session.actor.role, need)) throw new DashboardForbidden('role', need);
    return true;
  }
}
