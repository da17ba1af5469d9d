import { PinoLogger } from 'nestjs-pino';

import { AlertService } from '../../../src/alerts/alert.service';
import { DomainException } from '../../../src/common/domain.exception';
import { NormalizedEvent } from '../../../src/domain/normalized-event';
import { ReferralService } from '../../../src/lifecycle/referral.service';
import { PlatformReferral } from '../../../src/ports/referral-platform.port';
import { ReportTimerService } from '../../../src/reporting/report-timer.service';
import { createWebhookEvent, crmStageChanged, envelopeEvent, uniq } from '../../factories';
import { CORE_NOW, Core, startCore } from '../../support/core';

/**
 * Referral platforms as their users meet them (CONTRACT §3.5, §5, §6; docs/decisions/0013), against
 * the real Postgres: the response clock per platform profile, Failed told apart from Expired, the
 * vendor's answers (accept, decline, evaluate, skip), a closed referral that does not close the
 * deal and reports nothing more, and Partner Center's deal-registration wait before Won.
 */

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const at = (ms: number) => new Date(CORE_NOW.getTime() + ms);
const ctx = (cause: string) => ({ cause, correlationId: `corr-${uniq()}` });

describe('core: referral platforms', () => {
  let core: Core;
  let referrals: ReferralService;
  let timer: ReportTimerService;

  beforeAll(async () => {
    core = await startCore();
    referrals = core.moduleRef.get(ReferralService, { strict: false });
    const logger = {
      setContext: () => undefined,
      info: () => undefined,
      warn: () => undefined,
    } as unknown as PinoLogger;
    timer = new ReportTimerService(
      core.prisma,
      core.moduleRef.get(AlertService, { strict: false }),
      core.outbox,
      core.config,
      logger,
      core.clock,
    );
  });

  afterEach(() => core.clock.set(CORE_NOW));

  afterAll(async () => {
    await core?.close();
  });

  /** A generic referral.created as the door normalizes it (platform as the sender spells it). */
  function genericReferral(platform: string, extra: Record<string, unknown> = {}): NormalizedEvent {
    const referralId = `R-${uniq()}`;
    return {
      source: 'generic',
      kind: 'referral.created',
      occurredAt: CORE_NOW.toISOString(),
      subject: { referralId, platform },
      data: {
        referralId,
        platform,
        customer: { name: '見積株式会社' },
        title: 'コーポレートサイト制作',
        ...extra,
      },
    };
  }

  /** A Partner Center referral as its source port reads it. */
  function pcReferral(over: Partial<PlatformReferral> = {}): PlatformReferral {
    const id = over.id ?? `pc-${uniq()}`;
    return {
      id,
      title: 'Contoso ERP rollout',
      customerName: 'Contoso K.K.',
      estimatedValue: 3_000_000,
      currency: 'jpy',
      status: 'New',
      substatus: 'Pending',
      eTag: '"1"',
      createdAt: CORE_NOW,
      raw: { id },
      ...over,
    };
  }

  async function receive(ev: NormalizedEvent, snapshot?: PlatformReferral) {
    const { id: eventId } = await createWebhookEvent(core.prisma, { normalized: ev });
    await core.tx((tx) =>
      referrals.apply(tx, ev, { ...ctx(`${ev.source} ${ev.kind}`), eventId }, snapshot),
    );
    const platform = ev.source === 'partner-center' ? 'partner-center' : undefined;
    return core.prisma.referral.findFirstOrThrow({
      where: { externalId: ev.subject.referralId!, ...(platform ? { platform } : {}) },
      include: { deal: true },
    });
  }

  const receivePc = (snapshot: PlatformReferral) =>
    receive(
      {
        source: 'partner-center',
        kind: 'referral.created',
        occurredAt: CORE_NOW.toISOString(),
        subject: { referralId: snapshot.id, platform: 'partner-center' },
        data: {},
      },
      snapshot,
    );

  const answer = (id: string, a: 'accept' | 'decline' | 'evaluate' | 'skip', reason?: string) =>
    referrals.respond(id, a, { actor: 'tester', reason, audit: () => Promise.resolve() });

  const referral = (id: string) => core.prisma.referral.findUniqueOrThrow({ where: { id } });
  const deal = (id: string) => core.prisma.deal.findUniqueOrThrow({ where: { id } });
  const reports = (dealId: string) =>
    core.prisma.report.findMany({ where: { dealId }, orderBy: { createdAt: 'asc' } });
  const timeline = async (dealId: string) =>
    (await core.prisma.timelineEntry.findMany({ where: { dealId }, orderBy: { id: 'asc' } })).map(
      (t) => t.message,
    );
  const alerts = (dealId: string) =>
    core.prisma.alert.findMany({ where: { dealId }, orderBy: { createdAt: 'asc' } });
  const outbox = (dealId: string) =>
    core.prisma.$queryRaw<{ job_id: string }[]>`
      SELECT job_id FROM outbox WHERE job_name = 'ReportDeliver' AND data->>'dealId' = ${dealId}
       ORDER BY id`;

  /** Links a CRM deal id to the hub deal so that CRM stage events reach it. */
  async function linkCrm(dealId: string): Promise<string> {
    const crmDealId = `hs-${uniq()}`;
    await core.prisma.deal.update({ where: { id: dealId }, data: { crmDealId } });
    return crmDealId;
  }

  // ---- response clocks per platform ------------------------------------------------------------

  it.each(['aimitsu', 'proni', 'PRONI'])(
    'a PRONI アイミツ referral (%s) without respondBy has no clock, is stored as aimitsu and is never expired',
    async (name) => {
      const r = await receive(genericReferral(name));
      expect(r).toMatchObject({
        platform: 'aimitsu',
        state: 'OPEN',
        respondBy: null,
        clockRule: null,
      });
      expect(r.deal.referralPlatform).toBe('aimitsu');
      expect((await timeline(r.dealId)).join('\n')).toMatch(
        /no response clock \(PRONI Aimitsu sets none unless the referral names a deadline\)/,
      );
      // Four days on, the clock finds nothing to expire.
      await referrals.runClocks(at(4 * DAY));
      expect(await referral(r.id)).toMatchObject({ state: 'OPEN', respondBy: null });
      expect((await deal(r.dealId)).stage).toBe('REFERRED');
    },
  );

  it('a PRONI アイミツ referral with respondBy keeps that deadline', async () => {
    const respondBy = at(2 * DAY);
    const r = await receive(genericReferral('aimitsu', { respondBy: respondBy.toISOString() }));
    expect(r).toMatchObject({ respondBy, clockRule: 'respondBy' });
  });

  it('another platform without respondBy fails at 72 hours: FAILED, its own alert, the reason kept, the deal EXPIRED', async () => {
    const r = await receive(genericReferral('partner-network'));
    expect(r).toMatchObject({ respondBy: at(72 * HOUR), clockRule: 'default-new-72h' });
    // (runClocks looks at every referral in the database: this one's state is what counts.)
    await referrals.runClocks(at(72 * HOUR - 1));
    expect((await referral(r.id)).state).toBe('OPEN');
    await referrals.runClocks(at(72 * HOUR));
    await referrals.runClocks(at(73 * HOUR));
    const failed = await referral(r.id);
    expect(failed).toMatchObject({
      state: 'FAILED',
      respondBy: null,
      expiredAt: at(72 * HOUR),
      statusReason: `No response within 72 hours of the referral's creation (due ${at(72 * HOUR).toISOString()})`,
    });
    expect((await deal(r.dealId)).stage).toBe('EXPIRED');
    expect((await alerts(r.dealId)).map((a) => a.kind)).toEqual([
      'referral.expiring',
      'referral.failed',
    ]);
    expect((await timeline(r.dealId)).join('\n')).toMatch(
      new RegExp(`referral ${r.externalId} failed: no answer by`),
    );
    // Its platform hears of it once, with the reason.
    const [expired, ...more] = await reports(r.dealId);
    expect(more).toEqual([]);
    expect(expired).toMatchObject({ kind: 'expired', channel: 'webhook' });
    expect(expired.data).toMatchObject({ kind: 'expired', reason: failed.statusReason });
  });

  // ---- a closed referral does not close the deal ---------------------------------------------

  it('a failed referral engaged later through the CRM: the deal moves on and is won, nothing more is reported', async () => {
    const r = await receive(genericReferral('partner-network'));
    await referrals.runClocks(at(72 * HOUR));
    const crmDealId = await linkCrm(r.dealId);
    core.clock.set(at(4 * DAY));
    await core.apply(crmStageChanged(crmDealId, 'appointmentscheduled', at(4 * DAY)));
    expect((await deal(r.dealId)).stage).toBe('APPOINTMENT');
    const moved = (await timeline(r.dealId)).find((m) => m.startsWith('EXPIRED → APPOINTMENT'));
    expect(moved).toBe(
      'EXPIRED → APPOINTMENT — the referral failed (nobody answered it within 72 hours); the deal moves on without it (nothing more is reported to partner-network)',
    );
    await core.apply(crmStageChanged(crmDealId, 'contractsent', at(4 * DAY + HOUR)));
    await core.apply(
      envelopeEvent('completed', { envelopeId: `env-${uniq()}`, dealId: r.dealId }, at(5 * DAY)),
    );
    expect((await deal(r.dealId)).stage).toBe('WON');
    // The referral stays closed; the platform got the expiry and nothing after it.
    expect((await referral(r.id)).state).toBe('FAILED');
    expect((await reports(r.dealId)).map((x) => x.kind)).toEqual(['expired']);
  });

  it('a declined referral whose customer signs anyway is WON without any report beyond the decline', async () => {
    const r = await receive(genericReferral('partner-network'));
    await answer(r.id, 'decline', 'too small');
    expect((await deal(r.dealId)).stage).toBe('DECLINED');
    await core.apply(
      envelopeEvent('completed', { envelopeId: `env-${uniq()}`, dealId: r.dealId }, at(HOUR)),
    );
    expect((await deal(r.dealId)).stage).toBe('WON');
    expect((await timeline(r.dealId)).find((m) => m.startsWith('DECLINED → WON'))).toMatch(
      /the referral was declined; the deal moves on without it/,
    );
    const rows = await reports(r.dealId);
    expect(rows.map((x) => [x.kind, (x.data as { reason?: string }).reason])).toEqual([
      ['declined', 'too small'],
    ]);
    // An answer to the closed referral is refused; the deal itself moved on.
    await expect(answer(r.id, 'accept')).rejects.toBeInstanceOf(DomainException);
  });

  // ---- the vendor's answers ---------------------------------------------------------------------

  it("evaluate: Partner Center's interested starts a 7-day window; left unanswered it EXPIRES (not fails)", async () => {
    const r = await receivePc(pcReferral());
    expect(r).toMatchObject({ clockRule: 'default-new-72h', platformCreatedAt: CORE_NOW });
    core.clock.set(at(HOUR));
    const first = await answer(r.id, 'evaluate');
    expect(first.changed).toBe(true);
    expect(first.referral).toMatchObject({
      state: 'IN_EVALUATION',
      respondedAt: at(HOUR),
      respondBy: at(HOUR + 7 * DAY),
      clockRule: 'default-evaluation-7d',
    });
    // The same answer again changes nothing; skipping now is a conflict.
    expect((await answer(r.id, 'evaluate')).changed).toBe(false);
    await expect(answer(r.id, 'skip')).rejects.toMatchObject({ code: 'REFERRAL_ANSWERED' });
    expect((await deal(r.dealId)).stage).toBe('REFERRED');
    expect((await reports(r.dealId)).map((x) => [x.kind, x.factKey])).toEqual([
      ['in_evaluation', `${r.dealId}|in_evaluation`],
    ]);
    // The new referral's 72 hours no longer count.
    await referrals.runClocks(at(73 * HOUR));
    expect((await referral(r.id)).state).toBe('IN_EVALUATION');
    // A platform re-read (still New/Received, the hub's own answer) keeps the evaluation window.
    core.clock.set(at(2 * DAY));
    await receivePc(pcReferral({ id: r.externalId, substatus: 'Received', eTag: '"2"' }));
    expect(await referral(r.id)).toMatchObject({
      state: 'IN_EVALUATION',
      respondBy: at(HOUR + 7 * DAY),
    });
    await referrals.runClocks(at(HOUR + 7 * DAY - 1));
    expect((await referral(r.id)).state).toBe('IN_EVALUATION');
    await referrals.runClocks(at(HOUR + 7 * DAY));
    expect(await referral(r.id)).toMatchObject({
      state: 'EXPIRED',
      statusReason: expect.stringMatching(/^Not accepted or declined within 7 days in evaluation/),
    });
    expect((await alerts(r.dealId)).map((a) => a.kind)).toContain('referral.expired');
    expect((await alerts(r.dealId)).map((a) => a.kind)).not.toContain('referral.failed');
    expect((await reports(r.dealId)).map((x) => x.kind)).toEqual(['in_evaluation', 'expired']);
  });

  it('evaluate then accept: the deal moves to APPOINTMENT and the accept carries value and close date', async () => {
    const r = await receivePc(pcReferral());
    await answer(r.id, 'evaluate');
    await core.prisma.deal.update({
      where: { id: r.dealId },
      data: { closeDate: '2027-03-31' },
    });
    await answer(r.id, 'accept');
    expect((await deal(r.dealId)).stage).toBe('APPOINTMENT');
    expect(await referral(r.id)).toMatchObject({ state: 'ACCEPTED', respondBy: null });
    const appointment = (await reports(r.dealId)).find((x) => x.kind === 'appointment')!;
    // The deal has no amount of its own: the referral's estimated value.
    expect(appointment.data).toMatchObject({
      dealValue: 3_000_000,
      currency: 'jpy',
      closingDate: '2027-03-31',
    });
  });

  it('skip: SKIPPED, the deal DECLINED, the reason with "Not interested (skipped)"; twice changes nothing', async () => {
    const r = await receivePc(pcReferral());
    const skipped = await answer(r.id, 'skip', 'not our field');
    expect(skipped).toMatchObject({
      changed: true,
      referral: {
        state: 'SKIPPED',
        respondBy: null,
        statusReason: 'Not interested (skipped): not our field',
        declineReason: 'not our field',
      },
    });
    expect((await answer(r.id, 'skip')).changed).toBe(false);
    await expect(answer(r.id, 'evaluate')).rejects.toMatchObject({ code: 'REFERRAL_ANSWERED' });
    expect((await deal(r.dealId)).stage).toBe('DECLINED');
    const rows = await reports(r.dealId);
    expect(rows.map((x) => [x.kind, (x.data as { reason?: string }).reason])).toEqual([
      ['declined', 'Not interested (skipped): not our field'],
    ]);
    expect((await timeline(r.dealId)).join('\n')).toMatch(/skipped: not our field/);
  });

  it('evaluate and skip are Partner Center answers: another platform refuses them with 409, nothing changed', async () => {
    for (const platform of ['partner-network', 'aimitsu']) {
      const r = await receive(genericReferral(platform));
      for (const a of ['evaluate', 'skip'] as const) {
        await expect(answer(r.id, a)).rejects.toMatchObject({
          code: 'REFERRAL_ANSWER_NOT_OFFERED',
          status: 409,
        });
      }
      expect(await referral(r.id)).toMatchObject({ state: 'OPEN', respondedAt: null });
      expect(await reports(r.dealId)).toEqual([]);
    }
  });

  it("Partner Center's own Closed/Expired read from its API is EXPIRED here, with its reason", async () => {
    const r = await receivePc(pcReferral());
    await receivePc(
      pcReferral({
        id: r.externalId,
        status: 'Closed',
        substatus: 'Expired',
        statusReason: 'Archived by Partner Center',
        eTag: '"2"',
      }),
    );
    expect(await referral(r.id)).toMatchObject({
      state: 'EXPIRED',
      respondBy: null,
      statusReason: 'Archived by Partner Center',
    });
    expect((await deal(r.dealId)).stage).toBe('EXPIRED');
  });

  // ---- the deal-registration wait -------------------------------------------------------------

  it('a won report on a co-sell referral created < 72 h ago waits for the registration window, released once by the timer', async () => {
    const r = await receivePc(pcReferral({ createdAt: at(-10 * HOUR) }));
    // The partner created this one (co-sell out).
    await core.prisma.referral.update({ where: { id: r.id }, data: { direction: 'outbound' } });
    await core.prisma.deal.update({ where: { id: r.dealId }, data: { amount: 400_000 } });
    await answer(r.id, 'accept');
    await core.apply(
      envelopeEvent('completed', { envelopeId: `env-${uniq()}`, dealId: r.dealId }, at(HOUR)),
    );
    expect((await deal(r.dealId)).stage).toBe('WON');
    const notBefore = at(62 * HOUR);
    const won = (await reports(r.dealId)).find((x) => x.kind === 'won')!;
    expect(won).toMatchObject({ status: 'PENDING', notBefore });
    const appointment = (await reports(r.dealId)).find((x) => x.kind === 'appointment')!;
    // The accept went out at once; the won report has no delivery job yet.
    expect((await outbox(r.dealId)).map((j) => j.job_id)).toEqual([`report|${appointment.id}`]);
    expect((await timeline(r.dealId)).join('\n')).toContain(
      `won report for partner-center held until ${notBefore.toISOString()}`,
    );

    // (The timer looks at every held report in the database: this deal's jobs are what count.)
    const wonJobs = async () =>
      (await outbox(r.dealId)).map((j) => j.job_id).filter((id) => id.includes(won.id));
    await timer.runOnce(at(62 * HOUR - 1));
    expect(await wonJobs()).toEqual([]);
    await Promise.all([timer.runOnce(at(62 * HOUR)), timer.runOnce(at(62 * HOUR))]);
    await timer.runOnce(at(63 * HOUR));
    expect(await wonJobs()).toEqual([`report|${won.id}|after|${notBefore.getTime()}`]);
    expect((await timeline(r.dealId)).filter((m) => m.startsWith('won report released'))).toEqual([
      `won report released: its wait ended at ${notBefore.toISOString()}`,
    ]);
  });

  it('an inbound referral, or one created 72 hours ago or more, is not held', async () => {
    for (const [direction, createdAt] of [
      ['inbound', at(-10 * HOUR)],
      ['outbound', at(-72 * HOUR)],
    ] as const) {
      const r = await receivePc(pcReferral({ createdAt }));
      await core.prisma.referral.update({ where: { id: r.id }, data: { direction } });
      await answer(r.id, 'accept');
      await core.apply(
        envelopeEvent('completed', { envelopeId: `env-${uniq()}`, dealId: r.dealId }, at(HOUR)),
      );
      const won = (await reports(r.dealId)).find((x) => x.kind === 'won')!;
      expect(won.notBefore).toBeNull();
      expect((await outbox(r.dealId)).map((j) => j.job_id)).toContain(`report|${won.id}`);
    }
  });
});
