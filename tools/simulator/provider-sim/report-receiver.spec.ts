import { randomBytes } from 'node:crypto';

import { type Delivery, standardDelivery } from '../signed-delivery';
import { ReportReceiver, type StartedReportReceiver, startReportReceiver } from './report-receiver';
import { ProviderSimulator } from './simulator';

const SECRET = `whsec_${randomBytes(32).toString('base64')}`;
const OTHER_SECRET = `whsec_${randomBytes(32).toString('base64')}`;

function report(kind: string, reportId: string, extra: Record<string, unknown> = {}) {
  return {
    type: `referral.report.${kind}`,
    data: {
      reportId,
      kind,
      platform: 'generic',
      referralId: 'R-1',
      dealId: 'cl_deal_1',
      occurredAt: '2026-11-23T10:00:00Z',
      ...extra,
    },
  };
}

function delivery(
  path: string,
  kind: string,
  id: string,
  opts: { secret?: string; extra?: Record<string, unknown>; timestampSeconds?: number } = {},
): Delivery {
  return standardDelivery(path, report(kind, id, opts.extra), {
    secret: opts.secret ?? SECRET,
    id,
    timestampSeconds: opts.timestampSeconds,
  });
}

async function post(baseUrl: string, d: Delivery) {
  const res = await fetch(`${baseUrl}${d.path}`, {
    method: 'POST',
    headers: d.headers,
    body: d.body,
  });
  await res.arrayBuffer();
  return res.status;
}

describe('ReportReceiver (standalone server)', () => {
  let started: StartedReportReceiver;
  let receiver: ReportReceiver;
  const PATH = '/_sim/reports';

  beforeAll(async () => {
    started = await startReportReceiver({ secret: SECRET });
    receiver = started.receiver;
  });
  afterAll(() => started.close());
  beforeEach(() => receiver.reset());

  it('verifies the Standard Webhooks signature: 2xx and stored when valid, 401 and not stored otherwise', async () => {
    expect(started.reportUrl).toBe(`${started.url}${PATH}`);
    expect(
      await post(started.url, delivery(PATH, 'won', 'rep_1', { extra: { amountExTax: 300000 } })),
    ).toBe(200);
    expect(await post(started.url, delivery(PATH, 'won', 'rep_2', { secret: OTHER_SECRET }))).toBe(
      401,
    );

    const tampered = delivery(PATH, 'won', 'rep_3');
    tampered.body = tampered.body.replace('R-1', 'R-2');
    expect(await post(started.url, tampered)).toBe(401);

    const unsigned = delivery(PATH, 'won', 'rep_4');
    delete unsigned.headers['webhook-signature'];
    expect(await post(started.url, unsigned)).toBe(401);

    const stale = delivery(PATH, 'won', 'rep_5', {
      timestampSeconds: Math.floor(Date.now() / 1000) - 600,
    });
    expect(await post(started.url, stale)).toBe(401);

    expect(receiver.reports().map((r) => r.id)).toEqual(['rep_1']);
    expect(receiver.reports()[0]).toMatchObject({
      type: 'referral.report.won',
      kind: 'won',
      data: { reportId: 'rep_1', amountExTax: 300000 },
      deliveries: 1,
    });
    expect(receiver.rejected).toBe(4);
    expect(receiver.attempts.map((a) => a.status)).toEqual([200, 401, 401, 401, 401]);
  });

  it('stores each webhook-id once and counts duplicates (flagging a changed body)', async () => {
    const first = delivery(PATH, 'appointment', 'rep_a');
    expect(await post(started.url, first)).toBe(200);
    // a retry: same id, new timestamp and signature
    expect(
      await post(
        started.url,
        delivery(PATH, 'appointment', 'rep_a', {
          timestampSeconds: Math.floor(Date.now() / 1000) - 5,
        }),
      ),
    ).toBe(200);
    expect(await post(started.url, delivery(PATH, 'won', 'rep_b'))).toBe(200);
    // same id, different content: a sender bug the receiver reports
    expect(
      await post(started.url, delivery(PATH, 'appointment', 'rep_a', { extra: { x: 1 } })),
    ).toBe(200);

    expect(receiver.reports().map((r) => r.id)).toEqual(['rep_a', 'rep_b']);
    expect(receiver.duplicates).toBe(2);
    expect(receiver.byId('rep_a')?.deliveries).toBe(3);
    expect(receiver.mismatchedDuplicates).toEqual(['rep_a']);
    expect(receiver.byKind('appointment').map((r) => r.id)).toEqual(['rep_a']);
    expect(receiver.byKind('won').map((r) => r.id)).toEqual(['rep_b']);
    expect(receiver.byKind('lost')).toEqual([]);
  });

  it('answers an injected status sequence, then normal service; stores only on 2xx', async () => {
    receiver.setFaults({ statuses: [500, 503] });
    const d = delivery(PATH, 'confirmed_amount', 'rep_f');
    expect(await post(started.url, d)).toBe(500);
    expect(receiver.reports()).toEqual([]);
    expect(await post(started.url, d)).toBe(503);
    expect(receiver.reports()).toEqual([]);
    expect(await post(started.url, d)).toBe(200);
    expect(receiver.reports().map((r) => r.id)).toEqual(['rep_f']);
    expect(receiver.duplicates).toBe(0);
    expect(receiver.attempts.map((a) => a.outcome)).toEqual(['fault', 'fault', 'stored']);
  });

  it('answers a permanent failure until cleared (control API over HTTP)', async () => {
    const faults = await fetch(`${started.url}/_sim/reports/faults`, {
      method: 'POST',
      body: JSON.stringify({ always: 400 }),
    });
    expect(faults.status).toBe(200);
    const d = delivery(PATH, 'lost', 'rep_l');
    for (let i = 0; i < 3; i++) expect(await post(started.url, d)).toBe(400);
    expect(receiver.reports()).toEqual([]);

    await fetch(`${started.url}/_sim/reports/faults`, { method: 'DELETE' });
    expect(await post(started.url, d)).toBe(200);
    const received = (await (await fetch(`${started.url}/_sim/reports/received`)).json()) as {
      reports: { id: string }[];
      attempts: unknown[];
    };
    expect(received.reports.map((r) => r.id)).toEqual(['rep_l']);
    expect(received.attempts).toHaveLength(4);

    const bad = await fetch(`${started.url}/_sim/reports/faults`, {
      method: 'POST',
      body: JSON.stringify({ statuses: [42] }),
    });
    expect(bad.status).toBe(400);
  });

  it('refuses an authentic body that is not { type, data } with 400', async () => {
    const d = standardDelivery(PATH, { hello: 'world' }, { secret: SECRET, id: 'rep_x' });
    expect(await post(started.url, d)).toBe(400);
    expect(receiver.reports()).toEqual([]);
  });

  it('waitFor resolves once enough reports arrived and times out otherwise', async () => {
    const waiting = receiver.waitFor(1, { kind: 'delivered', timeoutMs: 2000 });
    await post(started.url, delivery(PATH, 'delivered', 'rep_d'));
    await expect(waiting).resolves.toBeUndefined();
    await expect(receiver.waitFor(2, { timeoutMs: 50 })).rejects.toThrow(/timed out/);
  });
});

describe('ReportReceiver as a ProviderSimulator module', () => {
  it('receives at /_sim/reports and at a configured path outside /_sim', async () => {
    const atSim = new ReportReceiver({ secret: SECRET });
    const elsewhere = new ReportReceiver({ secret: SECRET, path: '/platform/reports' });
    const sim = await ProviderSimulator.start({ modules: [atSim] });
    try {
      expect(await post(sim.url, delivery('/_sim/reports', 'won', 'rep_1'))).toBe(200);
      expect(atSim.byKind('won').map((r) => r.id)).toEqual(['rep_1']);
      expect(
        await post(sim.url, delivery('/_sim/reports', 'won', 'rep_2', { secret: OTHER_SECRET })),
      ).toBe(401);

      // The module name is `reports`, so only one receiver can own /_sim/reports; another one at
      // its own path is matched like a provider route.
      const sim2 = await ProviderSimulator.start({ modules: [elsewhere] });
      try {
        expect(await post(sim2.url, delivery('/platform/reports', 'lost', 'rep_3'))).toBe(200);
        expect(elsewhere.byKind('lost').map((r) => r.id)).toEqual(['rep_3']);
        expect(await post(sim2.url, delivery('/platform/other', 'lost', 'rep_4'))).toBe(404);
      } finally {
        await sim2.close();
      }
    } finally {
      await sim.close();
    }
  });
});
