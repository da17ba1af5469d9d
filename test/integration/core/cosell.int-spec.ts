import { NormalizedEvent } from '../../../src/domain/normalized-event';
import { COSELL_UNCONFIGURED, cosellJobId } from '../../../src/lifecycle/settle.service';
import { ReferralService } from '../../../src/lifecycle/referral.service';
import { PlatformReferral } from '../../../src/ports/referral-platform.port';
import { FakeCrmAdapter, FakeCrmRecord } from '../../fake-crm/fake-crm.adapter';
import { FakeCrmDelivery, FakeCrmWebhook } from '../../fake-crm/fake-crm.webhook';
import { uniq } from '../../factories';
import { CORE_NOW, Core, startCore } from '../../support/core';

/**
 * Co-sell out (CONTRACT §5; docs/decisions/0014), in the core: the CRM's request is stored on the
 * deal and the settle step queues the creation of its Partner Center referral once, under the
 * deal's row lock, whatever the number of events; without Partner Center credentials it says so
 * once and queues nothing; a referral webhook that names the deal's CRM id before the job recorded
 * it is linked to that deal. The job itself (Partner Center calls) is tested end to end
 * (test/e2e/cosell.e2e-spec.ts).
 */

const PARTNER_CENTER_ENV = {
  PARTNER_CENTER_TENANT_ID: 'tenant-1',
  PARTNER_CENTER_CLIENT_ID: 'client-1',
  PARTNER_CENTER_CLIENT_SECRET: 'secret-1',
  PARTNER_CENTER_REFRESH_TOKEN: 'refresh-1',
};

const hoursAgo = (h: number) => new Date(CORE_NOW.getTime() - h * 3_600_000);

describe('core: co-sell requests from the CRM', () => {
  const fake = new FakeCrmAdapter();
  const door = new FakeCrmWebhook();
  let configured: Core;
  let unconfigured: Core;

  beforeAll(async () => {
    configured = await startCore({ crm: fake, env: PARTNER_CENTER_ENV });
    unconfigured = await startCore({ crm: fake });
  });

  afterAll(async () => {
    await configured?.close();
    await unconfigured?.close();
  });

  const deliver = async (core: Core, d: Omit<FakeCrmDelivery, 'at'>, at: Date) =>
    core.apply(door.event({ ...d, at: at.getTime() }), { remote: await fake.readDeal(d.deal) });

  const newFakeDeal = (over: Partial<FakeCrmRecord> = {}): FakeCrmRecord =>
    fake.put({
      id: `fc-${uniq()}`,
      title: 'Kiosk rollout',
      value: '1200000',
      currencyCode: 'JPY',
      column: 'fc-intro',
      person: { email: `hanako-${uniq()}@example.test`, first: 'Hanako', last: 'Yamada' },
      organisation: 'Fake Foods KK',
      coSell: true,
      expectedClose: '2027-03-31',
      ...over,
    });

  const cosellJobs = (core: Core, dealId: string) =>
    core.prisma.$queryRaw<{ job_name: string; job_id: string; data: { dealId: string } }[]>`
      SELECT job_name, job_id, data FROM outbox
       WHERE job_name = 'ReferralCosellCreate' AND data->>'dealId' = ${dealId} ORDER BY id`;
  const messages = async (core: Core, dealId: string) =>
    (await core.prisma.timelineEntry.findMany({ where: { dealId }, orderBy: { id: 'asc' } })).map(
      (t) => t.message,
    );

  it('stores the request and the close date, and queues one creation job however many events follow', async () => {
    const fc = newFakeDeal();
    const { dealId } = await deliver(configured, { event: 'deal.added', deal: fc.id }, hoursAgo(5));
    // The same deal again, moved, and announced twice more.
    fake.move(fc.id, 'fc-talks');
    await deliver(
      configured,
      { event: 'deal.moved', deal: fc.id, column: 'fc-talks' },
      hoursAgo(4),
    );
    await deliver(configured, { event: 'deal.added', deal: fc.id }, hoursAgo(5));
    await deliver(configured, { event: 'deal.added', deal: fc.id }, hoursAgo(5));

    const deal = await configured.prisma.deal.findUniqueOrThrow({ where: { id: dealId! } });
    expect(deal).toMatchObject({
      cosell: true,
      closeDate: '2027-03-31',
      cosellRequestedAt: CORE_NOW,
      referralId: null,
      stage: 'NEGOTIATING',
    });
    expect(await cosellJobs(configured, dealId!)).toEqual([
      {
        job_name: 'ReferralCosellCreate',
        job_id: cosellJobId(dealId!, CORE_NOW),
        data: expect.objectContaining({ dealId }) as unknown,
      },
    ]);
    expect(
      (await messages(configured, dealId!)).filter((m) => m.startsWith('co-sell requested')),
    ).toEqual([
      `co-sell requested: creating the Partner Center referral for FakeCRM deal ${fc.id}`,
    ]);
  });

  it('without Partner Center credentials: the timeline says so once, and nothing is queued', async () => {
    const fc = newFakeDeal();
    const { dealId } = await deliver(
      unconfigured,
      { event: 'deal.added', deal: fc.id },
      hoursAgo(3),
    );
    fake.move(fc.id, 'fc-talks');
    await deliver(
      unconfigured,
      { event: 'deal.moved', deal: fc.id, column: 'fc-talks' },
      hoursAgo(2),
    );

    const deal = await unconfigured.prisma.deal.findUniqueOrThrow({ where: { id: dealId! } });
    expect(deal).toMatchObject({ cosell: true, cosellRequestedAt: null });
    expect(await cosellJobs(unconfigured, dealId!)).toEqual([]);
    expect((await messages(unconfigured, dealId!)).filter((m) => m.startsWith('co-sell'))).toEqual([
      COSELL_UNCONFIGURED,
    ]);
  });

  it('asks for nothing without the CRM flag, nor for a lost deal', async () => {
    const plain = newFakeDeal({ coSell: false });
    const lost = newFakeDeal({ column: 'fc-lost' });
    const a = await deliver(configured, { event: 'deal.added', deal: plain.id }, hoursAgo(2));
    const b = await deliver(configured, { event: 'deal.added', deal: lost.id }, hoursAgo(2));
    for (const dealId of [a.dealId!, b.dealId!]) {
      expect(await cosellJobs(configured, dealId)).toEqual([]);
      const deal = await configured.prisma.deal.findUniqueOrThrow({ where: { id: dealId } });
      expect(deal.cosellRequestedAt).toBeNull();
    }
    expect(
      (await configured.prisma.deal.findUniqueOrThrow({ where: { id: b.dealId! } })).stage,
    ).toBe('LOST');
  });

  it('a referral webhook naming the CRM deal before the job recorded it links to that deal, not a new one', async () => {
    const fc = newFakeDeal();
    const { dealId } = await deliver(configured, { event: 'deal.added', deal: fc.id }, hoursAgo(1));
    const referralId = `pc-${uniq()}`;
    const createdAt = new Date(CORE_NOW.getTime() - 60_000);
    const snapshot: PlatformReferral = {
      id: referralId,
      title: 'Kiosk rollout',
      customerName: 'Fake Foods KK',
      estimatedValue: 1_200_000,
      currency: 'jpy',
      status: 'Active',
      substatus: 'Accepted',
      eTag: '"e-1"',
      createdAt,
      acceptedAt: createdAt,
      externalReference: fc.id,
      raw: { id: referralId, externalReferenceId: fc.id, direction: 'Outgoing' },
    };
    const ev: NormalizedEvent = {
      source: 'partner-center',
      kind: 'referral.created',
      occurredAt: CORE_NOW.toISOString(),
      subject: { platform: 'partner-center', referralId },
      data: {},
    };
    const referrals = configured.moduleRef.get(ReferralService, { strict: false });
    const outcome = await configured.tx((t) =>
      referrals.apply(
        t,
        ev,
        { cause: 'partner-center referral-created', correlationId: 'c-1' },
        snapshot,
      ),
    );

    expect(outcome).toEqual({ dealId });
    const row = await configured.prisma.referral.findUniqueOrThrow({
      where: { platform_externalId: { platform: 'partner-center', externalId: referralId } },
    });
    expect(row).toMatchObject({
      dealId,
      direction: 'outbound',
      state: 'ACCEPTED',
      platformCreatedAt: createdAt,
      eTag: '"e-1"',
    });
    expect(
      await configured.prisma.deal.findUniqueOrThrow({ where: { id: dealId! } }),
    ).toMatchObject({ referralPlatform: 'partner-center', referralId });
    expect(await configured.prisma.deal.count({ where: { referralId } })).toBe(1);
    expect(await messages(configured, dealId!)).toContainEqual(
      `co-sell referral ${referralId} announced by its webhook on partner-center (Active/Accepted): the deal now reports to it`,
    );
  });
});
