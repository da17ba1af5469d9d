import {
  SlotContext,
  SlotInvoice,
  SlotItem,
  billingKeyOfFact,
  firstSlot,
  nextSlot,
  plannedDate,
  progressStepKey,
  progressStepOf,
} from './confirmation-cycle';

const D = 'cl_deal_1';
const ctx: SlotContext = { dealId: D, dealName: 'Site', zone: 'Asia/Tokyo', monthlyFixed: false };

function item(over: Partial<SlotItem>): SlotItem {
  return {
    key: 'deposit',
    label: '着手金',
    trigger: 'contract.signed',
    amount: 100_000,
    expectedInvoiceDate: null,
    startOn: null,
    months: null,
    endMonth: null,
    billedPercent: 0,
    removed: false,
    ...over,
  };
}

const monthly = item({
  key: 'ops',
  label: '保守',
  trigger: 'monthly',
  amount: 30_000,
  startOn: '2026-12-25',
  months: 3,
});
const build = item({
  key: 'build',
  label: '開発',
  trigger: 'milestone.progress',
  amount: 600_000,
  expectedInvoiceDate: '2027-01-20',
});

const inv = (billingKey: string, period: string | null, postedAt?: string): SlotInvoice => ({
  billingKey,
  period,
  rebill: billingKey.endsWith('|r1') ? 1 : 0,
  postedAt: postedAt ? new Date(postedAt) : null,
});

describe('the 確定報告 cycle: first slots', () => {
  it('a one-off item: keyed like its invoice, due on its expected date, with its amount', () => {
    expect(firstSlot(ctx, item({ expectedInvoiceDate: '2026-12-15' }))).toEqual({
      factKey: `${D}|confirmed_amount|${D}|deposit`,
      itemKey: 'deposit',
      date: '2026-12-15',
      amountExTax: 100_000,
      description: '着手金 — Site',
    });
    // Without an expected date: no deadline until the invoice posts.
    expect(firstSlot(ctx, item({}))?.date).toBeUndefined();
  });

  it('a monthly item: its first month, keyed by the month, due on its billing date', () => {
    expect(firstSlot(ctx, monthly)).toEqual({
      factKey: `${D}|confirmed_amount|${D}|ops|2026-12`,
      itemKey: 'ops',
      date: '2026-12-25',
      period: '2026-12',
      amountExTax: 30_000,
      description: '保守 (2026-12) — Site',
    });
    // A fixed monthly fee is one report per item (成約手数料発生中).
    expect(firstSlot({ ...ctx, monthlyFixed: true }, monthly)?.factKey).toBe(
      `${D}|confirmed_amount|ops`,
    );
  });

  it('a progress item: its first step by ordinal, no amount (the step is not known yet)', () => {
    expect(firstSlot(ctx, build)).toEqual({
      factKey: `${D}|confirmed_amount|${D}|build|step1`,
      itemKey: 'build',
      date: '2027-01-20',
      description: '開発 — Site',
    });
    expect(progressStepKey(D, 'build', 2)).toBe(`${D}|confirmed_amount|${D}|build|step2`);
  });

  it('nothing for an item that does not bill', () => {
    expect(firstSlot(ctx, item({ removed: true }))).toBeUndefined();
    expect(firstSlot(ctx, item({ amount: 0 }))).toBeUndefined();
    expect(firstSlot(ctx, item({ trigger: 'unknown' }))).toBeUndefined();
    expect(firstSlot(ctx, { ...monthly, startOn: null })).toBeUndefined();
    expect(firstSlot(ctx, { ...monthly, endMonth: '2026-11' })).toBeUndefined();
  });
});

describe('the 確定報告 cycle: the next slot after an approval', () => {
  it('a monthly item: the month after the approved one, until its last (or end) month', () => {
    const approved = (period: string, billed = true) => ({
      factKey: `${D}|confirmed_amount|${D}|ops|${period}`,
      billingKey: billed ? `${D}|ops|${period}` : null,
    });
    expect(nextSlot(ctx, monthly, approved('2026-12'), [])).toMatchObject({
      factKey: `${D}|confirmed_amount|${D}|ops|2027-01`,
      date: '2027-01-25',
      period: '2027-01',
    });
    // Approved by hand before its invoice came: the fact key names the month.
    expect(nextSlot(ctx, monthly, approved('2027-01', false), [])?.period).toBe('2027-02');
    expect(nextSlot(ctx, monthly, approved('2027-02'), [])).toBeUndefined();
    expect(nextSlot(ctx, { ...monthly, endMonth: '2027-01' }, approved('2027-01'), [])).toBe(
      undefined,
    );
    // A re-bill of a month is that month.
    expect(
      nextSlot(
        ctx,
        monthly,
        { factKey: `${D}|confirmed_amount|${D}|ops|2026-12|r1`, billingKey: `${D}|ops|2026-12|r1` },
        [],
      )?.period,
    ).toBe('2027-01');
  });

  it("a monthly item's month states the amount in force that month (a change from it on)", () => {
    const changed = { ...monthly, monthlyChanges: [{ fromMonth: '2027-01', amount: 36_000 }] };
    const approved = (period: string) => ({
      factKey: `${D}|confirmed_amount|${D}|ops|${period}`,
      billingKey: `${D}|ops|${period}`,
    });
    expect(firstSlot(ctx, changed)?.amountExTax).toBe(30_000);
    expect(nextSlot(ctx, changed, approved('2026-12'), [])?.amountExTax).toBe(36_000);
    expect(nextSlot(ctx, changed, approved('2027-01'), [])?.amountExTax).toBe(36_000);
  });

  it('a fixed monthly fee and a one-off item have no next slot', () => {
    const fee = { factKey: `${D}|confirmed_amount|ops`, billingKey: `${D}|ops|2026-12` };
    expect(nextSlot({ ...ctx, monthlyFixed: true }, monthly, fee, [])).toBeUndefined();
    const once = { factKey: `${D}|confirmed_amount|${D}|deposit`, billingKey: `${D}|deposit` };
    expect(nextSlot(ctx, item({}), once, [inv(`${D}|deposit`, null)])).toBeUndefined();
  });

  it('a progress item: the next step while it has not billed 100%, once the approved step is its latest', () => {
    const p30 = inv(`${D}|build|p30`, 'p30', '2027-01-20T01:00:00Z');
    const p60 = inv(`${D}|build|p60`, 'p60', '2027-02-10T01:00:00Z');
    const step1 = { factKey: progressStepKey(D, 'build', 1), billingKey: p30.billingKey };
    // The date was the first step's: the next step has none until someone moves it.
    expect(nextSlot(ctx, { ...build, billedPercent: 30 }, step1, [p30])).toEqual({
      factKey: progressStepKey(D, 'build', 2),
      itemKey: 'build',
      date: undefined,
      description: '開発 — Site',
    });
    // A date moved past the last step is the next step's.
    expect(
      nextSlot(ctx, { ...build, billedPercent: 30, expectedInvoiceDate: '2027-03-01' }, step1, [
        p30,
      ])?.date,
    ).toBe('2027-03-01');
    // The second step is already invoiced: its own approval goes on.
    expect(nextSlot(ctx, { ...build, billedPercent: 60 }, step1, [p30, p60])).toBeUndefined();
    // A report made without a task (canonical key): its step is its rank.
    const canonical = {
      factKey: `${D}|confirmed_amount|${p60.billingKey}`,
      billingKey: p60.billingKey,
    };
    expect(nextSlot(ctx, { ...build, billedPercent: 60 }, canonical, [p30, p60])?.factKey).toBe(
      progressStepKey(D, 'build', 3),
    );
    // 100% billed: nothing is left.
    expect(nextSlot(ctx, { ...build, billedPercent: 100 }, canonical, [p30, p60])).toBeUndefined();
    // Approved before its invoice came: wait for it.
    const early = { factKey: progressStepKey(D, 'build', 1), billingKey: null };
    expect(nextSlot(ctx, build, early, [])).toBeUndefined();
  });
});

describe('the 確定報告 cycle: helpers', () => {
  it('ranks progress steps by percent, re-bills aside', () => {
    const all = [
      inv(`${D}|build|p60`, 'p60'),
      inv(`${D}|build|p30`, 'p30'),
      inv(`${D}|build|p30|r1`, 'p30'),
    ];
    expect(progressStepOf(all[1], all)).toBe(1);
    expect(progressStepOf(all[0], all)).toBe(2);
    expect(progressStepOf(all[2], all)).toBeUndefined();
  });

  it('a planned date stops applying once an invoice of the item was issued on or after it', () => {
    expect(plannedDate(build, [], 'Asia/Tokyo')).toBe('2027-01-20');
    // Issued 2027-01-20 09:00 in Tokyo.
    const issued = [inv(`${D}|build|p30`, 'p30', '2027-01-20T00:00:00Z')];
    expect(plannedDate(build, issued, 'Asia/Tokyo')).toBeUndefined();
    const before = [inv(`${D}|build|p30`, 'p30', '2027-01-18T00:00:00Z')];
    expect(plannedDate(build, before, 'Asia/Tokyo')).toBe('2027-01-20');
    expect(plannedDate(item({}), [], 'Asia/Tokyo')).toBeUndefined();
  });

  it('reads the billing key a confirmed report names', () => {
    expect(billingKeyOfFact(D, `${D}|confirmed_amount|${D}|ops|2026-12`)).toBe(`${D}|ops|2026-12`);
    expect(billingKeyOfFact(D, `${D}|won`)).toBeNull();
  });
});
