import { randomUUID } from 'node:crypto';
import { join } from 'node:path';

import fastifyCookie from '@fastify/cookie';

import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, NestFastifyApplication } from '@nestjs/platform-fastify';
import { DocumentBuilder, SwaggerModule } from '@nestjs/swagger';
import { Eta } from 'eta';
import { FastifyInstance } from 'fastify';
import { Logger } from 'nestjs-pino';

import { restrictDocsToAdmins } from './admin/docs-access';
import { parseFormBody } from './common/form-body';
import { WEBHOOK_PATH } from './observability/error.filter';
import { AppConfig } from './config/app-config';
import { registerQueueBoard } from './dashboard/ops-queues';
import { AppModule } from './roles/app.module';
import { AuthThrottleService } from './security/auth-throttle.service';
import { registerSecurityHeaders } from './security/security-headers';
import { trustProxyOption } from './security/trust-proxy';
import { ignoreWebhookContentType } from './webhooks/webhook-content-type';

export const BODY_LIMIT = 1024 * 1024; // 1 MiB (CONTRACT §3)

const DASHBOARD_PATH = /^\/dashboard(\/|\?|$)/;

/**
 * Builds the Nest application for the configured role. Both roles serve HTTP: api serves webhooks,
 * the admin API and docs; worker serves only health and metrics.
 */
export async function createApp(config: AppConfig): Promise<NestFastifyApplication> {
  const adapter = new FastifyAdapter({
    bodyLimit: BODY_LIMIT,
    // X-Forwarded-For/-Proto/-Host are believed only from the proxies TRUST_PROXY names (off by
    // default: anyone reaching the port could claim any client address). The client IP feeds the
    // auth throttle; the protocol decides HSTS. Cookies and HubSpot signatures use PUBLIC_BASE_URL.
    trustProxy: trustProxyOption(config.env.TRUST_PROXY),
    // One correlation id from request to job to provider call: X-Request-Id when a proxy sets one.
    genReqId: (raw: import('node:http').IncomingMessage) => {
      const given = raw.headers['x-request-id'];
      const id = typeof given === 'string' && /^[\w.-]{1,100}$/.test(given) ? given : randomUUID();
      (raw as { id?: string }).id = id;
      return id;
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(AppModule.forRole(config), adapter, {
    bufferLogs: true,
    bodyParser: false, // our own parser below; Nest's would parse webhook bodies before verification
  });
  app.useLogger(app.get(Logger));
  const fastify = app.getHttpAdapter().getInstance();

  // Webhook routes keep the raw bytes (signatures are computed over them, parsed after verifying);
  // every other route gets JSON parsed here.
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser(
    '*',
    { parseAs: 'buffer', bodyLimit: BODY_LIMIT },
    (req, body, done) => {
      if (WEBHOOK_PATH.test(req.url) || (body as Buffer).length === 0) return done(null, body);
      const type = String(req.headers['content-type'] ?? '');
      // The dashboard's HTML forms (docs/decisions/0006); nowhere else is a form body parsed.
      if (type.startsWith('application/x-www-form-urlencoded') && DASHBOARD_PATH.test(req.url)) {
        return done(null, parseFormBody((body as Buffer).toString('utf8')));
      }
      if (!type.includes('json')) return done(null, body);
      try {
        done(null, JSON.parse((body as Buffer).toString('utf8')));
      } catch {
        done(Object.assign(new Error('body is not valid JSON'), { statusCode: 400 }), undefined);
      }
    },
  );
  // ...whatever their Content-Type says, even one that is no media type (Fastify would answer 415).
  ignoreWebhookContentType(fastify as unknown as FastifyInstance);

  // Before any route: security headers on every answer, and the brake on failed token
  // authentications (docs/decisions/0012; /metrics and readiness details in every role).
  await registerSecurityHeaders(fastify as unknown as FastifyInstance);
  await app.get(AuthThrottleService).attach(fastify as unknown as FastifyInstance);

  if (config.runsApi) {
    // The dashboard (docs/decisions/0006): cookies and Eta templates from src/dashboard/views.
    await app.register(fastifyCookie);
    app.setViewEngine({
      engine: { eta: new Eta({ autoEscape: true, cache: true }) },
      templates: join(__dirname, 'dashboard', 'views'),
      production: true,
    });
    // Bull Board at /dashboard/queues (a Fastify plugin; admin sessions only, see ops-queues.ts).
    await registerQueueBoard(app);
    const doc = new DocumentBuilder()
      .setTitle('closeloop admin API')
      .setDescription(
        'Events, dead letters and tokens (CONTRACT §6). Bearer tokens: viewer, finance, admin.',
      )
      .addBearerAuth()
      .build();
    // DOCS_PUBLIC=false: the docs for admin tokens only (the hook must see Swagger's routes added).
    if (!config.env.DOCS_PUBLIC) await restrictDocsToAdmins(app);
    SwaggerModule.setup('docs', app, () => SwaggerModule.createDocument(app, doc));
  }
  return app;
}
