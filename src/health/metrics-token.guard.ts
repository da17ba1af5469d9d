import { createHash, timingSafeEqual } from 'node:crypto';

import { CanActivate, ExecutionContext, HttpStatus, Injectable } from '@nestjs/common';
import { FastifyReply, FastifyRequest } from 'fastify';

import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';
import { AppConfig } from '../config/app-config';
import { AuthThrottleService } from '../security/auth-throttle.service';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * With METRICS_TOKEN set, /metrics needs `Authorization: Bearer <METRICS_TOKEN>` (CONTRACT §2, §7);
 * unset, it stays open. Compared as SHA-256 digests in constant time, so neither the content nor
 * the length of the token leaks through timing. A wrong token is a failed authentication for the
 * AuthThrottleService (429 with Retry-After once a client or token family has failed too often).
 */
@Injectable()
export class MetricsTokenGuard implements CanActivate {
  private readonly expected?: Buffer;

  constructor(
    config: AppConfig,
    private readonly throttle: AuthThrottleService,
  ) {
    const token = config.env.METRICS_TOKEN;
    this.expected = token === undefined ? undefined : digest(token);
  }

  /** Whether `token` is METRICS_TOKEN (false when none is set). */
  accepts(token: string): boolean {
    return this.expected !== undefined && timingSafeEqual(digest(token), this.expected);
  }

  async canActivate(context: ExecutionContext): Promise<boolean> {
    if (!this.expected) return true;
    const http = context.switchToHttp();
    const req = http.getRequest<FastifyRequest>();
    const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!match) {
      throw new DomainException(
        HttpStatus.UNAUTHORIZED,
        CommonErrorCode.Unauthenticated,
        'a bearer token is required',
      );
    }
    const token = match[1];
    const reply = http.getResponse<FastifyReply>();
    if (!(await this.throttle.verify({ req, reply, token }, () => this.accepts(token)))) {
      throw new DomainException(
        HttpStatus.UNAUTHORIZED,
        CommonErrorCode.Unauthenticated,
        'wrong metrics token',
      );
    }
    return true;
  }
}
