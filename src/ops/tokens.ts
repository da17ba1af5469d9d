/**
 * Admin token CLI (CONTRACT §6): `npm run tokens -- create <name> <viewer|finance|admin>`,
 * `npm run tokens -- list`, `npm run tokens -- revoke <id>`. Tokens are stored hashed and shown once.
 */
import { PrismaPg } from '@prisma/adapter-pg';

import { ROLES, TokensService } from '../admin/tokens.service';
import { ConfigError, loadConfig } from '../config/app-config';
import { PrismaClient, TokenRole } from '../generated/prisma/client';

const USAGE = 'usage: npm run tokens -- create <name> <viewer|finance|admin> | list | revoke <id>';

async function main(argv: string[]): Promise<number> {
  const [command, ...args] = argv;
  const config = loadConfig(process.env);
  const prisma = new PrismaClient({
    adapter: new PrismaPg({ connectionString: config.env.DATABASE_URL }),
  });
  const tokens = new TokensService(prisma);
  try {
    switch (command) {
      case 'create': {
        const [name, role] = args;
        if (!name || !ROLES.includes(role as TokenRole)) throw new UsageError();
        const created = await tokens.create(name, role as TokenRole);
        console.log(`created ${created.role} token "${created.name}" (${created.id})`);
        console.log(`token (shown once): ${created.token}`);
        return 0;
      }
      case 'list': {
        for (const t of await tokens.list()) {
          const state = t.revokedAt ? `revoked ${t.revokedAt.toISOString()}` : 'active';
          console.log(`${t.id}\t${t.role}\t${t.name}\t${state}`);
        }
        return 0;
      }
      case 'revoke': {
        if (!args[0]) throw new UsageError();
        if (!(await tokens.revoke(args[0]))) {
          console.error(`no active token ${args[0]}`);
          return 1;
        }
        console.log(`revoked ${args[0]}`);
        return 0;
      }
      default:
        throw new UsageError();
    }
  } finally {
    await prisma.$disconnect();
  }
}

class UsageError extends Error {}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof UsageError) console.error(USAGE);
    else if (err instanceof ConfigError)
      err.problems.forEach((p) => console.error(`configuration error: ${p}`));
    else console.error(`tokens: ${(err as Error).message}`);
    process.exit(2);
  },
);
