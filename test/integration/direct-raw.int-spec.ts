import { randomUUID } from 'node:crypto';

import { loadConfig } from '../../src/config/app-config';
import { runsRawDirectly } from '../../src/prisma/direct-raw';
import { PrismaService } from '../../src/prisma/prisma.service';
import { testDb } from '../support/hub';
import { hubEnv } from '../support/test-env';

/**
 * PrismaService.transaction (src/prisma/direct-raw.ts): raw SQL runs on the transaction's own
 * connection, in the same transaction as the Prisma model calls beside it, with the values
 * Prisma's own $queryRaw gives.
 */
describe('PrismaService.transaction: raw SQL on the transaction’s connection', () => {
  let prisma: PrismaService;
  const db = testDb();
  const ids: string[] = [];

  beforeAll(() => {
    prisma = new PrismaService(loadConfig(hubEnv()));
  });
  afterAll(async () => {
    await prisma.deal.deleteMany({ where: { id: { in: ids } } });
    await prisma.onModuleDestroy();
    await db.end();
  });

  const newDealId = () => {
    const id = `deal_raw_${randomUUID()}`;
    ids.push(id);
    return id;
  };

  it('finds the connection of every transaction it opens (not of $transaction)', async () => {
    expect(await prisma.transaction((tx) => Promise.resolve(runsRawDirectly(tx)))).toBe(true);
    expect(await prisma.$transaction((tx) => Promise.resolve(runsRawDirectly(tx)))).toBe(false);
  });

  it('gives the same values and types as Prisma’s $queryRaw', async () => {
    const query = (tx: Pick<PrismaService, '$queryRaw'>) => tx.$queryRaw<unknown[]>`
      SELECT 3000000000::bigint AS big, NULL::bigint AS no_big, 12.50::numeric AS dec,
             '2026-11-30T15:00:00.123Z'::timestamptz AS tz,
             '2026-11-30 15:00:00.123'::timestamp AS local,
             '{"a":[1,2],"b":null}'::jsonb AS doc, 'WON'::"DealStage" AS stage,
             ARRAY[1, NULL, 9007199254740993]::bigint[] AS bigs, ARRAY['x', NULL]::text[] AS texts,
             true AS yes, 1.5::float8 AS f, 42 AS i, NULL::text AS nothing,
             ${new Date('2026-01-02T03:04:05.678Z')}::timestamptz AS param_date,
             ${12345678901234n}::bigint AS param_big, ${['p', null]}::text[] AS param_arr,
             ${false}::boolean AS param_bool`;
    const viaPrisma = await query(prisma);
    const direct = await prisma.transaction((tx) => query(tx));
    expect(direct).toStrictEqual(viaPrisma);
    expect(direct).toEqual([
      expect.objectContaining({ big: 3000000000n, param_big: 12345678901234n, stage: 'WON' }),
    ]);
  });

  it('raw statements and model calls share one transaction: committed together', async () => {
    const id = newDealId();
    const seenInside = await prisma.transaction(async (tx) => {
      await tx.$executeRaw`
        INSERT INTO deal (id, name, stage, source, updated_at)
        VALUES (${id}, 'raw', 'REFERRED', 'admin', now())`;
      const mine = await tx.deal.findUnique({ where: { id } });
      const others = await db.query('SELECT 1 FROM deal WHERE id = $1', [id]);
      await tx.deal.update({ where: { id }, data: { name: 'raw then model' } });
      const [after] = await tx.$queryRaw<
        { name: string }[]
      >`SELECT name FROM deal WHERE id = ${id}`;
      return { mine: mine?.name, othersSee: others.rowCount, after: after.name };
    });
    expect(seenInside).toEqual({ mine: 'raw', othersSee: 0, after: 'raw then model' });
    const { rows } = await db.query('SELECT name FROM deal WHERE id = $1', [id]);
    expect(rows).toEqual([{ name: 'raw then model' }]);
  });

  it('… and rolled back together', async () => {
    const id = newDealId();
    await expect(
      prisma.transaction(async (tx) => {
        await tx.$executeRawUnsafe(
          `INSERT INTO deal (id, name, stage, source, updated_at) VALUES ($1, 'x', 'REFERRED', 'admin', now())`,
          id,
        );
        await tx.deal.update({ where: { id }, data: { name: 'y' } });
        throw new Error('undo');
      }),
    ).rejects.toThrow('undo');
    const { rowCount } = await db.query('SELECT 1 FROM deal WHERE id = $1', [id]);
    expect(rowCount).toBe(0);
  });

  it('concurrent transactions each run on their own connection', async () => {
    const deals = Array.from({ length: 6 }, () => newDealId());
    const seen = await Promise.all(
      deals.map((id) =>
        prisma.transaction(async (tx) => {
          await tx.$executeRaw`
            INSERT INTO deal (id, name, stage, source, updated_at)
            VALUES (${id}, ${id}, 'REFERRED', 'admin', now())`;
          await new Promise((r) => setTimeout(r, 20));
          const rows = await tx.$queryRaw<{ id: string }[]>`
            SELECT id FROM deal WHERE id = ANY(${deals}::text[])`;
          const model = await tx.deal.findMany({
            where: { id: { in: deals } },
            select: { id: true },
          });
          return { raw: rows.map((r) => r.id), model: model.map((r) => r.id) };
        }),
      ),
    );
    // Each transaction sees its own uncommitted row (both ways), none of the others' in flight.
    seen.forEach((s, i) => {
      expect(s.raw).toContain(deals[i]);
      expect(s.model).toContain(deals[i]);
    });
    expect(seen.some((s) => s.raw.length < deals.length)).toBe(true);
    const { rowCount } = await db.query('SELECT 1 FROM deal WHERE id = ANY($1)', [deals]);
    expect(rowCount).toBe(deals.length);
  });
});
