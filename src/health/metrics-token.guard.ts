import { createHash, timingSafeEqual } from 'node:crypto';

import { CanActivate, ExecutionContext, HttpStatus, Injectable } from '@nestjs/common';
import { FastifyRequest } from 'fastify';

import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';
import { AppConfig } from '../config/app-config';

const digest = (value: string) => createHash('sha256').update(value).digest();

/**
 * With METRICS_TOKEN set, /metrics needs `Authorization: Bearer <METRICS_TOKEN>` (CONTRACT §2, §7);
 * unset, it stays open. Compared as SHA-256 digests in constant time, so neither the content nor
 * the length of the token leaks through timing.
 */
@Injectable()
export class MetricsTokenGuard implements CanActivate {
  private readonly expected?: Buffer;

  constructor(config: AppConfig) {
    const token = config.env.METRICS_TOKEN;
    this.expected = token === undefined ? undefined : digest(token);
  }

  canActivate(context: ExecutionContext): boolean {
    if (!this.expected) return true;
    const req = context.switchToHttp().getRequest<FastifyRequest>();
    const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!match) {
      throw new DomainException(
        HttpStatus.UNAUTHORIZED,
        CommonErrorCode.Unauthenticated,
        'a bearer token is required',
      );
    }
    if (!timingSafeEqual(digest(match[1]), this.expected)) {
      throw new DomainException(
        HttpStatus.UNAUTHORIZED,
        CommonErrorCode.Unauthenticated,
        'wrong metrics token',
      );
    }
    return true;
  }
}
