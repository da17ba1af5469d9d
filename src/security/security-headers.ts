import fastifyHelmet, { FastifyHelmetOptions } from '@fastify/helmet';
import { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

type Directives = Record<string, string[]>;

/**
 * The dashboard (src/dashboard/views): its own stylesheet and scripts (htmx, dashboard.js) and
 * htmx's requests to the same origin; no inline script or style (htmx's indicator style is
 * switched off by the htmx-config meta tag in layout.eta), no frames, no plugins.
 */
export const DASHBOARD_CSP: Directives = {
  'default-src': ["'none'"],
  'script-src': ["'self'"],
  'style-src': ["'self'"],
  'img-src': ["'self'"],
  'connect-src': ["'self'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'base-uri': ["'none'"],
};

/**
 * Bull Board at /dashboard/queues (admin sessions only): a prebuilt React app that injects
 * <style> elements and inline style attributes, sets <base href>, and links the IBM Plex fonts
 * from Google Fonts. Its scripts and requests stay same-origin.
 */
export const QUEUE_BOARD_CSP: Directives = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'style-src': ["'self'", "'unsafe-inline'", 'https://fonts.googleapis.com'],
  'font-src': ["'self'", 'https://fonts.gstatic.com', 'data:'],
  'img-src': ["'self'", 'data:'],
  'connect-src': ["'self'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'base-uri': ["'self'"],
  'object-src': ["'none'"],
};

/** Swagger UI at /docs: its page has an inline <style>; icons are data: URIs; scripts same-origin. */
export const DOCS_CSP: Directives = {
  'default-src': ["'self'"],
  'script-src': ["'self'"],
  'style-src': ["'self'", "'unsafe-inline'"],
  'img-src': ["'self'", 'data:'],
  'connect-src': ["'self'"],
  'form-action': ["'self'"],
  'frame-ancestors': ["'none'"],
  'base-uri': ["'none'"],
  'object-src': ["'none'"],
};

/** Everything else answers JSON or text (admin API, webhooks, health, metrics): nothing to load. */
export const API_CSP: Directives = {
  'default-src': ["'none'"],
  'frame-ancestors': ["'none'"],
};

/** Sent only on requests that arrived over https (through a trusted proxy: TRUST_PROXY). */
export const HSTS = 'max-age=15552000';

const csp = (directives: Directives) => ({ useDefaults: false, directives });

const QUEUE_BOARD_ROUTE = /^\/dashboard\/queues(\/|$)/;
const DASHBOARD_ROUTE = /^\/dashboard(\/|$)/;
const DOCS_ROUTE = /^\/docs(-json|-yaml)?(\/|$)/;

/** The Content-Security-Policy of a route, by its path. */
export function policyOf(url: string): Directives {
  if (QUEUE_BOARD_ROUTE.test(url)) return QUEUE_BOARD_CSP;
  if (DASHBOARD_ROUTE.test(url)) return DASHBOARD_CSP;
  if (DOCS_ROUTE.test(url)) return DOCS_CSP;
  return API_CSP;
}

/**
 * The one place response security headers are set (docs/decisions/0012), on every route of every
 * role: @fastify/helmet's set (X-Content-Type-Options nosniff, X-Frame-Options DENY,
 * Referrer-Policy same-origin, Cross-Origin-Opener/Resource-Policy same-origin, …) plus a
 * Content-Security-Policy per kind of route (policyOf), attached to each route as it is added.
 * HSTS only on a request that came over https: the hub itself speaks plain HTTP, so that is a
 * TLS-terminating proxy trusted through TRUST_PROXY. Call before any route is registered.
 */
export async function registerSecurityHeaders(fastify: FastifyInstance): Promise<void> {
  const base: FastifyHelmetOptions = {
    global: true,
    contentSecurityPolicy: csp(API_CSP),
    frameguard: { action: 'deny' },
    referrerPolicy: { policy: 'same-origin' },
    hsts: false,
  };
  fastify.addHook('onRoute', (route) => {
    if (route.url.startsWith('/webhooks/')) {
      // The doors answer machines a few bytes of JSON: running helmet's dozen middlewares per
      // delivery cost the hot path ~9 % of the api's CPU (bench profile); the headers a JSON
      // answer needs are set at once, as constants.
      route.config = {
        ...(route.config ?? {}),
        helmet: { skipRoute: true },
      } as typeof route.config;
      route.onRequest = [...hooksOf(route.onRequest), jsonAnswerHeaders];
      return;
    }
    const directives = policyOf(route.url);
    if (directives === API_CSP) return;
    route.config = {
      ...(route.config ?? {}),
      helmet: { contentSecurityPolicy: csp(directives) },
    } as typeof route.config;
  });
  await fastify.register(fastifyHelmet, base);
  fastify.addHook('onRequest', (req, reply, done) => {
    if (req.protocol === 'https') reply.header('strict-transport-security', HSTS);
    done();
  });
}

/** What helmet sets on a JSON answer (API_CSP), as constant headers for the webhook doors. */
const JSON_ANSWER_HEADERS = {
  'content-security-policy': Object.entries(API_CSP)
    .map(([name, values]) => `${name} ${values.join(' ')}`)
    .join(';'),
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  'referrer-policy': 'same-origin',
};

function jsonAnswerHeaders(_req: FastifyRequest, reply: FastifyReply, done: () => void): void {
  reply.headers(JSON_ANSWER_HEADERS);
  done();
}

/** A route option's hooks as a list (Fastify takes one function or an array). */
function hooksOf<T>(hooks: T | T[] | undefined): T[] {
  return hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks];
}
