import { Report } from '../../generated/prisma/client';
import { PartnerCenterReportAdapter } from './partner-center-report.adapter';
import { PartnerCenterClient } from './partner-center.client';
import { JsonPatchOp, Referral } from './partner-center.types';

/** A Partner Center that answers reads from `current` and records every PATCH. */
class FakeClient {
  patches: { id: string; ops: JsonPatchOp[]; eTag?: string }[] = [];
  constructor(public current: Referral) {}

  getReferral(): Promise<Referral> {
    return Promise.resolve(structuredClone(this.current));
  }

  patchReferral(id: string, ops: JsonPatchOp[], eTag?: string): Promise<Referral> {
    this.patches.push({ id, ops, eTag });
    const next = structuredClone(this.current);
    for (const op of ops) {
      if (op.path === '/status') next.status = op.value as string;
      if (op.path === '/substatus') next.substatus = op.value as string;
      if (op.path === '/statusReason') next.statusReason = op.value as string;
    }
    next.eTag = `"${this.patches.length}"`;
    this.current = next;
    return Promise.resolve(structuredClone(next));
  }
}

const referral = (over: Partial<Referral> = {}): Referral => ({
  id: 'R-1',
  status: 'New',
  substatus: 'Pending',
  eTag: '"0"',
  details: { dealValue: 300000, currency: 'JPY', closingDateTime: null },
  ...over,
});

const report = (kind: string, data: Record<string, unknown> = {}): Report =>
  ({
    id: `rpt_${kind}`,
    kind,
    referralId: 'R-1',
    data: { kind, referralId: 'R-1', ...data },
  }) as unknown as Report;

function adapterWith(current: Referral) {
  const client = new FakeClient(current);
  return {
    client,
    adapter: new PartnerCenterReportAdapter(client as unknown as PartnerCenterClient),
  };
}

const op = (path: string, value: unknown) => ({ op: 'replace', path, value });

describe('PartnerCenterReportAdapter', () => {
  it('accepting sends Active/Accepted with the deal value, currency and closing date, with the eTag', async () => {
    const { adapter, client } = adapterWith(referral());
    const result = await adapter.deliver(
      report('appointment', { dealValue: 3_000_000, currency: 'jpy', closingDate: '2027-03-31' }),
    );
    expect(result).toMatchObject({ status: 'REPORTED', referral: { status: 'Active' } });
    expect(client.patches).toEqual([
      {
        id: 'R-1',
        eTag: '"0"',
        ops: [
          op('/status', 'Active'),
          op('/substatus', 'Accepted'),
          op('/details/dealValue', '3000000'),
          op('/details/currency', 'JPY'),
          op('/details/closingDateTime', '2027-03-31T00:00:00Z'),
        ],
      },
    ]);
  });

  it.each([
    ['declined', 'Declined', 'outside our expertise'],
    ['lost', 'Lost', 'CRM stage set to lost'],
    ['expired', 'Expired', "No response within 72 hours of the referral's creation"],
  ])('%s sends Closed/%s with the reason as statusReason', async (kind, substatus, reason) => {
    const { adapter, client } = adapterWith(referral());
    expect(await adapter.deliver(report(kind, { reason }))).toMatchObject({ status: 'REPORTED' });
    expect(client.patches[0].ops).toEqual([
      op('/status', 'Closed'),
      op('/substatus', substatus),
      op('/statusReason', reason),
    ]);
  });

  it('in evaluation sends New/Received', async () => {
    const { adapter, client } = adapterWith(referral());
    await adapter.deliver(report('in_evaluation', { date: '2026-11-24' }));
    expect(client.patches[0].ops).toEqual([op('/status', 'New'), op('/substatus', 'Received')]);
  });

  it('sends nothing again when the referral already says it (a repeated delivery)', async () => {
    const { adapter, client } = adapterWith(
      referral({
        status: 'Active',
        substatus: 'Accepted',
        details: { dealValue: 3000000, currency: 'JPY', closingDateTime: '2027-03-31T00:00:00Z' },
      }),
    );
    const result = await adapter.deliver(
      report('appointment', { dealValue: 3_000_000, currency: 'jpy', closingDate: '2027-03-31' }),
    );
    expect(result.status).toBe('REPORTED');
    expect(client.patches).toEqual([]);
  });

  it('a closed referral is final: the same close is reported, any other is not applicable', async () => {
    const closed = referral({
      status: 'Closed',
      substatus: 'Expired',
      statusReason: 'by Microsoft',
    });
    const same = adapterWith(closed);
    expect(await same.adapter.deliver(report('expired', { reason: 'ours' }))).toMatchObject({
      status: 'REPORTED',
    });
    expect(same.client.patches).toEqual([]);
    const other = adapterWith(closed);
    expect(await other.adapter.deliver(report('won', { amountExTax: 1, currency: 'jpy' }))).toEqual(
      expect.objectContaining({
        status: 'NOT_APPLICABLE',
        reason: 'the referral is already Closed/Expired on Partner Center',
      }),
    );
    expect(other.client.patches).toEqual([]);
  });

  it('never moves a referral back: in evaluation after it was accepted is not applicable', async () => {
    const { adapter, client } = adapterWith(referral({ status: 'Active', substatus: 'Accepted' }));
    expect(await adapter.deliver(report('in_evaluation'))).toMatchObject({
      status: 'NOT_APPLICABLE',
      reason: 'the referral is already Active/Accepted on Partner Center',
    });
    expect(client.patches).toEqual([]);
  });

  it('records the kinds Partner Center has no place for as not applicable', async () => {
    const { adapter } = adapterWith(referral());
    expect(await adapter.deliver(report('confirmed_amount'))).toEqual({
      status: 'NOT_APPLICABLE',
      reason: 'Partner Center has no confirmed_amount report',
    });
    expect(await adapter.deliver(report('lost_withdrawn'))).toEqual({
      status: 'NOT_APPLICABLE',
      reason: 'Partner Center cannot reopen a closed referral',
    });
  });
});
