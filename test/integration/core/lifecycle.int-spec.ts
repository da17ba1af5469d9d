import { createContract, createDeal, crmStageChanged, envelopeEvent, uniq } from '../../factories';
import { CORE_NOW, Core, startCore } from '../../support/core';

/**
 * The deal lifecycle against the real Postgres, driven as the event pipeline drives it
 * (LifecycleService.apply in one transaction per event), without the door or a worker.
 */

/** An instant `h` hours before the core's clock: events of one test happen in this order. */
const hoursAgo = (h: number) => new Date(CORE_NOW.getTime() - h * 3_600_000);

describe('core: deal lifecycle', () => {
  let core: Core;

  beforeAll(async () => {
    core = await startCore();
  });

  afterAll(async () => {
    await core?.close();
  });

  const deal = (id: string) => core.prisma.deal.findUniqueOrThrow({ where: { id } });
  const timeline = (dealId: string) =>
    core.prisma.timelineEntry.findMany({ where: { dealId }, orderBy: { id: 'asc' } });
  const triggers = (dealId: string) =>
    core.prisma.stageTrigger.findMany({ where: { dealId }, orderBy: { id: 'asc' } });
  const outbox = (dealId: string) =>
    core.prisma.$queryRaw<{ job_id: string }[]>`
      SELECT job_id FROM outbox WHERE data->>'dealId' = ${dealId} ORDER BY id`;

  it('CRM stages and the signed envelope fold a deal from REFERRED through CONTRACT_SENT to WON', async () => {
    const crmDealId = `hs-${uniq()}`;
    const d = await createDeal(core.prisma, { crmDealId });
    const envelopeId = `env-${uniq()}`;

    const steps: [ReturnType<typeof crmStageChanged>, string][] = [
      [crmStageChanged(crmDealId, 'appointmentscheduled', hoursAgo(8)), 'APPOINTMENT'],
      [crmStageChanged(crmDealId, 'qualifiedtobuy', hoursAgo(6)), 'NEGOTIATING'],
      [crmStageChanged(crmDealId, 'contractsent', hoursAgo(4)), 'CONTRACT_SENT'],
      [envelopeEvent('completed', { envelopeId, dealId: d.id }, hoursAgo(2)), 'WON'],
    ];
    for (const [ev, stage] of steps) {
      const outcome = await core.apply(ev);
      expect(outcome).toMatchObject({ dealId: d.id });
      expect(outcome.ignored).toBeUndefined();
      expect((await deal(d.id)).stage).toBe(stage);
    }

    const won = await deal(d.id);
    expect(won.wonAt).toEqual(CORE_NOW);
    expect(won.version).toBe(4);
    const moves = (await timeline(d.id)).filter((t) => t.kind === 'transition');
    expect(moves.map((t) => [t.fromStage, t.toStage])).toEqual([
      ['REFERRED', 'APPOINTMENT'],
      ['APPOINTMENT', 'NEGOTIATING'],
      ['NEGOTIATING', 'CONTRACT_SENT'],
      ['CONTRACT_SENT', 'WON'],
    ]);
    expect((await triggers(d.id)).map((t) => t.target ?? t.type)).toEqual([
      'APPOINTMENT',
      'NEGOTIATING',
      'CONTRACT_SENT',
      'envelope.completed',
    ]);
    // The envelope (sent outside the hub: DocuSign is not configured) becomes the deal's contract.
    // It carries its signing date like a contract the hub sent (completedAt = the event's time).
    expect(await core.prisma.contract.findUnique({ where: { dealId: d.id } })).toMatchObject({
      envelopeId,
      status: 'COMPLETED',
      completedAt: hoursAgo(2),
      endedAt: null,
    });
    // Without DocuSign or HubSpot credentials the hub queues neither an envelope nor a CRM sync.
    expect(await outbox(d.id)).toEqual([]);
  });

  it('events that arrive out of order end in the stage of in-order delivery', async () => {
    const crmDealId = `hs-${uniq()}`;
    const d = await createDeal(core.prisma, {
      crmDealId,
      stage: 'NEGOTIATING',
      stageAt: hoursAgo(9),
    });
    const envelopeId = `env-${uniq()}`;

    // The signature (later at its source) is heard of before the contractsent stage change.
    await core.apply(envelopeEvent('completed', { envelopeId, dealId: d.id }, hoursAgo(2)));
    expect((await deal(d.id)).stage).toBe('WON');
    await core.apply(crmStageChanged(crmDealId, 'contractsent', hoursAgo(4)));

    expect((await deal(d.id)).stage).toBe('WON');
    const entries = await timeline(d.id);
    expect(entries.filter((t) => t.kind === 'refused')).toEqual([]);
    expect(entries.filter((t) => t.kind === 'transition').map((t) => t.toStage)).toEqual(['WON']);
  });

  it('a refused transition leaves the stage and writes the reason on the timeline', async () => {
    const crmDealId = `hs-${uniq()}`;
    const d = await createDeal(core.prisma, { crmDealId, stage: 'WON', stageAt: hoursAgo(9) });

    const back = await core.apply(crmStageChanged(crmDealId, 'appointmentscheduled', hoursAgo(3)));
    const declined = await core.apply(
      envelopeEvent('declined', { envelopeId: `env-${uniq()}`, dealId: d.id }, hoursAgo(2)),
    );

    const after = await deal(d.id);
    expect(after.stage).toBe('WON');
    expect(after.version).toBe(d.version);
    const entries = await timeline(d.id);
    expect(entries.filter((t) => t.kind === 'transition')).toEqual([]);
    expect(
      entries
        .filter((t) => t.kind === 'refused')
        .map((t) => ({ eventId: t.eventId, fromStage: t.fromStage, message: t.message })),
    ).toEqual([
      {
        eventId: back.eventId,
        fromStage: 'WON',
        message:
          'CRM stage APPOINTMENT refused: the deal is WON: the CRM cannot move it back to APPOINTMENT',
      },
      {
        eventId: declined.eventId,
        fromStage: 'WON',
        message:
          'envelope.declined refused: the deal is WON: an envelope declined after signing does not undo it',
      },
    ]);
  });

  it('a HubSpot stage the pipeline does not map is refused on the timeline and moves nothing', async () => {
    const crmDealId = `hs-${uniq()}`;
    const d = await createDeal(core.prisma, {
      crmDealId,
      stage: 'APPOINTMENT',
      stageAt: hoursAgo(9),
    });

    await core.apply(crmStageChanged(crmDealId, 'custom-stage-17', hoursAgo(1)));

    expect((await deal(d.id)).stage).toBe('APPOINTMENT');
    expect(await triggers(d.id)).toHaveLength(1);
    const refused = (await timeline(d.id)).filter((t) => t.kind === 'refused');
    expect(refused.map((t) => t.message)).toEqual([
      'HubSpot stage "custom-stage-17" of pipeline "default" is not mapped to a hub stage (set HUBSPOT_PIPELINE_STAGES)',
    ]);
  });

  it('a duplicate event changes nothing: the same event replayed, or the same stage resent', async () => {
    const crmDealId = `hs-${uniq()}`;
    const d = await createDeal(core.prisma, {
      crmDealId,
      stage: 'NEGOTIATING',
      stageAt: hoursAgo(9),
    });
    const first = await core.apply(crmStageChanged(crmDealId, 'contractsent', hoursAgo(3)));
    const snapshot = async () => ({
      deal: await deal(d.id),
      triggers: await triggers(d.id),
      timeline: await timeline(d.id),
      outbox: await outbox(d.id),
    });
    const before = await snapshot();
    expect(before.deal.stage).toBe('CONTRACT_SENT');

    // The same inbox row applied again (a replay of the event).
    await core.apply(crmStageChanged(crmDealId, 'contractsent', hoursAgo(3)), {
      eventId: first.eventId,
    });
    expect(await snapshot()).toEqual(before);

    // HubSpot sending the same stage again (a new event): recorded as "no change", nothing moves.
    const again = await core.apply(crmStageChanged(crmDealId, 'contractsent', hoursAgo(2)));
    const after = await snapshot();
    expect(after.deal).toEqual(before.deal);
    expect(after.outbox).toEqual(before.outbox);
    expect(after.timeline.slice(0, before.timeline.length)).toEqual(before.timeline);
    expect(
      after.timeline.slice(before.timeline.length).map((t) => [t.kind, t.eventId, t.message]),
    ).toEqual([
      [
        'event',
        again.eventId,
        'CRM stage CONTRACT_SENT: the deal already is CONTRACT_SENT (no change)',
      ],
    ]);
  });

  describe("a foreign envelope naming the deal (issue 12: the deal's envelope is the one the hub made)", () => {
    it('cannot take over a deal whose own envelope is still being made: timeline, ignored, nothing moves', async () => {
      const d = await createDeal(core.prisma, { stage: 'CONTRACT_SENT' });
      const contract = await createContract(core.prisma, { dealId: d.id, status: 'CREATING' });
      const foreign = `env-foreign-${uniq()}`;

      const outcome = await core.apply(
        envelopeEvent('completed', { envelopeId: foreign, dealId: d.id }, hoursAgo(1)),
      );
      expect(outcome.ignored).toMatch(/is not the deal's envelope: the hub's own envelope/);
      expect(
        await core.prisma.contract.findUniqueOrThrow({ where: { id: contract.id } }),
      ).toMatchObject({
        envelopeId: null,
        status: 'CREATING',
      });
      expect((await deal(d.id)).stage).toBe('CONTRACT_SENT');
      const [entry] = (await timeline(d.id)).filter((t) => t.kind === 'contract');
      expect(entry.message).toMatch(
        new RegExp(
          `envelope ${foreign} \\(completed\\) names this deal but was not made by the hub; ignored`,
        ),
      );
      expect(entry.details).toMatchObject({ envelopeId: foreign, foreign: true });

      // A forged contract id is no better than none.
      const forged = await core.apply(
        envelopeEvent(
          'completed',
          { envelopeId: foreign, dealId: d.id, contractId: 'ctr_guess' },
          hoursAgo(1),
        ),
      );
      expect(forged.ignored).toBeDefined();
      expect((await deal(d.id)).stage).toBe('CONTRACT_SENT');
    });

    it("the hub's own envelope, arriving before its id is recorded, carries the contract and is taken", async () => {
      const d = await createDeal(core.prisma, { stage: 'CONTRACT_SENT' });
      const contract = await createContract(core.prisma, { dealId: d.id, status: 'CREATING' });
      const own = `env-own-${uniq()}`;
      const outcome = await core.apply(
        envelopeEvent(
          'completed',
          { envelopeId: own, dealId: d.id, contractId: contract.id },
          hoursAgo(1),
        ),
      );
      expect(outcome.ignored).toBeUndefined();
      expect(
        await core.prisma.contract.findUniqueOrThrow({ where: { id: contract.id } }),
      ).toMatchObject({
        envelopeId: own,
        status: 'COMPLETED',
      });
      expect((await deal(d.id)).stage).toBe('WON');
    });

    it('once the deal has its envelope, another naming the deal is recorded and ignored', async () => {
      const d = await createDeal(core.prisma, { stage: 'CONTRACT_SENT' });
      const contract = await createContract(core.prisma, { dealId: d.id, status: 'SENT' });
      const foreign = `env-foreign-${uniq()}`;
      const outcome = await core.apply(
        envelopeEvent(
          'declined',
          { envelopeId: foreign, dealId: d.id, contractId: contract.id },
          hoursAgo(1),
        ),
      );
      expect(outcome.ignored).toBe(
        `envelope ${foreign} is not the deal's envelope: the deal's envelope is ${contract.envelopeId}`,
      );
      expect(
        (await core.prisma.contract.findUniqueOrThrow({ where: { id: contract.id } })).status,
      ).toBe('SENT');
      expect((await deal(d.id)).stage).toBe('CONTRACT_SENT');
      expect((await timeline(d.id)).map((t) => t.message)).toContainEqual(
        expect.stringContaining(
          `envelope ${foreign} (declined) names this deal but was not made by the hub`,
        ),
      );
    });
  });
});
