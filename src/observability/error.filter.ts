import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus } from '@nestjs/common';
import { FastifyReply, FastifyRequest } from 'fastify';
import { PinoLogger } from 'nestjs-pino';
import { v4 as uuidv4 } from 'uuid';

import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';
import { WEBHOOK_DOORS } from '../config/providers';
import { MetricsService } from './metrics.service';

const doors = Object.values(WEBHOOK_DOORS);
const direct = doors.filter((d) => !d.referralDoor).map((d) => d.source);
const referral = doors.filter((d) => d.referralDoor).map((d) => d.source);
/**
 * The webhook routes of the provider registry's doors; group 2 (referrals) or 1 names the source
 * for metrics.
 */
export const WEBHOOK_PATH = new RegExp(
  `^/webhooks/(${direct.join('|')}|referrals/(${referral.join('|')}))(\\?|$)`,
);

const CODES: Record<number, CommonErrorCode> = {
  400: CommonErrorCode.BadRequest,
  401: CommonErrorCode.Unauthenticated,
  403: CommonErrorCode.Forbidden,
  404: CommonErrorCode.NotFound,
  405: CommonErrorCode.MethodNotAllowed,
  409: CommonErrorCode.Conflict,
  413: CommonErrorCode.PayloadTooLarge,
  415: CommonErrorCode.UnsupportedMediaType,
  422: CommonErrorCode.Unprocessable,
  429: CommonErrorCode.TooManyRequests,
  503: CommonErrorCode.Unavailable,
};

export interface ErrorBody {
  error: { code: string; message: string; errorId?: string };
}

/** Maps any error to `{ "error": { "code", "message" } }`; 500s get an errorId that is also logged. */
export function toErrorBody(
  err: unknown,
  logger?: PinoLogger,
): { status: number; body: ErrorBody } {
  if (err instanceof HttpException) {
    const status = err.getStatus();
    const response = err.getResponse() as ErrorBody | { message?: string | string[] } | string;
    if (typeof response === 'object' && 'error' in response && typeof response.error === 'object') {
      return { status, body: response };
    }
    const raw =
      typeof response === 'string'
        ? response
        : (response as { message?: string | string[] }).message;
    const message = Array.isArray(raw) ? raw.join('; ') : (raw ?? err.message);
    return { status, body: { error: { code: CODES[status] ?? `HTTP_${status}`, message } } };
  }
  const statusCode = (err as { statusCode?: number }).statusCode;
  if (typeof statusCode === 'number' && statusCode >= 400 && statusCode < 500) {
    // Fastify's own errors (body too large, bad content type, ...).
    return {
      status: statusCode,
      body: {
        error: { code: CODES[statusCode] ?? `HTTP_${statusCode}`, message: (err as Error).message },
      },
    };
  }
  const errorId = uuidv4();
  logger?.error({ errorId, err }, 'unhandled error');
  return {
    status: HttpStatus.INTERNAL_SERVER_ERROR,
    body: { error: { code: CommonErrorCode.Internal, message: 'internal error', errorId } },
  };
}

/**
 * The one error shape for every route. Also counts webhook deliveries that Fastify refused before
 * the door saw them (413, unreadable body); the door counts its own refusals.
 */
@Catch()
export class ErrorFilter implements ExceptionFilter {
  constructor(
    private readonly logger: PinoLogger,
    private readonly metrics: MetricsService,
  ) {
    logger.setContext(ErrorFilter.name);
  }

  catch(err: unknown, host: ArgumentsHost): void {
    const http = host.switchToHttp();
    const reply = http.getResponse<FastifyReply>();
    const { status, body } = toErrorBody(err, this.logger);
    const hook = WEBHOOK_PATH.exec(http.getRequest<FastifyRequest>().url);
    if (hook && !(err instanceof DomainException) && status !== 404) {
      const outcome = status === 413 ? 'too_large' : status === 400 ? 'bad_request' : 'error';
      this.metrics.webhookReceived(hook[2] ?? hook[1], outcome);
    }
    void reply.status(status).send(body);
  }
}
