import { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

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
  // Route hooks on the webhook routes only, callback style: every other request skips them, and a
  // door delivery pays two plain calls rather than two promises (the door is the hot path).
  fastify.addHook('onRoute', (route) => {
    if (!route.url.startsWith('/webhooks/')) return; // /webhooks/referrals/:platform too
    route.onRequest = [...hooksOf(route.onRequest), holdContentType];
    route.preHandler = [...hooksOf(route.preHandler), restoreContentType];
  });
}

function holdContentType(req: HoldingRequest, _reply: FastifyReply, done: () => void): void {
  const type = req.headers['content-type'];
  if (type !== undefined) {
    req[HELD] = type;
    delete req.headers['content-type'];
  }
  done();
}

function restoreContentType(req: HoldingRequest, _reply: FastifyReply, done: () => void): void {
  if (req[HELD] !== undefined) req.headers['content-type'] = req[HELD];
  done();
}

/** A route option's hooks as a list (Fastify takes one function or an array). */
function hooksOf<T>(hooks: T | T[] | undefined): T[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks];
}
