import { RequestMethod } from '@nestjs/common';
import { Params } from 'nestjs-pino';

import { REDACTED, SECRET_KEYS, redactHeaders, redactText } from '../common/redact';
import { AppConfig } from '../config/app-config';

/**
 * Paths pino replaces with "[redacted]": the secret and personal keys of common/redact.ts, at the top
 * of a logged object and one level down. Request headers are never logged (see the req serializer);
 * headers logged by hand go through the allow-list (the `headers` serializer).
 */
export const REDACT_PATHS = SECRET_KEYS.flatMap((key) => [key, `*.${key}`]);

/** Strings in a log call (the message, an `err` text) lose secrets and e-mail addresses. */
const redactArg = (arg: unknown): unknown => (typeof arg === 'string' ? redactText(arg) : arg);

/**
 * JSON logs (pino) with the request id as the correlation id, carried into jobs.
 *
 * The webhook door is left out of pino-http: per-request child loggers were ~15 % of the api's
 * CPU under load (bench profile). The door logs refusals itself, with the correlation id, and
 * every accepted delivery is on record as its event row (correlation_id) and in the metrics.
 */
export function loggerOptions(config: AppConfig): Params {
  return {
    exclude: [{ method: RequestMethod.POST, path: 'webhooks/*path' }],
    pinoHttp: {
      level: config.env.LOG_LEVEL,
      redact: { paths: REDACT_PATHS, censor: REDACTED },
      hooks: {
        logMethod(args, method) {
          method.apply(this, args.map(redactArg) as Parameters<typeof method>);
        },
      },
      base: { role: config.role },
      customAttributeKeys: { reqId: 'correlationId' },
      autoLogging: { ignore: (req) => /^\/(health|metrics)/.test(req.url ?? '') },
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({
          id: req.id,
          method: req.method,
          url: redactText(req.url),
        }),
        headers: (headers: Record<string, unknown>) => redactHeaders(headers),
        err: (err: unknown) =>
          typeof err === 'string'
            ? redactText(err)
            : err instanceof Error
              ? {
                  type: err.name,
                  message: redactText(err.message),
                  stack: redactText(err.stack ?? ''),
                }
              : err,
      },
    },
  };
}
