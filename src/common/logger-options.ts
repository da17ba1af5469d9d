import { Params } from 'nestjs-pino';

import { AppConfig } from '../config/app-config';

/** Paths pino replaces with "[redacted]": credentials, signatures and personal data. */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["stripe-signature"]',
  'req.headers["webhook-signature"]',
  'req.headers["x-hubspot-signature-v3"]',
  'req.headers["x-hubspot-signature"]',
  'req.headers["x-docusign-signature-1"]',
  'req.headers["x-docusign-signature-2"]',
  'req.headers["x-docusign-signature-3"]',
  'res.headers["set-cookie"]',
  '*.email',
  '*.token',
  '*.password',
  '*.secret',
  '*.customer',
  '*.acceptedBy',
];

/** JSON logs (pino) with the request id as the correlation id, carried into jobs. */
export function loggerOptions(config: AppConfig): Params {
  return {
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
