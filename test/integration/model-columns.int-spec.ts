import { randomUUID } from 'node:crypto';

import { loadConfig } from '../../src/config/app-config';
import {
  TimelineInput,
  addTimeline,
  deferTimeline,
  discardTimeline,
  flushTimeline,
} from '../../src/timeline/timeline';
import { BILLING_ITEM_COLUMNS, DEAL_COLUMNS } from '../../src/prisma/model-columns';
import { PrismaService } from '../../src/prisma/prisma.service';
import { hubEnv } from '../support/test-env';

/**
 * The hot path's raw reads (src/prisma/model-columns.ts) give exactly what Prisma's model reads
 * give, field by field and type by type, for rows with every column set and with every optional
 * one empty; and addTimeline's single statement keeps entries in order with their fields.
 */
describe('raw model reads and the timeline statement', () => {
  let prisma: PrismaService;
  const full = `deal_cols_${randomUUID()}`;
  const sparse = `deal_cols_${randomUUID()}`;

  beforeAll(async () => {
    prisma = new PrismaService(loadConfig(hubEnv()));
    const t = (s: string) => new Date(s);
    await prisma.deal.create({
      data: {
        id: full,
        name: 'Every column',
        stage: 'WON',
        version: 7,
        source: 'hubspot',
        crmDealId: `crm-${full}`,
        crmPipeline: 'default',
        crmStage: 'closedwon',
        crmEventAt: t('2026-11-02T03:04:05.678Z'),
        referralPlatform: 'proni',
        referralId: `ref-${full}`,
        customerName: '山田 太郎',
        customerEmail: 'taro@example.jp',
        contactName: 'Taro',
        companyName: '株式会社テスト',
        currency: 'jpy',
        amount: 3_000_000_000n,
        timeZone: 'Asia/Tokyo',
        billingPlan: { currency: 'jpy', items: [{ key: 'deposit', percent: 100 }] },
        planError: 'a refused plan',
        billingCustomerId: 'cus_test',
        wonAt: t('2026-11-03T00:00:00.001Z'),
        deliveredAt: t('2026-11-04T00:00:00Z'),
        closedAt: t('2026-11-05T00:00:00Z'),
        lostAt: t('2026-11-06T00:00:00Z'),
        deliveredOn: '2026-11-04',
        items: {
          create: {
            id: `bi_${full}`,
            key: 'deposit',
            label: '着手金',
            trigger: 'milestone.progress',
            amount: 999_999_999_999n,
            percent: 12.5,
            taxRatePercent: 8,
            expectedInvoiceDate: '2026-12-01',
            acceptanceDays: 10,
            silentApproval: true,
            startOn: '2026-12-01',
            months: 12,
            position: 3,
            addedBy: 'plan',
            removed: false,
            submittedAt: t('2026-11-07T00:00:00Z'),
            acceptanceDueAt: t('2026-11-17T00:00:00Z'),
            acceptedAt: t('2026-11-08T00:00:00Z'),
            acceptedBy: 'buyer@example.jp',
            rejectedAt: t('2026-11-09T00:00:00Z'),
            rejectionReason: 'typo',
            progressPercent: 40,
            billedPercent: 30,
            nextDueAt: t('2026-12-01T15:00:00Z'),
          },
        },
      },
    });
    await prisma.deal.create({
      data: {
        id: sparse,
        name: 'Nothing optional',
        stage: 'REFERRED',
        source: 'admin',
        items: {
          create: {
            id: `bi_${sparse}`,
            key: 'k',
            label: 'L',
            trigger: 'contract.signed',
            amount: 1n,
            taxRatePercent: 0,
            position: 0,
            addedBy: 'admin',
          },
        },
      },
    });
  });

  afterAll(async () => {
    for (const id of [full, sparse]) {
      await prisma.timelineEntry.deleteMany({ where: { dealId: id } });
      await prisma.billingItem.deleteMany({ where: { dealId: id } });
      await prisma.deal.delete({ where: { id } });
    }
    await prisma.onModuleDestroy();
  });

  it.each([
    ['every column set', () => full],
    ['every optional column empty', () => sparse],
  ])('a deal and its items read raw equal Prisma’s reads (%s)', async (_what, idOf) => {
    const id = idOf();
    const [raw] = await prisma.$queryRaw<
      unknown[]
    >`SELECT ${DEAL_COLUMNS} FROM deal WHERE id = ${id}`;
    expect(raw).toStrictEqual(await prisma.deal.findUniqueOrThrow({ where: { id } }));
    const items = await prisma.$queryRaw<unknown[]>`
      SELECT ${BILLING_ITEM_COLUMNS} FROM billing_item WHERE deal_id = ${id}`;
    expect(items).toStrictEqual(await prisma.billingItem.findMany({ where: { dealId: id } }));
  });

  it('addTimeline writes every entry in the order given, in one statement', async () => {
    const at = new Date('2026-11-30T15:00:00.123Z');
    const before = new Date(Date.now() - 1_000);
    const second: TimelineInput = {
      dealId: sparse,
      kind: 'transition',
      message: 'second',
      cause: 'test',
      eventId: 'evt_1',
      fromStage: 'REFERRED',
      toStage: 'APPOINTMENT',
      details: { billingKey: 'k', amount: 3_000_000_000, nested: { ok: true } },
      at,
    };
    await prisma.$transaction((tx) =>
      addTimeline(tx, [
        { dealId: sparse, kind: 'event', message: 'first', cause: 'test' },
        second,
        { dealId: sparse, kind: 'billing', message: 'third', cause: 'test' },
      ]),
    );
    const rows = await prisma.timelineEntry.findMany({
      where: { dealId: sparse },
      orderBy: { id: 'asc' },
    });
    expect(rows.map((r) => r.message)).toEqual(['first', 'second', 'third']);
    const { dealId: _dealId, message: _message, ...fields } = second;
    expect(rows[1]).toMatchObject(fields);
    expect(rows[0]).toMatchObject({ eventId: null, fromStage: null, toStage: null, details: null });
    expect(rows[0].at.getTime()).toBeGreaterThanOrEqual(before.getTime());
    expect(rows[2].at.getTime()).toBeGreaterThanOrEqual(rows[0].at.getTime());
  });

  it('a deferring transaction writes its entries at the flush, in order, and drops discarded ones', async () => {
    const count = () => prisma.timelineEntry.count({ where: { dealId: full } });
    const before = await count();
    const seen = await prisma.$transaction(async (tx) => {
      deferTimeline(tx);
      await addTimeline(tx, { dealId: full, kind: 'event', message: 'dropped', cause: 't' });
      discardTimeline(tx);
      await addTimeline(tx, { dealId: full, kind: 'event', message: 'kept 1', cause: 't' });
      await addTimeline(tx, [
        { dealId: full, kind: 'billing', message: 'kept 2', cause: 't' },
        { dealId: full, kind: 'billing', message: 'kept 3', cause: 't' },
      ]);
      const beforeFlush = await tx.timelineEntry.count({ where: { dealId: full } });
      await flushTimeline(tx);
      const afterFlush = await tx.timelineEntry.count({ where: { dealId: full } });
      await flushTimeline(tx); // nothing left: writes nothing
      return { beforeFlush, afterFlush };
    });
    expect(seen).toEqual({ beforeFlush: before, afterFlush: before + 3 });
    const rows = await prisma.timelineEntry.findMany({
      where: { dealId: full },
      orderBy: { id: 'asc' },
      skip: before,
    });
    expect(rows.map((r) => r.message)).toEqual(['kept 1', 'kept 2', 'kept 3']);
    // Another transaction, not deferred, writes at once.
    await prisma.$transaction(async (tx) => {
      await addTimeline(tx, { dealId: full, kind: 'event', message: 'at once', cause: 't' });
      expect(await tx.timelineEntry.count({ where: { dealId: full } })).toBe(before + 4);
    });
  });
});
