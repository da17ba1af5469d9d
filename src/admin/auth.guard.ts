import { CanActivate, ExecutionContext, HttpStatus, Injectable, SetMetadata } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { FastifyRequest } from 'fastify';

import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';
import { TokenRole } from '../generated/prisma/client';
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
  ) {}

  async canActivate(context: ExecutionContext): Promise<boolean> {
    const need =
      this.reflector.getAllAndOverride<TokenRole | undefined>(REQUIRED_ROLE, [
        context.getHandler(),
        context.getClass(),
      ]) ?? 'admin';
    const req = context.switchToHttp().getRequest<AuthedRequest>();
    req.actor = await authorizeBearer(this.tokens, req.headers.authorization, need);
    return true;
  }
}

/**
 * The actor of an `Authorization: Bearer <token>` header that holds at least the role `need`;
 * otherwise throws the DomainException to answer (401 no or unknown/revoked token, 403 too weak a
 * role). Shared by the admin API's guard and the routes outside Nest (the docs, docs-access.ts).
 */
export async function authorizeBearer(
  tokens: TokensService,
  authorization: string | undefined,
  need: TokenRole,
): Promise<Actor> {
  const match = /^Bearer\s+(\S+)$/i.exec(authorization ?? '');
  if (!match)
    throw new DomainException(
      HttpStatus.UNAUTHORIZED,
      CommonErrorCode.Unauthenticated,
      'a bearer token is required',
    );
  const actor = await tokens.authenticate(match[1]);
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
