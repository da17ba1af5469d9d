import { RequestMethod } from '@nestjs/common';
import { Params } from 'nestjs-pino';

import { AppConfig } from '../config/app-config';

/**
 * Paths pino replaces with "[redacted]": credentials, signatures and personal data. Request
 * headers are never logged (see the req serializer); these guard objects logged by hand.
 */
export const REDACT_PATHS = [
  'headers.authorization',
  'headers.cookie',
  'token',
  'secret',
  'password',
  'email',
  'data.email',
  'data.acceptedBy',
  'data.customer',
];

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
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      base: { role: config.role },
      customAttributeKeys: { reqId: 'correlationId' },
      autoLogging: { ignore: (req) => /^\/(health|metrics)/.test(req.url ?? '') },
      serializers: {
        req: (req: { id: string; method: string; url: string }) => ({
          id: req.id,
          method: req.method,
          url: req.url,
        }),
      },
    },
  };
}
