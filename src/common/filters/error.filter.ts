import { ArgumentsHost, Catch, ExceptionFilter, HttpException, HttpStatus } from '@nestjs/common';
import { FastifyReply } from 'fastify';
import { PinoLogger } from 'nestjs-pino';
import { v4 as uuidv4 } from 'uuid';

const CODES: Record<number, string> = {
  400: 'BAD_REQUEST',
  401: 'UNAUTHENTICATED',
  403: 'FORBIDDEN',
  404: 'NOT_FOUND',
  405: 'METHOD_NOT_ALLOWED',
  409: 'CONFLICT',
  413: 'PAYLOAD_TOO_LARGE',
  415: 'UNSUPPORTED_MEDIA_TYPE',
  422: 'UNPROCESSABLE',
  429: 'TOO_MANY_REQUESTS',
  503: 'UNAVAILABLE',
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
    body: { error: { code: 'INTERNAL', message: 'internal error', errorId } },
  };
}

@Catch()
export class ErrorFilter implements ExceptionFilter {
  constructor(private readonly logger: PinoLogger) {
    logger.setContext(ErrorFilter.name);
  }

  catch(err: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const { status, body } = toErrorBody(err, this.logger);
    void reply.status(status).send(body);
  }
}
