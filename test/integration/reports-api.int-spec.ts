import { PinoLogger } from 'nestjs-pino';
import { Pool } from 'pg';

import { AlertService } from '../../src/alerts/alert.service';
import { SystemClock } from '../../src/common/clock';
import { loadConfig } from '../../src/config/app-config';
import { PrismaService } from '../../src/prisma/prisma.service';
import { OutboxService } from '../../src/queue/outbox/outbox.service';
import { ReportTimerService } from '../../src/reporting/report-timer.service';
import { ReportChannel, ReportData, ReportKind } from '../../src/domain/report';
import { ReportStatus } from '../../src/generated/prisma/client';
import { closeTestPrisma, createDeal, createReport, openTestPrisma } from '../factories';
import { RunningHub, flushTestRedis, startHub, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_SECRETS, hubEnv } from '../support/test-env';

/**
 * The report queue of the admin API (CONTRACT §6, issue item 3) and the manual queue's overdue
 * timer, against the built hub (ROLE=api: these routes need no worker) and real Postgres. Reports
 * are seeded as rows, as the report service writes them.
 */

interface Answer {
  status: number;
  body: any; // eslint-disable-line @typescript-eslint/no-explicit-any
}

const ZONE = 'Asia/Tokyo';

async function call(
  hub: RunningHub,
  method: string,
  urlPath: string,
  token: string | undefined,
  body?: unknown,
): Promise<Answer> {
  const headers: Record<string, string> = {};
  if (token !== undefined) headers.authorization = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(`${hub.url}${urlPath}`, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, body: text ? JSON.parse(text) : undefined };
}

let seq = 0;
/** Time-ordered ids like the hub's (rpt_<uuidv7>): a fixed prefix and an increasing counter. */
const nextId = (prefix: string) =>
  `${prefix}_0199${String(++seq).padStart(4, '0')}-0000-7000-8000-000000000000`;

/** The spec's Prisma client for seeding (opened and closed by the top-level describe). */
let factoryDb: PrismaService;

async function seedDeal(over: { platform?: string; name?: string } = {}) {
  const id = nextId('cl_deal');
  await createDeal(factoryDb, {
    id,
    name: over.name ?? 'Website renewal',
    stage: 'WON',
    source: 'referral',
    referralPlatform: over.platform ?? 'aimitsu',
    referralId: `R-${seq}`,
    amount: null,
    timeZone: ZONE,
    bare: true,
    history: false,
  });
  return id;
}

interface SeedReport {
  dealId: string;
  kind?: ReportKind;
  channel?: ReportChannel;
  platform?: string;
  status?: ReportStatus;
  dueAt?: Date | null;
  data?: Partial<ReportData>;
  amountExTax?: number | null;
}

async function seedReport(r: SeedReport): Promise<string> {
  const report = await createReport(factoryDb, {
    id: nextId('rpt'),
    dealId: r.dealId,
    kind: r.kind,
    channel: r.channel,
    platform: r.platform,
    status: r.status,
    data: r.data,
    zone: ZONE,
    dueAt: r.dueAt === undefined ? new Date('2026-12-16T15:00:00Z') : r.dueAt,
    amountExTax: r.amountExTax,
  });
  return report.id;
}

const silentLogger = {
  setContext: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  debug: () => undefined,
} as unknown as PinoLogger;

describe('reports admin API', () => {
  let hub: RunningHub;
  let db: Pool;
  const tokens = { viewer: '', finance: '' };
  const admin = TEST_SECRETS.ADMIN_TOKEN;

  beforeAll(async () => {
    db = testDb();
    factoryDb = openTestPrisma();
    await truncateAll(db);
    await db.query('TRUNCATE report, alert, referral RESTART IDENTITY CASCADE');
    await flushTestRedis();
    hub = await startHub({ ROLE: 'api' });
    for (const role of ['viewer', 'finance'] as const) {
      const res = await call(hub, 'POST', '/api/tokens', admin, { name: `ops-${role}`, role });
      expect(res.status).toBe(201);
      tokens[role] = res.body.token;
    }
  });

  afterAll(async () => {
    await hub?.stop();
    await closeTestPrisma(factoryDb);
    await db?.end();
  });

  describe('GET /api/reports', () => {
    let dealA: string;
    let dealB: string;
    const ids: Record<string, string> = {};

    beforeAll(async () => {
      dealA = await seedDeal();
      dealB = await seedDeal({ platform: 'generic' });
      ids.won = await seedReport({
        dealId: dealA,
        kind: 'won',
        status: 'REPORTED',
        data: { orderDescription: 'サイト制作', amountExTax: 1_000_000, billingTiming: '一括' },
      });
      ids.confirmed = await seedReport({ dealId: dealA, status: 'OVERDUE' });
      ids.webhook = await seedReport({
        dealId: dealB,
        kind: 'won',
        platform: 'generic',
        channel: 'webhook',
        status: 'FAILED',
        dueAt: null,
      });
    });

    it('lists newest first with the copy-ready fields, the deadline and what may be done next', async () => {
      const res = await call(hub, 'GET', `/api/reports?dealId=${dealA}`, tokens.viewer);
      expect(res.status).toBe(200);
      expect(res.body.items.map((r: { id: string }) => r.id)).toEqual([ids.confirmed, ids.won]);
      expect(res.body.items[0]).toMatchObject({
        id: ids.confirmed,
        kind: 'confirmed_amount',
        title: '確定報告 (confirmed amount)',
        platform: 'aimitsu',
        channel: 'manual',
        dealId: dealA,
        referralId: 'R-1',
        status: 'OVERDUE',
        dueAt: '2026-12-16T15:00:00.000Z',
        deliveredAt: null,
        occurredAt: '2026-11-23T01:00:00.000Z',
        attempts: 0,
        lastError: null,
        postponeReason: null,
        note: null,
        data: { itemKey: 'design', amountExTax: 300_000 },
        actions: ['mark-reported', 'status:UNDER_REVIEW', 'status:REPORTED', 'postpone'],
      });
      expect(res.body.items[0].fields).toContainEqual({
        key: 'amountExTax',
        label: '請求金額',
        labelEn: 'Invoice amount (excl. tax)',
        value: '300000',
      });
      expect(res.body.nextCursor).toBeNull();
    });

    it('filters by status, platform, kind and channel, and pages with the cursor', async () => {
      const only = async (q: string) =>
        (await call(hub, 'GET', `/api/reports?${q}`, tokens.viewer)).body.items.map(
          (r: { id: string }) => r.id,
        );
      expect(await only('status=OVERDUE')).toEqual([ids.confirmed]);
      expect(await only('platform=generic')).toEqual([ids.webhook]);
      expect(await only('kind=won')).toEqual([ids.webhook, ids.won]);
      expect(await only('channel=webhook&status=FAILED')).toEqual([ids.webhook]);

      const first = await call(hub, 'GET', '/api/reports?limit=2', tokens.viewer);
      expect(first.body.items.map((r: { id: string }) => r.id)).toEqual([
        ids.webhook,
        ids.confirmed,
      ]);
      const second = await call(
        hub,
        'GET',
        `/api/reports?limit=2&cursor=${first.body.nextCursor}`,
        tokens.viewer,
      );
      expect(second.body).toMatchObject({ items: [{ id: ids.won }], nextCursor: null });
    });

    it('answers 400 naming a bad filter, 401 without a token, 404 for an unknown id', async () => {
      const bad = await call(hub, 'GET', '/api/reports?status=DONE', tokens.viewer);
      expect(bad.status).toBe(400);
      expect(bad.body.error.code).toBe('VALIDATION_FAILED');
      expect(bad.body.error.message).toContain('status');
      expect((await call(hub, 'GET', '/api/reports', undefined)).status).toBe(401);
      const unknown = await call(hub, 'GET', '/api/reports/rpt_nope', tokens.viewer);
      expect(unknown.status).toBe(404);
      expect(unknown.body.error).toEqual({
        code: 'NOT_FOUND',
        message: 'report rpt_nope not found',
      });
    });
  });

  describe('transitions', () => {
    const auditOf = async (id: string) =>
      (
        await db.query(
          `SELECT actor, role, action, details FROM audit_log WHERE target = $1 ORDER BY id`,
          [id],
        )
      ).rows;
    const timelineOf = async (dealId: string) =>
      (
        await db.query(
          `SELECT kind, message, cause FROM timeline_entry WHERE deal_id = $1 ORDER BY id`,
          [dealId],
        )
      ).rows;

    it('mark-reported: finance only; REPORTED with deliveredAt and the entered amount, audited with the role, on the timeline', async () => {
      const dealId = await seedDeal();
      const id = await seedReport({ dealId, status: 'OVERDUE' });

      const viewer = await call(hub, 'POST', `/api/reports/${id}/mark-reported`, tokens.viewer, {});
      expect(viewer.status).toBe(403);

      const before = Date.now();
      const res = await call(hub, 'POST', `/api/reports/${id}/mark-reported`, tokens.finance, {
        note: 'entered by 山田',
        amountExTax: 290_000,
      });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id,
        status: 'REPORTED',
        reportedAmount: 290_000,
        amountExTax: 300_000,
        note: 'entered by 山田',
        actions: ['status:CORRECTION_REQUESTED'],
      });
      expect(new Date(res.body.deliveredAt).getTime()).toBeGreaterThanOrEqual(before - 1000);

      expect(await auditOf(id)).toEqual([
        {
          actor: 'ops-finance',
          role: 'finance',
          action: 'report.mark_reported',
          details: expect.objectContaining({
            from: 'OVERDUE',
            to: 'REPORTED',
            reportedAmount: 290_000,
            amountExTax: 300_000,
            note: 'entered by 山田',
          }),
        },
      ]);
      expect(await timelineOf(dealId)).toEqual([
        {
          kind: 'report',
          message: `確定報告 report ${id} marked reported on the platform: OVERDUE → REPORTED (entered ¥290,000 excl. tax, the hub had ¥300,000)`,
          cause: 'admin ops-finance',
        },
      ]);

      const again = await call(hub, 'POST', `/api/reports/${id}/mark-reported`, tokens.finance);
      expect(again.status).toBe(409);
      expect(again.body.error).toEqual({
        code: 'TRANSITION_REFUSED',
        message: `report ${id} (confirmed_amount, REPORTED): the report is already REPORTED`,
      });

      const detail = await call(hub, 'GET', `/api/reports/${id}`, tokens.viewer);
      expect(detail.body.history).toEqual([
        expect.objectContaining({
          actor: 'ops-finance',
          role: 'finance',
          action: 'report.mark_reported',
        }),
      ]);
    });

    it('mark-reported: a confirmed amount billed monthly fixed starts the monthly fee (FEE_ONGOING)', async () => {
      const dealId = await seedDeal();
      const id = await seedReport({ dealId, data: { billingCount: 'monthly_fixed' } });
      const res = await call(hub, 'POST', `/api/reports/${id}/mark-reported`, admin);
      expect(res.status).toBe(200);
      expect(res.body.status).toBe('FEE_ONGOING');
      expect((await auditOf(id))[0]).toMatchObject({ actor: 'ADMIN_TOKEN', role: 'admin' });
    });

    it('mark-reported: refuses an amount on a report without one, and unknown body fields', async () => {
      const dealId = await seedDeal();
      const id = await seedReport({ dealId, kind: 'delivered', data: {}, dueAt: null });
      const amount = await call(hub, 'POST', `/api/reports/${id}/mark-reported`, tokens.finance, {
        amountExTax: 1,
      });
      expect(amount.status).toBe(400);
      expect(amount.body.error.message).toContain('amountExTax applies only to reports');
      const typo = await call(hub, 'POST', `/api/reports/${id}/mark-reported`, tokens.finance, {
        amount: 1,
      });
      expect(typo.status).toBe(400);
      expect(typo.body.error.code).toBe('VALIDATION_FAILED');
      const fraction = await call(hub, 'POST', `/api/reports/${id}/mark-reported`, tokens.finance, {
        amountExTax: 1.5,
      });
      expect(fraction.status).toBe(400);
      expect(fraction.body.error.message).toContain("currency's smallest unit");
      expect(await auditOf(id)).toEqual([]);
      const unknown = await call(
        hub,
        'POST',
        '/api/reports/rpt_nope/mark-reported',
        tokens.finance,
      );
      expect(unknown.status).toBe(404);
    });

    it('postpone: a new date moves the deadline (end of that day in the deal’s zone), lost clears it', async () => {
      const dealId = await seedDeal();
      const id = await seedReport({ dealId, status: 'OVERDUE' });

      const missing = await call(hub, 'POST', `/api/reports/${id}/postpone`, tokens.finance, {
        reason: 'date_changed',
      });
      expect(missing.status).toBe(400);
      expect(missing.body.error.message).toBe(
        'reason date_changed needs newDueAt, the new deadline',
      );
      const past = await call(hub, 'POST', `/api/reports/${id}/postpone`, tokens.finance, {
        reason: 'not_started',
        newDueAt: '2020-01-01T00:00:00Z',
      });
      expect(past.status).toBe(400);
      expect(past.body.error.message).toContain('newDueAt must be in the future');
      const badReason = await call(hub, 'POST', `/api/reports/${id}/postpone`, tokens.finance, {
        reason: 'forgot',
      });
      expect(badReason.status).toBe(400);
      expect(badReason.body.error.message).toContain('reason');

      const moved = await call(hub, 'POST', `/api/reports/${id}/postpone`, tokens.finance, {
        reason: 'date_changed',
        newDueAt: '2099-01-31',
      });
      expect(moved.status).toBe(200);
      expect(moved.body).toMatchObject({
        status: 'PENDING',
        postponeReason: 'date_changed',
        // 2099-02-01 00:00 in Tokyo: the 31st is over.
        dueAt: '2099-01-31T15:00:00.000Z',
      });

      const lost = await call(hub, 'POST', `/api/reports/${id}/postpone`, tokens.finance, {
        reason: 'lost',
        note: '案件が失注',
      });
      expect(lost.status).toBe(200);
      expect(lost.body).toMatchObject({
        status: 'PENDING',
        postponeReason: 'lost',
        dueAt: null,
        note: '案件が失注',
      });
      expect((await auditOf(id)).map((a) => [a.action, a.details.from, a.details.to])).toEqual([
        ['report.postpone', 'OVERDUE', 'PENDING'],
        ['report.postpone', 'PENDING', 'PENDING'],
      ]);
      expect((await timelineOf(dealId)).map((t) => t.message)).toEqual([
        `確定報告 report ${id} postponed (date_changed): OVERDUE → PENDING, new deadline 2099-01-31T15:00:00.000Z`,
        `確定報告 report ${id} postponed (lost): PENDING → PENDING, deadline cleared`,
        // 失注 proposes the loss on the deal (POST /api/deals/:id/loss/confirm or …/dismiss).
        `loss proposed from 確定報告 report ${id} (まだ未定: 失注): 案件が失注 — confirm or dismiss it`,
      ]);
      const deal = await call(hub, 'GET', `/api/deals/${dealId}`, tokens.viewer);
      expect(deal.body.lossProposal).toEqual({
        proposedAt: expect.any(String),
        reason: '案件が失注',
      });

      const webhookDeal = await seedDeal({ platform: 'generic' });
      const webhook = await seedReport({
        dealId: webhookDeal,
        platform: 'generic',
        channel: 'webhook',
      });
      const refused = await call(hub, 'POST', `/api/reports/${webhook}/postpone`, tokens.finance, {
        reason: 'lost',
      });
      expect(refused.status).toBe(409);
      expect(refused.body.error.message).toContain('applies only to the manual report queue');
    });

    it('status: under review, correction requested, resubmitted, reported; FEE_ONGOING refused for one-time billing', async () => {
      const dealId = await seedDeal();
      const id = await seedReport({ dealId });
      const set = (status: string) =>
        call(hub, 'POST', `/api/reports/${id}/status`, tokens.finance, { status });

      const review = await set('UNDER_REVIEW');
      expect(review.status).toBe(200);
      expect(review.body.deliveredAt).toEqual(expect.any(String));
      const enteredAt = review.body.deliveredAt;
      expect((await set('CORRECTION_REQUESTED')).body.status).toBe('CORRECTION_REQUESTED');
      expect((await set('UNDER_REVIEW')).body.status).toBe('UNDER_REVIEW');
      const fee = await set('FEE_ONGOING');
      expect(fee.status).toBe(409);
      expect(fee.body.error.code).toBe('TRANSITION_REFUSED');
      expect(fee.body.error.message).toContain('not monthly fixed');
      const reported = await set('REPORTED');
      expect(reported.body).toMatchObject({ status: 'REPORTED', deliveredAt: enteredAt });
      const bogus = await set('DONE');
      expect(bogus.status).toBe(400);
      expect(bogus.body.error.message).toContain('status');

      expect((await auditOf(id)).map((a) => `${a.details.from}→${a.details.to}`)).toEqual([
        'PENDING→UNDER_REVIEW',
        'UNDER_REVIEW→CORRECTION_REQUESTED',
        'CORRECTION_REQUESTED→UNDER_REVIEW',
        'UNDER_REVIEW→REPORTED',
      ]);
      expect((await timelineOf(dealId)).length).toBe(4);
    });

    it('correct (修正依頼): finance corrects any field while CORRECTION_REQUESTED; history with before and after; reconciliation’s leg', async () => {
      const dealId = await seedDeal();
      const id = await seedReport({ dealId, status: 'CORRECTION_REQUESTED' });
      const body = {
        fields: {
          billingCount: '複数回(毎月変動)',
          amountExTax: '290000',
          nextInvoiceDate: '2027-01-20',
          attachment: 'https://files.example/invoice-0001.pdf',
        },
        note: '事務局の修正依頼',
      };

      const viewer = await call(hub, 'POST', `/api/reports/${id}/correct`, tokens.viewer, body);
      expect(viewer.status).toBe(403);
      expect(await auditOf(id)).toEqual([]);

      const res = await call(hub, 'POST', `/api/reports/${id}/correct`, tokens.finance, body);
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({
        id,
        status: 'CORRECTION_REQUESTED',
        amountExTax: 300_000,
        reportedAmount: 290_000,
        note: '事務局の修正依頼',
        data: {
          billingCount: 'monthly_variable',
          amountExTax: 290_000,
          nextInvoiceDate: '2027-01-20',
        },
      });
      expect(res.body.actions).toContain('correct');
      expect(res.body.fields.map((f: { key: string; value: string }) => [f.key, f.value])).toEqual([
        ['billingCount', '複数回(毎月変動)'],
        ['orderDescription', 'Design — Website renewal'],
        ['amountExTax', '290000'],
        ['issueDate', '2026-11-23'],
        ['nextInvoiceDate', '2027-01-20'],
        ['attachment', 'https://files.example/invoice-0001.pdf'],
      ]);
      const changes = [
        { key: 'billingCount', label: '請求回数', before: '1回', after: '複数回(毎月変動)' },
        { key: 'amountExTax', label: '請求金額', before: '300000', after: '290000' },
        { key: 'nextInvoiceDate', label: '次回請求書発行日', before: null, after: '2027-01-20' },
        {
          key: 'attachment',
          label: '請求書添付',
          before: 'https://pay.example/inv/pdf',
          after: 'https://files.example/invoice-0001.pdf',
        },
      ];
      const detail = await call(hub, 'GET', `/api/reports/${id}`, tokens.viewer);
      expect(detail.body.history).toEqual([
        expect.objectContaining({
          actor: 'ops-finance',
          role: 'finance',
          action: 'report.correct',
          details: expect.objectContaining({
            from: 'CORRECTION_REQUESTED',
            to: 'CORRECTION_REQUESTED',
            changes,
            reportedAmount: 290_000,
            amountExTax: 300_000,
            note: '事務局の修正依頼',
          }),
        }),
      ]);
      expect(await timelineOf(dealId)).toEqual([
        {
          kind: 'report',
          message: `確定報告 report ${id} corrected (修正依頼): 請求回数 1回 → 複数回(毎月変動); 請求金額 300000 → 290000; 次回請求書発行日 — → 2027-01-20; 請求書添付 https://pay.example/inv/pdf → https://files.example/invoice-0001.pdf`,
          cause: 'admin ops-finance',
        },
      ]);
      // Reconciliation's reported leg is the amount entered on the platform.
      const row = await db.query('SELECT reported_amount FROM report WHERE id = $1', [id]);
      expect(Number(row.rows[0].reported_amount)).toBe(290_000);

      // Sending the values shown again changes nothing and records nothing.
      const same = await call(hub, 'POST', `/api/reports/${id}/correct`, tokens.finance, {
        fields: { amountExTax: '290000' },
      });
      expect(same.status).toBe(200);
      expect(await auditOf(id)).toHaveLength(1);

      // A second correction: its own history entry, the first correction's attachment kept.
      const again = await call(hub, 'POST', `/api/reports/${id}/correct`, admin, {
        fields: { orderDescription: 'Design（第1期） — Website renewal' },
      });
      expect(again.status).toBe(200);
      expect(again.body.fields).toContainEqual(
        expect.objectContaining({
          key: 'attachment',
          value: 'https://files.example/invoice-0001.pdf',
        }),
      );
      expect((await auditOf(id)).map((a) => [a.role, a.action])).toEqual([
        ['finance', 'report.correct'],
        ['admin', 'report.correct'],
      ]);
    });

    it('correct: unknown keys and unreadable values are 400 naming them, nothing changed; refused outside CORRECTION_REQUESTED', async () => {
      const dealId = await seedDeal();
      const id = await seedReport({ dealId, status: 'CORRECTION_REQUESTED' });
      const before = await db.query('SELECT data, fields, updated_at FROM report WHERE id = $1', [
        id,
      ]);

      const unknown = await call(hub, 'POST', `/api/reports/${id}/correct`, tokens.finance, {
        fields: { amountExTax: '1', invoiceNo: 'X-1', 失注日: '2026-11-01' },
      });
      expect(unknown.status).toBe(400);
      expect(unknown.body.error.code).toBe('VALIDATION_FAILED');
      expect(unknown.body.error.message).toBe(
        `report ${id} (confirmed_amount): unknown fields invoiceNo, 失注日: a confirmed_amount report's form has billingCount, orderDescription, amountExTax, issueDate, nextInvoiceDate, attachment, attachmentCertificate`,
      );
      const unreadable = await call(hub, 'POST', `/api/reports/${id}/correct`, tokens.finance, {
        fields: { billingCount: '一回', issueDate: '23/11/2026' },
      });
      expect(unreadable.status).toBe(400);
      expect(unreadable.body.error.message).toContain(
        'billingCount: must be one of 1回 / 複数回(毎月変動) / 複数回(月額固定) (got "一回")',
      );
      expect(unreadable.body.error.message).toContain('issueDate: must be a date YYYY-MM-DD');
      for (const bad of [
        {},
        { fields: {} },
        { fields: { amountExTax: 290000 } },
        { fields: { amountExTax: '1' }, extra: 1 },
      ]) {
        const res = await call(hub, 'POST', `/api/reports/${id}/correct`, tokens.finance, bad);
        expect({ bad, status: res.status }).toEqual({ bad, status: 400 });
      }
      const after = await db.query('SELECT data, fields, updated_at FROM report WHERE id = $1', [
        id,
      ]);
      expect(after.rows).toEqual(before.rows);
      expect(await auditOf(id)).toEqual([]);

      const underReview = await seedReport({ dealId, status: 'UNDER_REVIEW' });
      const refused = await call(
        hub,
        'POST',
        `/api/reports/${underReview}/correct`,
        tokens.finance,
        { fields: { amountExTax: '1' } },
      );
      expect(refused.status).toBe(409);
      expect(refused.body.error.code).toBe('TRANSITION_REFUSED');
      expect(refused.body.error.message).toContain(
        'correcting the fields is not allowed from UNDER_REVIEW (only from CORRECTION_REQUESTED)',
      );
      const pending = await seedReport({ dealId, status: 'PENDING' });
      expect(
        (
          await call(hub, 'POST', `/api/reports/${pending}/correct`, tokens.finance, {
            fields: { amountExTax: '1' },
          })
        ).status,
      ).toBe(409);
      expect(
        (
          await call(hub, 'POST', '/api/reports/rpt_nope/correct', tokens.finance, {
            fields: { amountExTax: '1' },
          })
        ).status,
      ).toBe(404);
    });

    it('correct: the 失注報告 answer by its label', async () => {
      const dealId = await seedDeal();
      const id = await seedReport({
        dealId,
        kind: 'lost',
        status: 'CORRECTION_REQUESTED',
        data: { lostStage: 'before_appointment', date: '2026-11-20' },
        dueAt: null,
      });
      const res = await call(hub, 'POST', `/api/reports/${id}/correct`, tokens.finance, {
        fields: { lostStage: '成約には至らなかった' },
      });
      expect(res.status).toBe(200);
      expect(res.body.data.lostStage).toBe('after_appointment');
      expect(res.body.fields).toEqual([
        expect.objectContaining({
          key: 'lostStage',
          label: '失注の状況',
          value: '成約には至らなかった',
        }),
      ]);
      expect(res.body.reportedAmount).toBeNull();
    });

    it('two operators at once: one change wins, the other is refused, one audit entry', async () => {
      const dealId = await seedDeal();
      const id = await seedReport({ dealId });
      const answers = await Promise.all([
        call(hub, 'POST', `/api/reports/${id}/mark-reported`, tokens.finance),
        call(hub, 'POST', `/api/reports/${id}/mark-reported`, tokens.finance),
        call(hub, 'POST', `/api/reports/${id}/mark-reported`, tokens.finance),
      ]);
      const ok = answers.filter((a) => a.status === 200);
      expect(ok).toHaveLength(1);
      expect(answers.filter((a) => a.status === 409)).toHaveLength(2);
      expect(await auditOf(id)).toHaveLength(1);
      expect(await timelineOf(dealId)).toHaveLength(1);
    });

    it('answers 409 REPORT_CHANGED when the report changes between the read and the update', async () => {
      const dealId = await seedDeal();
      const id = await seedReport({ dealId });
      const lock = await db.connect();
      try {
        await lock.query('BEGIN');
        await lock.query(
          `UPDATE report SET status = 'UNDER_REVIEW', updated_at = now() WHERE id = $1`,
          [id],
        );
        // The request reads the committed PENDING row, then waits on the row lock in its UPDATE.
        const pending = call(hub, 'POST', `/api/reports/${id}/mark-reported`, tokens.finance);
        await waitFor(
          async () =>
            (
              await db.query(
                `SELECT 1 FROM pg_stat_activity
                 WHERE datname = current_database() AND wait_event_type = 'Lock'
                   AND query ILIKE 'UPDATE%report%'`,
              )
            ).rowCount! > 0,
          { timeoutMs: 10_000, what: 'the request to wait on the report row' },
        );
        await lock.query('COMMIT');
        const res = await pending;
        expect(res.status).toBe(409);
        expect(res.body.error.code).toBe('REPORT_CHANGED');
        expect(res.body.error.message).toContain('it was PENDING');
      } finally {
        lock.release();
      }
      const row = await db.query('SELECT status FROM report WHERE id = $1', [id]);
      expect(row.rows[0].status).toBe('UNDER_REVIEW');
      expect(await auditOf(id)).toEqual([]);
    });
  });

  describe('a loss proposed from まだ未定 (失注): confirm and dismiss', () => {
    /** A won アイミツ deal backed by its history (the CRM's WON), with a task waiting for an invoice. */
    async function wonDealWithTask() {
      const id = nextId('cl_deal');
      await createDeal(factoryDb, {
        id,
        name: 'Website renewal',
        stage: 'WON',
        referral: { platform: 'aimitsu', id: `R-${seq}` },
        amount: null,
        timeZone: ZONE,
      });
      const task = await seedReport({ dealId: id, status: 'OVERDUE' });
      return { id, task };
    }
    const decide = (id: string, what: 'confirm' | 'dismiss', token: string, body?: unknown) =>
      call(hub, 'POST', `/api/deals/${id}/loss/${what}`, token, body);
    const dealOf = async (id: string) =>
      (
        await db.query(
          'SELECT stage, loss_proposed_at, loss_proposal, version FROM deal WHERE id = $1',
          [id],
        )
      ).rows[0];
    const auditOf = async (id: string) =>
      (
        await db.query('SELECT actor, role, action FROM audit_log WHERE target = $1 ORDER BY id', [
          id,
        ])
      ).rows;

    it('409 when nothing is proposed, 404 for an unknown deal, 400 for unknown fields', async () => {
      const { id } = await wonDealWithTask();
      const none = await decide(id, 'confirm', tokens.finance);
      expect(none.status).toBe(409);
      expect(none.body.error).toEqual({
        code: 'NO_LOSS_PROPOSED',
        message: `deal ${id} (WON) has no proposed loss to confirm: a loss is proposed by postponing one of its manual reports with reason lost (まだ未定: 失注)`,
      });
      expect((await decide(id, 'dismiss', tokens.finance)).body.error.code).toBe(
        'NO_LOSS_PROPOSED',
      );
      const unknown = await decide('cl_deal_nope', 'confirm', tokens.finance);
      expect(unknown.status).toBe(404);
      const typo = await decide(id, 'confirm', tokens.finance, { reason: 'x' });
      expect(typo.status).toBe(400);
      expect(typo.body.error.code).toBe('VALIDATION_FAILED');
      expect(await auditOf(id)).toEqual([]);
    });

    it('viewer: 403 and nothing changes; finance dismisses; admin confirms (LOST, the lost report, the task leaves the queue)', async () => {
      const { id, task } = await wonDealWithTask();
      const proposed = await call(hub, 'POST', `/api/reports/${task}/postpone`, tokens.finance, {
        reason: 'lost',
        note: '予算凍結',
      });
      expect(proposed.status).toBe(200);
      const before = await dealOf(id);
      expect(before).toMatchObject({ stage: 'WON', loss_proposal: '予算凍結' });

      for (const what of ['confirm', 'dismiss'] as const) {
        const viewer = await decide(id, what, tokens.viewer);
        expect(viewer.status).toBe(403);
        expect(viewer.body.error.code).toBe('FORBIDDEN');
      }
      expect(await dealOf(id)).toEqual(before);

      const dismissed = await decide(id, 'dismiss', tokens.finance, { note: 'まだ続く' });
      expect(dismissed.status).toBe(200);
      expect(dismissed.body).toMatchObject({ stage: 'WON', lossProposal: null });
      const owed = await call(hub, 'GET', `/api/reports/${task}`, tokens.viewer);
      // Owed again, due as before: the end of its planned issue date (the seeded 2026-11-23).
      expect(owed.body).toMatchObject({
        status: 'PENDING',
        postponeReason: null,
        dueAt: '2026-11-23T15:00:00.000Z',
      });

      await call(hub, 'POST', `/api/reports/${task}/postpone`, tokens.finance, { reason: 'lost' });
      const confirmed = await decide(id, 'confirm', admin);
      expect(confirmed.status).toBe(200);
      expect(confirmed.body).toMatchObject({ stage: 'LOST', lossProposal: null });
      const reports = await call(hub, 'GET', `/api/reports?dealId=${id}`, tokens.viewer);
      // The lost report through the normal path (the history's appointment and won with it, as
      // this seeded deal had none), and the task made moot leaves the queue.
      expect(
        reports.body.items.map((r: { kind: string; status: string }) => [r.kind, r.status]),
      ).toEqual([
        ['lost', 'PENDING'],
        ['won', 'PENDING'],
        ['appointment', 'PENDING'],
        ['confirmed_amount', 'NOT_APPLICABLE'],
      ]);
      expect(await auditOf(id)).toEqual([
        { actor: 'ops-finance', role: 'finance', action: 'deal.loss.dismiss' },
        { actor: 'ADMIN_TOKEN', role: 'admin', action: 'deal.loss.confirm' },
      ]);
      expect(await decide(id, 'confirm', admin)).toMatchObject({ status: 409 });
    });

    it('refuses a deal with invoices (409 LOSS_REFUSED, nothing changes)', async () => {
      const { id, task } = await wonDealWithTask();
      await db.query(
        `INSERT INTO invoice (id, billing_key, deal_id, item_key, amount, tax_rate_percent, tax_amount,
                              currency, description, state, invoice_number, updated_at)
         VALUES ($1, $2, $3, 'deposit', 100000, 10, 10000, 'jpy', 'deposit', 'POSTED', 'CL-0777', now())`,
        [nextId('inv'), `${id}|deposit`, id],
      );
      await call(hub, 'POST', `/api/reports/${task}/postpone`, tokens.finance, { reason: 'lost' });
      const before = await dealOf(id);
      const refused = await decide(id, 'confirm', tokens.finance);
      expect(refused.status).toBe(409);
      expect(refused.body.error).toEqual({
        code: 'LOSS_REFUSED',
        message: `deal ${id}: the loss cannot be confirmed: the deal is WON and has invoices: a deal with invoices is not lost (invoice CL-0777 is POSTED)`,
      });
      expect(await dealOf(id)).toEqual(before);
      expect(await auditOf(id)).toEqual([]);
    });
  });

  describe('overdue timer and alerts', () => {
    let prisma: PrismaService;
    let timer: ReportTimerService;

    beforeEach(async () => {
      // Tasks left owed by earlier tests must not fall due in this test's passes.
      await db.query(
        `UPDATE report SET due_at = NULL WHERE channel = 'manual' AND status = 'PENDING'`,
      );
    });
    beforeAll(() => {
      const config = loadConfig(hubEnv());
      prisma = new PrismaService(config);
      timer = new ReportTimerService(
        prisma,
        new AlertService(new OutboxService(), config, silentLogger),
        new OutboxService(),
        config,
        silentLogger,
        new SystemClock(),
      );
    });
    afterAll(async () => {
      await prisma?.onModuleDestroy();
    });

    it('turns a passed manual deadline OVERDUE once across two timers, with one alert and one timeline entry', async () => {
      const dealId = await seedDeal();
      const due = new Date('2026-12-16T15:00:00Z');
      const id = await seedReport({ dealId, dueAt: due });
      const notYet = await seedReport({ dealId, dueAt: new Date('2026-12-20T15:00:00Z') });
      const reviewing = await seedReport({ dealId, dueAt: due, status: 'UNDER_REVIEW' });
      const otherDeal = await seedDeal({ platform: 'generic' });
      const webhook = await seedReport({
        dealId: otherDeal,
        platform: 'generic',
        channel: 'webhook',
        dueAt: due,
      });

      const now = new Date('2026-12-16T15:00:30Z');
      const [a, b] = await Promise.all([timer.runOnce(now), timer.runOnce(now)]);
      expect(a.overdue + b.overdue).toBe(1);
      expect((await timer.runOnce(now)).overdue).toBe(0);

      const statuses = await db.query(
        `SELECT id, status FROM report WHERE id = ANY($1) ORDER BY id`,
        [[id, notYet, reviewing, webhook]],
      );
      expect(Object.fromEntries(statuses.rows.map((r) => [r.id, r.status]))).toEqual({
        [id]: 'OVERDUE',
        [notYet]: 'PENDING',
        [reviewing]: 'UNDER_REVIEW',
        [webhook]: 'PENDING',
      });
      const alerts = await db.query(`SELECT cause, kind, deal_id FROM alert WHERE deal_id = $1`, [
        dealId,
      ]);
      expect(alerts.rows).toEqual([
        {
          cause: `report.overdue|${id}|2026-12-16T15:00:00.000Z`,
          kind: 'report.overdue',
          deal_id: dealId,
        },
      ]);
      const timeline = await db.query(
        `SELECT message, cause FROM timeline_entry WHERE deal_id = $1`,
        [dealId],
      );
      expect(timeline.rows).toEqual([
        {
          message: `確定報告 (confirmed amount) for aimitsu is overdue: it was due 2026-12-16T15:00:00.000Z`,
          cause: 'timer: report deadline',
        },
      ]);
    });

    it('a postponed task that passes its new deadline alerts again, and GET /api/alerts lists alerts newest first', async () => {
      const dealId = await seedDeal();
      const id = await seedReport({ dealId, dueAt: new Date('2026-12-16T15:00:00Z') });
      expect((await timer.runOnce(new Date('2026-12-17T00:00:00Z'))).overdue).toBe(1);

      const postponed = await call(hub, 'POST', `/api/reports/${id}/postpone`, tokens.finance, {
        reason: 'not_started',
        newDueAt: '2099-03-01T09:00:00+09:00',
      });
      expect(postponed.status).toBe(200);
      expect(postponed.body).toMatchObject({
        status: 'PENDING',
        dueAt: '2099-03-01T00:00:00.000Z',
      });
      expect((await timer.runOnce(new Date('2099-02-28T23:59:59Z'))).overdue).toBe(0);
      expect((await timer.runOnce(new Date('2099-03-01T00:00:00Z'))).overdue).toBe(1);

      const causes = (
        await db.query(`SELECT cause FROM alert WHERE deal_id = $1 ORDER BY id`, [dealId])
      ).rows.map((r) => r.cause);
      expect(causes).toEqual([
        `report.overdue|${id}|2026-12-16T15:00:00.000Z`,
        `report.overdue|${id}|2099-03-01T00:00:00.000Z`,
      ]);

      const list = await call(hub, 'GET', '/api/alerts?limit=1', tokens.viewer);
      expect(list.status).toBe(200);
      expect(list.body.items).toEqual([
        expect.objectContaining({
          cause: `report.overdue|${id}|2099-03-01T00:00:00.000Z`,
          kind: 'report.overdue',
          dealId,
          message: expect.stringContaining('overdue'),
        }),
      ]);
      const next = await call(
        hub,
        'GET',
        `/api/alerts?limit=1&cursor=${list.body.nextCursor}`,
        tokens.viewer,
      );
      expect(next.body.items[0].cause).toBe(`report.overdue|${id}|2026-12-16T15:00:00.000Z`);
      expect((await call(hub, 'GET', '/api/alerts', undefined)).status).toBe(401);
    });
  });

  it('documents every report and alert route at /docs-json', async () => {
    const res = await call(hub, 'GET', '/docs-json', undefined);
    expect(res.status).toBe(200);
    const paths = res.body.paths as Record<string, Record<string, { summary?: string }>>;
    for (const [p, method] of [
      ['/api/reports', 'get'],
      ['/api/reports/{id}', 'get'],
      ['/api/reports/{id}/mark-reported', 'post'],
      ['/api/reports/{id}/postpone', 'post'],
      ['/api/reports/{id}/status', 'post'],
      ['/api/reports/{id}/correct', 'post'],
      ['/api/alerts', 'get'],
      ['/api/deals/{id}/loss/confirm', 'post'],
      ['/api/deals/{id}/loss/dismiss', 'post'],
    ]) {
      expect({ p, method, summary: paths[p]?.[method]?.summary }).toEqual({
        p,
        method,
        summary: expect.any(String),
      });
    }
  });
});
