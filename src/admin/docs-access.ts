import { NestFastifyApplication } from '@nestjs/platform-fastify';
import { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { PinoLogger } from 'nestjs-pino';

import { toErrorBody } from '../observability/error.filter';
import { AuthThrottleService } from '../security/auth-throttle.service';
import { authorizeBearer } from './auth.guard';
import { TokensService } from './tokens.service';

/** Every route SwaggerModule.setup('docs') makes: the UI and its assets, /docs-json, /docs-yaml. */
export const DOCS_ROUTE = /^\/docs(-json|-yaml)?(\/|$)/;

/**
 * DOCS_PUBLIC=false (CONTRACT §2, §7): the OpenAPI documents and the Swagger UI are served only to
 * an admin bearer token (ADMIN_TOKEN or an admin API token; revoked tokens refused), with the
 * admin API's answers otherwise: 401 without a usable token, 403 for a weaker role. Swagger's
 * routes are plain Fastify routes that no Nest guard reaches, so each gets an onRequest hook as it
 * is registered; call this before SwaggerModule.setup. Other routes are left untouched.
 */
export async function restrictDocsToAdmins(app: NestFastifyApplication): Promise<void> {
  const auth = {
    tokens: app.get(TokensService, { strict: false }),
    throttle: app.get(AuthThrottleService, { strict: false }),
  };
  const logger = await app.resolve(PinoLogger);
  logger.setContext('DocsAccess');
  const guard = async (req: FastifyRequest, reply: FastifyReply) => {
    try {
      await authorizeBearer(auth, req, reply, 'admin');
    } catch (err) {
      const { status, body } = toErrorBody(err, logger);
      return reply.code(status).header('cache-control', 'no-store').send(body);
    }
  };
  const fastify = app.getHttpAdapter().getInstance() as unknown as FastifyInstance;
  fastify.addHook('onRoute', (route) => {
    if (!DOCS_ROUTE.test(route.url)) return;
    const existing = route.onRequest ?? [];
    route.onRequest = [...(Array.isArray(existing) ? existing : [existing]), guard];
  });
}
