import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';

import { PrismaClient, TokenRole } from '../generated/prisma/client';
import { newId } from '../common/ids';

const LAST_USED_RESOLUTION_MS = 60_000;

export const ROLES: readonly TokenRole[] = ['viewer', 'finance', 'admin'];
/** viewer ⊂ finance ⊂ admin (CONTRACT §6). */
export function roleAtLeast(have: TokenRole, need: TokenRole): boolean {
  return ROLES.indexOf(have) >= ROLES.indexOf(need);
}

export interface Actor {
  tokenId: string | null;
  name: string;
  role: TokenRole;
}

export const hashToken = (token: string) => createHash('sha256').update(token).digest('hex');

/**
 * Named role tokens, stored as SHA-256 digests (tokens are 256-bit random, so a fast hash is
 * enough). Used by the admin API and by the `tokens` CLI, so it takes a bare PrismaClient.
 */
export class TokensService {
  constructor(
    private readonly prisma: Pick<PrismaClient, 'apiToken'>,
    private readonly bootstrapToken?: string,
  ) {}

  async create(
    name: string,
    role: TokenRole,
  ): Promise<{ id: string; name: string; role: TokenRole; token: string }> {
    const token = `clk_${randomBytes(32).toString('base64url')}`;
    const row = await this.prisma.apiToken.create({
      data: { id: newId('tok'), name, role, tokenHash: hashToken(token) },
    });
    return { id: row.id, name: row.name, role: row.role, token };
  }

  list() {
    return this.prisma.apiToken.findMany({
      take: 1_000, // tokens are made by hand; every list the hub serves is bounded
      select: {
        id: true,
        name: true,
        role: true,
        createdAt: true,
        revokedAt: true,
        lastUsedAt: true,
      },
      orderBy: { createdAt: 'desc' },
    });
  }

  /** Returns false when no active token has that id. */
  async revoke(id: string): Promise<boolean> {
    const { count } = await this.prisma.apiToken.updateMany({
      where: { id, revokedAt: null },
      data: { revokedAt: new Date() },
    });
    return count === 1;
  }

  async authenticate(token: string): Promise<Actor | null> {
    const digest = hashToken(token);
    if (
      this.bootstrapToken &&
      timingSafeEqual(Buffer.from(digest), Buffer.from(hashToken(this.bootstrapToken)))
    ) {
      return { tokenId: null, name: 'ADMIN_TOKEN', role: 'admin' };
    }
    // The lookup is by digest, so it leaks nothing about the token through timing.
    const row = await this.prisma.apiToken.findUnique({ where: { tokenHash: digest } });
    if (!row || row.revokedAt) return null;
    if (!row.lastUsedAt || Date.now() - row.lastUsedAt.getTime() > LAST_USED_RESOLUTION_MS) {
      // At most one write a minute per token, so reads stay reads.
      await this.prisma.apiToken.update({
        where: { id: row.id },
        data: { lastUsedAt: new Date() },
      });
    }
    return { tokenId: row.id, name: row.name, role: row.role };
  }
}
