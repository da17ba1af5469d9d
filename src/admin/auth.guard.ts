import { CanActivate, ExecutionContext, HttpStatus, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { FastifyReply, FastifyRequest } from 'fastify';

import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';
import { TokenRole } from '../generated/prisma/client';
import { AuthThrottleService } from '../security/auth-throttle.service';
import { Actor, TokensService, roleAtLeast } from './tokens.service';

const REQUIRED_ROLE = Symbol('closeloop:required-role');
/** The least role that may call a handler (viewer ⊂ finance ⊂ admin). */
export const RequireRole = (role: TokenRole) => SetMetadata(REQUIRED_ROLE, role);

export type AuthedRequest = FastifyRequest & { actor?: Actor };

/** Bearer-token auth for the admin API; puts the acting token on the request for the audit log. */
@Injectable()
export class AuthGuard implements CanActivate {
  constructor(
    private readonly reflector: Reflector,
    private readonly tokens: TokensService,
    private readonly throttle: AuthThrottleService,
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const need =
      this.reflector.getAllAndOverride<TokenRole | undefined>(REQUIRED_ROLE, [
        context.getHandler(),
        context.getClass(),
      ]) ?? 'admin';
    const http = context.switchToHttp();
    const req = http.getRequest<AuthedRequest>();
    req.actor = await authorizeBearer(
      { tokens: this.tokens, throttle: this.throttle },
      req,
      http.getResponse<FastifyReply>(),
      need,
    );
    return true;
  }
}

/**
 * The actor of the request's `Authorization: Bearer <token>` header that holds at least the role
 * `need`; otherwise throws the DomainException to answer (401 no or unknown/revoked token, 403 too
 * weak a role, 429 with Retry-After once this client or token family has failed too often: the
 * AuthThrottleService counts each unknown or revoked token). Shared by the admin API's guard and
 * the routes outside Nest (the docs, docs-access.ts).
 */
export async function authorizeBearer(
  auth: { tokens: TokensService; throttle: AuthThrottleService },
  req: FastifyRequest,
  reply: FastifyReply,
  need: TokenRole,
): Promise<Actor> {
  const match = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
  if (!match)
    throw new DomainException(
      HttpStatus.UNAUTHORIZED,
      CommonErrorCode.Unauthenticated,
      'a bearer token is required',
    );
  const token = match[1];
  const actor = await auth.throttle.verify({ req, reply, token }, () =>
    auth.tokens.authenticate(token),
  );
  if (!actor)
    throw new DomainException(
      HttpStatus.UNAUTHORIZED,
      CommonErrorCode.Unauthenticated,
      'unknown or revoked token',
    );
  if (!roleAtLeast(actor.role, need)) {
    throw new DomainException(
      HttpStatus.FORBIDDEN,
      CommonErrorCode.Forbidden,
      `this action needs the ${need} role`,
    );
  }
  return actor;
}
