import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import { Injectable } from '@nestjs/common';

import { Actor, hashToken, roleAtLeast } from '../admin/tokens.service';
import { AppConfig } from '../config/app-config';
import { TokenRole } from '../generated/prisma/client';
import { PrismaService } from '../prisma/prisma.service';

export const SESSION_COOKIE = 'cl_session';
export const SESSION_TTL_MS = 8 * 60 * 60 * 1000;
const LAST_SEEN_RESOLUTION_MS = 60_000;

export interface DashboardSession {
  id: string;
  actor: Actor;
  csrfToken: string;
  expiresAt: Date;
}

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

/** Constant-time comparison of two strings (false when the lengths differ). */
export function sameSecret(a: string | undefined, b: string | undefined): boolean {
  if (typeof a !== 'string' || typeof b !== 'string' || a.length === 0) return false;
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * Server-side dashboard sessions (docs/decisions/0006). The browser holds a random 32-byte value;
 * the row is keyed by its SHA-256, so a database read does not yield a usable cookie. Each request
 * re-checks that the token signed in with still authenticates: a revoked token (or a changed
 * ADMIN_TOKEN) ends the session, and the session's role can only shrink to the token's.
 */
@Injectable()
export class DashboardSessionService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
  ) {}

  /** Starts a session for an authenticated token; returns the cookie value. */
  async create(
    actor: Actor,
    token: string,
  ): Promise<{ cookie: string; session: DashboardSession }> {
    const cookie = randomBytes(32).toString('base64url');
    const now = Date.now();
    const row = await this.prisma.dashboardSession.create({
      data: {
        id: sha256(cookie),
        tokenId: actor.tokenId,
        tokenHash: hashToken(token),
        role: actor.role,
        actorName: actor.name,
        csrfToken: randomBytes(32).toString('base64url'),
        expiresAt: new Date(now + SESSION_TTL_MS),
      },
    });
    // Housekeeping: expired rows are useless; dropping them here needs no scheduler.
    await this.prisma.dashboardSession.deleteMany({ where: { expiresAt: { lt: new Date(now) } } });
    return {
      cookie,
      session: { id: row.id, actor, csrfToken: row.csrfToken, expiresAt: row.expiresAt },
    };
  }

  /** The live session of a cookie value, or undefined (unknown, expired or its token no longer valid). */
  async resolve(cookie: string | undefined): Promise<DashboardSession | undefined> {
    if (!cookie || cookie.length > 200) return undefined;
    const id = sha256(cookie);
    const row = await this.prisma.dashboardSession.findUnique({ where: { id } });
    if (!row) return undefined;
    const now = new Date();
    if (row.expiresAt <= now) {
      await this.prisma.dashboardSession.deleteMany({ where: { id } });
      return undefined;
    }
    const role = await this.currentRole(row);
    if (!role) {
      await this.prisma.dashboardSession.deleteMany({ where: { id } });
      return undefined;
    }
    if (now.getTime() - row.lastSeenAt.getTime() > LAST_SEEN_RESOLUTION_MS) {
      await this.prisma.dashboardSession.updateMany({ where: { id }, data: { lastSeenAt: now } });
    }
    return {
      id,
      actor: { tokenId: row.tokenId, name: row.actorName, role },
      csrfToken: row.csrfToken,
      expiresAt: row.expiresAt,
    };
  }

  async destroy(id: string): Promise<void> {
    await this.prisma.dashboardSession.deleteMany({ where: { id } });
  }

  /** The role the session may use now: undefined when its token no longer authenticates. */
  private async currentRole(row: {
    tokenId: string | null;
    tokenHash: string;
    role: TokenRole;
  }): Promise<TokenRole | undefined> {
    if (row.tokenId === null) {
      const bootstrap = this.config.env.ADMIN_TOKEN;
      return bootstrap && sameSecret(hashToken(bootstrap), row.tokenHash) ? row.role : undefined;
    }
    const token = await this.prisma.apiToken.findUnique({ where: { id: row.tokenId } });
    if (!token || token.revokedAt || !sameSecret(token.tokenHash, row.tokenHash)) return undefined;
    // Never more than the token has now, nor more than the session started with.
    return roleAtLeast(token.role, row.role) ? row.role : token.role;
  }
}
