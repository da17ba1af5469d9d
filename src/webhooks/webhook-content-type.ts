import { FastifyInstance, FastifyRequest } from 'fastify';

import { WEBHOOK_PATH } from '../observability/error.filter';

const HELD = Symbol('closeloop:webhook-content-type');
type HoldingRequest = FastifyRequest & { [HELD]?: string };

/**
 * The webhook doors verify and read the raw bytes whatever the Content-Type says (CONTRACT §3; the
 * catch-all parser keeps their bodies raw). Fastify still answers 415 to a Content-Type it cannot
 * read as a media type (`""`, `garbage`, `a/b/c`, `application/json, text/plain`) before any parser
 * runs, so a correctly signed delivery would be refused over a header nothing reads. On the webhook
 * routes the header is held aside while Fastify reads the body, and put back before the door (which
 * stores it with the delivery's headers).
 */
export function ignoreWebhookContentType(fastify: FastifyInstance): void {
  fastify.addHook('onRequest', async (req: HoldingRequest) => {
    const type = req.headers['content-type'];
    if (type === undefined || !WEBHOOK_PATH.test(req.url)) return;
    req[HELD] = type;
    delete req.headers['content-type'];
  });
  fastify.addHook('preHandler', async (req: HoldingRequest) => {
    if (req[HELD] !== undefined) req.headers['content-type'] = req[HELD];
  });
}
