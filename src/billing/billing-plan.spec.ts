import {
  BillingPlan,
  ParsePlanResult,
  PlanItem,
  contractedAmount,
  formatPath,
  invoicedMonthErrors,
  isIsoDate,
  parseAdditionalItems,
  parseBillingPlan,
  planPathOf,
} from './billing-plan';

/** The plan of CONTRACT §4. */
const contractExample = () => ({
  currency: 'jpy',
  taxRatePercent: 10,
  billingCount: 'one_time',
  items: [
    { key: 'deposit', label: '着手金', percent: 30, trigger: 'contract.signed' },
    {
      key: 'design',
      label: 'Design',
      percent: 30,
      trigger: 'milestone.accepted',
      expectedInvoiceDate: '2026-12-15',
      acceptanceDays: 5,
      silentApproval: true,
    },
    { key: 'balance', label: '残金', amount: 120000, trigger: 'milestone.accepted' },
  ],
});

const deal = { dealAmount: 400000, currency: 'jpy' };

function ok(result: ParsePlanResult): { plan: BillingPlan; items: PlanItem[] } {
  if (!result.ok) throw new Error(`expected ok, got ${JSON.stringify(result.errors)}`);
  return result;
}

function errorsOf(result: ParsePlanResult): string[] {
  if (result.ok) throw new Error('expected errors, got ok');
  return result.errors;
}

/** A one-item plan around `item`, for field-level checks. */
function withItem(item: Record<string, unknown>, plan: Record<string, unknown> = {}) {
  return { currency: 'jpy', items: [item], ...plan };
}

const fixed = (item: Record<string, unknown> = {}) => ({
  key: 'x',
  label: 'X',
  amount: 1000,
  trigger: 'contract.signed',
  ...item,
});

describe('parseBillingPlan — the contract example', () => {
  it('resolves a ¥400,000 deal into 120000 / 120000 / 120000', () => {
    const { plan, items } = ok(parseBillingPlan(contractExample(), deal));
    expect(items).toEqual([
      {
        key: 'deposit',
        label: '着手金',
        trigger: 'contract.signed',
        amount: 120000,
        percent: 30,
        taxRatePercent: 10,
        silentApproval: false,
        position: 0,
      },
      {
        key: 'design',
        label: 'Design',
        trigger: 'milestone.accepted',
        amount: 120000,
        percent: 30,
        taxRatePercent: 10,
        expectedInvoiceDate: '2026-12-15',
        acceptanceDays: 5,
        silentApproval: true,
        position: 1,
      },
      {
        key: 'balance',
        label: '残金',
        trigger: 'milestone.accepted',
        amount: 120000,
        taxRatePercent: 10,
        silentApproval: false,
        position: 2,
      },
    ]);
    expect(plan.currency).toBe('jpy');
    expect(plan.taxRatePercent).toBe(10);
    expect(plan.billingCount).toBe('one_time');
    expect(plan.items).toHaveLength(3);
  });

  it('accepts the plan as a JSON string (HubSpot property)', () => {
    const { items } = ok(parseBillingPlan(JSON.stringify(contractExample()), deal));
    expect(items.map((i) => [i.key, i.amount])).toEqual([
      ['deposit', 120000],
      ['design', 120000],
      ['balance', 120000],
    ]);
  });

  it('reports invalid JSON with the parser message', () => {
    const errors = errorsOf(parseBillingPlan('{"currency": jpy}', deal));
    expect(errors).toHaveLength(1);
    expect(errors[0]).toMatch(/^plan: invalid JSON \(Unexpected token .+\)$/);
    expect(errorsOf(parseBillingPlan('', deal))).toEqual([
      'plan: invalid JSON (Unexpected end of JSON input)',
    ]);
  });

  it('refuses JSON that is not an object', () => {
    expect(errorsOf(parseBillingPlan('[1]', deal))).toEqual(['plan: must be a JSON object']);
    expect(errorsOf(parseBillingPlan(null, deal))).toEqual(['plan: must be a JSON object']);
    expect(errorsOf(parseBillingPlan('"x"', deal))).toEqual(['plan: must be a JSON object']);
  });

  it('lower-cases the currency and matches the deal case-insensitively', () => {
    const { plan } = ok(
      parseBillingPlan(
        { ...contractExample(), currency: 'JPY' },
        {
          dealAmount: 400000,
          currency: 'JPY',
        },
      ),
    );
    expect(plan.currency).toBe('jpy');
  });

  it('rounds percents half up', () => {
    const { items } = ok(
      parseBillingPlan(
        withItem({ key: 'a', label: 'A', percent: 50, trigger: 'contract.signed' }),
        {
          dealAmount: 5,
        },
      ),
    );
    expect(items[0].amount).toBe(3);
  });
});

describe('parseBillingPlan — defaults', () => {
  it('defaults taxRatePercent to 0 and billingCount to one_time', () => {
    const { plan, items } = ok(parseBillingPlan(withItem(fixed()), {}));
    expect(plan.taxRatePercent).toBe(0);
    expect(plan.billingCount).toBe('one_time');
    expect(items[0].taxRatePercent).toBe(0);
    expect(items[0].silentApproval).toBe(false);
  });

  it('gives every item the plan tax rate', () => {
    const { items } = ok(parseBillingPlan(withItem(fixed(), { taxRatePercent: 8 }), {}));
    expect(items[0].taxRatePercent).toBe(8);
  });

  it('does not require a deal amount or currency for amount-only plans', () => {
    expect(parseBillingPlan(withItem(fixed())).ok).toBe(true);
    expect(parseBillingPlan(withItem(fixed()), { dealAmount: null }).ok).toBe(true);
  });
});

describe('parseBillingPlan — field errors', () => {
  const cases: [string, Record<string, unknown>, string[]][] = [
    ['missing currency', { items: [fixed()] }, ['currency: required']],
    [
      'bad currency',
      { currency: 'yen!', items: [fixed()] },
      ['currency: must be a 3-letter ISO 4217 currency code'],
    ],
    [
      'tax rate out of range',
      withItem(fixed(), { taxRatePercent: 101 }),
      ['taxRatePercent: must be between 0 and 100'],
    ],
    [
      'negative tax rate',
      withItem(fixed(), { taxRatePercent: -1 }),
      ['taxRatePercent: must be between 0 and 100'],
    ],
    [
      'tax rate as a string',
      withItem(fixed(), { taxRatePercent: '10' }),
      ['taxRatePercent: must be a number'],
    ],
    [
      'unknown billingCount',
      withItem(fixed(), { billingCount: 'weekly' }),
      ['billingCount: must be one of one_time, monthly_variable, monthly_fixed'],
    ],
    ['items not an array', { currency: 'jpy', items: {} }, ['items: must be an array of items']],
    [
      'too many items',
      { currency: 'jpy', items: Array.from({ length: 501 }, (_, i) => fixed({ key: `k${i}` })) },
      ['items: a plan has at most 500 items (this one has 501)'],
    ],
    [
      'percent above 100',
      {
        currency: 'jpy',
        items: [fixed(), fixed({ key: 'y', amount: undefined, percent: 120 })],
      },
      ['items[1].percent: must be between 0 and 100'],
    ],
    [
      'percent 0',
      withItem(fixed({ amount: undefined, percent: 0 })),
      ['items[0].percent: must be between 0 and 100'],
    ],
    [
      'amount not an integer',
      withItem(fixed({ amount: 1.5 })),
      ["items[0].amount: must be a positive integer (in the currency's smallest unit)"],
    ],
    [
      'amount zero',
      withItem(fixed({ amount: 0 })),
      ["items[0].amount: must be a positive integer (in the currency's smallest unit)"],
    ],
    [
      'amount as a string',
      withItem(fixed({ amount: '1000' })),
      ["items[0].amount: must be a positive integer (in the currency's smallest unit)"],
    ],
    [
      'key with "|"',
      withItem(fixed({ key: 'a|b' })),
      ['items[0].key: must be 1-40 letters, digits, "_" or "-"'],
    ],
    [
      'key with ":"',
      withItem(fixed({ key: 'a:b' })),
      ['items[0].key: must be 1-40 letters, digits, "_" or "-"'],
    ],
    [
      'key of 41 characters',
      withItem(fixed({ key: 'k'.repeat(41) })),
      ['items[0].key: must be 1-40 letters, digits, "_" or "-"'],
    ],
    [
      'empty label',
      withItem(fixed({ label: '   ' })),
      ['items[0].label: must be 1 to 200 characters'],
    ],
    [
      'label of 201 characters',
      withItem(fixed({ label: 'l'.repeat(201) })),
      ['items[0].label: must be 1 to 200 characters'],
    ],
    ['missing key', withItem(fixed({ key: undefined })), ['items[0].key: required']],
    ['missing trigger', withItem(fixed({ trigger: undefined })), ['items[0].trigger: required']],
    [
      'unknown trigger',
      withItem(fixed({ trigger: 'invoice.paid' })),
      [
        'items[0].trigger: must be one of contract.signed, milestone.accepted, milestone.progress, monthly',
      ],
    ],
    [
      'impossible date',
      withItem(fixed({ expectedInvoiceDate: '2026-02-30' })),
      ['items[0].expectedInvoiceDate: must be a valid date in YYYY-MM-DD form'],
    ],
    [
      'date in another format',
      withItem(fixed({ expectedInvoiceDate: '2026/12/15' })),
      ['items[0].expectedInvoiceDate: must be a valid date in YYYY-MM-DD form'],
    ],
    [
      'acceptanceDays 0',
      withItem(fixed({ acceptanceDays: 0 })),
      ['items[0].acceptanceDays: must be a whole number of days from 1 to 365'],
    ],
    [
      'acceptanceDays 366',
      withItem(fixed({ acceptanceDays: 366 })),
      ['items[0].acceptanceDays: must be a whole number of days from 1 to 365'],
    ],
    [
      'silentApproval not a boolean',
      withItem(fixed({ silentApproval: 'yes' })),
      ['items[0].silentApproval: must be true or false'],
    ],
    [
      'typo in an item field',
      withItem({ key: 'x', label: 'X', amount: 1000, triger: 'contract.signed' }),
      ['items[0].trigger: required', 'items[0].triger: unknown field'],
    ],
    ['unknown top-level field', withItem(fixed(), { tax: 10 }), ['tax: unknown field']],
    [
      'unknown field in monthly',
      {
        currency: 'jpy',
        billingCount: 'monthly_fixed',
        monthly: { amount: 1, startOn: '2026-01-01', months: 1, day: 3 },
      },
      ['monthly.day: unknown field'],
    ],
    [
      'monthly.months out of range',
      {
        currency: 'jpy',
        billingCount: 'monthly_fixed',
        monthly: { amount: 1, startOn: '2026-01-01', months: 121 },
      },
      ['monthly.months: must be a whole number of months from 1 to 120'],
    ],
    [
      'monthly.startOn missing',
      { currency: 'jpy', billingCount: 'monthly_fixed', monthly: { amount: 1, months: 1 } },
      ['monthly.startOn: required'],
    ],
  ];

  it.each(cases)('%s', (_name, input, expected) => {
    expect(errorsOf(parseBillingPlan(input, {}))).toEqual(expected);
  });

  it('reports every field error of a plan at once', () => {
    const errors = errorsOf(
      parseBillingPlan({
        currency: 'jp',
        items: [
          fixed({ key: 'a b', amount: -1 }),
          fixed({ key: 'ok', percent: 101, amount: undefined }),
        ],
      }),
    );
    expect(errors).toEqual([
      'currency: must be a 3-letter ISO 4217 currency code',
      'items[0].key: must be 1-40 letters, digits, "_" or "-"',
      "items[0].amount: must be a positive integer (in the currency's smallest unit)",
      'items[1].percent: must be between 0 and 100',
    ]);
  });
});

describe('parseBillingPlan — rules across fields', () => {
  it('needs exactly one of amount or percent', () => {
    expect(errorsOf(parseBillingPlan(withItem(fixed({ percent: 10 })), deal))).toEqual([
      'items[0]: give either amount or percent, not both',
    ]);
    expect(errorsOf(parseBillingPlan(withItem(fixed({ amount: undefined })), deal))).toEqual([
      'items[0]: needs an amount or a percent',
    ]);
  });

  it('refuses percent items when the deal has no amount', () => {
    const plan = withItem(fixed({ amount: undefined, percent: 30 }));
    const expected = ['items[0].percent: the deal has no amount to take a percent of'];
    expect(errorsOf(parseBillingPlan(plan, {}))).toEqual(expected);
    expect(errorsOf(parseBillingPlan(plan, { dealAmount: null }))).toEqual(expected);
    expect(errorsOf(parseBillingPlan(plan, { dealAmount: 0 }))).toEqual(expected);
  });

  it('refuses a percent that rounds to nothing', () => {
    expect(
      errorsOf(
        parseBillingPlan(withItem(fixed({ amount: undefined, percent: 0.1 })), { dealAmount: 100 }),
      ),
    ).toEqual(['items[0].percent: 0.1% of 100 rounds to 0']);
  });

  it('requires unique keys', () => {
    const plan = contractExample();
    plan.items[2].key = 'design';
    expect(errorsOf(parseBillingPlan(plan, deal))).toEqual([
      'items: keys must be unique ("design" appears twice)',
    ]);
    const three = { currency: 'jpy', items: [fixed(), fixed(), fixed()] };
    expect(errorsOf(parseBillingPlan(three, {}))).toEqual([
      'items: keys must be unique ("x" appears 3 times)',
    ]);
  });

  it('keeps the sum of percents at or below 100', () => {
    const plan = {
      currency: 'jpy',
      items: [
        fixed({ key: 'a', amount: undefined, percent: 60 }),
        fixed({ key: 'b', amount: undefined, percent: 50 }),
      ],
    };
    expect(errorsOf(parseBillingPlan(plan, { dealAmount: 1000 }))).toEqual([
      'items: percents add up to 110, more than 100',
    ]);
    // exactly 100, with decimals that drift in floating point (30 + 30.1 + 39.9)
    const hundred = {
      currency: 'jpy',
      items: [
        fixed({ key: 'a', amount: undefined, percent: 30 }),
        fixed({ key: 'b', amount: undefined, percent: 30.1 }),
        fixed({ key: 'c', amount: undefined, percent: 39.9 }),
      ],
    };
    expect(ok(parseBillingPlan(hundred, { dealAmount: 1000 })).items.map((i) => i.amount)).toEqual([
      300, 301, 399,
    ]);
  });

  it('keeps one-off amounts within the deal amount, naming both figures', () => {
    const plan = contractExample();
    plan.items[2].amount = 160001;
    expect(errorsOf(parseBillingPlan(plan, deal))).toEqual([
      'items: one-off amounts add up to 400001, more than the deal amount 400000',
    ]);
    plan.items[2].amount = 160000;
    expect(parseBillingPlan(plan, deal).ok).toBe(true);
  });

  it('does not count monthly items against the deal amount', () => {
    const plan = {
      currency: 'jpy',
      billingCount: 'monthly_variable',
      items: [
        fixed({ amount: 1000 }),
        {
          key: 'support',
          label: '保守',
          amount: 50000,
          trigger: 'monthly',
          startOn: '2026-01-01',
          months: 12,
        },
      ],
    };
    expect(parseBillingPlan(plan, { dealAmount: 1000 }).ok).toBe(true);
  });

  it('requires the plan currency to match the deal', () => {
    expect(errorsOf(parseBillingPlan({ ...contractExample(), currency: 'usd' }, deal))).toEqual([
      'currency: plan is in usd but the deal is in jpy',
    ]);
    expect(
      errorsOf(
        parseBillingPlan({ ...contractExample(), currency: 'usd' }, { ...deal, currency: 'JPY' }),
      ),
    ).toEqual(['currency: plan is in usd but the deal is in jpy']);
  });

  it('checks silentApproval', () => {
    expect(
      errorsOf(
        parseBillingPlan(withItem(fixed({ trigger: 'milestone.accepted', silentApproval: true }))),
      ),
    ).toEqual(['items[0].silentApproval: requires acceptanceDays (the acceptance window)']);
    expect(
      errorsOf(parseBillingPlan(withItem(fixed({ silentApproval: true, acceptanceDays: 5 })))),
    ).toEqual(['items[0].silentApproval: only allowed when trigger is milestone.accepted']);
    // false is harmless anywhere
    expect(parseBillingPlan(withItem(fixed({ silentApproval: false }))).ok).toBe(true);
  });

  it('needs at least one item unless the plan is monthly_fixed', () => {
    expect(errorsOf(parseBillingPlan({ currency: 'jpy', items: [] }))).toEqual([
      'items: must have at least one item (only a monthly_fixed plan may have none)',
    ]);
    expect(errorsOf(parseBillingPlan({ currency: 'jpy' }))).toEqual([
      'items: must have at least one item (only a monthly_fixed plan may have none)',
    ]);
  });

  it('reports several rule errors together', () => {
    const plan = {
      currency: 'usd',
      items: [
        fixed({ key: 'a', percent: 10 }),
        fixed({ key: 'a', amount: undefined, percent: 10 }),
      ],
    };
    expect(errorsOf(parseBillingPlan(plan, { currency: 'jpy' }))).toEqual([
      'currency: plan is in usd but the deal is in jpy',
      'items: keys must be unique ("a" appears twice)',
      'items[0]: give either amount or percent, not both',
      'items[1].percent: the deal has no amount to take a percent of',
    ]);
  });
});

describe('parseBillingPlan — monthly items', () => {
  const monthlyItem = (extra: Record<string, unknown> = {}) => ({
    key: 'support',
    label: '保守',
    amount: 50000,
    trigger: 'monthly',
    startOn: '2026-01-31',
    months: 12,
    ...extra,
  });

  it('keeps startOn and months on a monthly item', () => {
    const { items } = ok(
      parseBillingPlan(withItem(monthlyItem(), { billingCount: 'monthly_variable' })),
    );
    expect(items).toEqual([
      {
        key: 'support',
        label: '保守',
        trigger: 'monthly',
        amount: 50000,
        taxRatePercent: 0,
        silentApproval: false,
        startOn: '2026-01-31',
        months: 12,
        position: 0,
      },
    ]);
  });

  it('requires amount, startOn and months on a monthly item', () => {
    expect(
      errorsOf(
        parseBillingPlan(
          withItem(monthlyItem({ amount: undefined, startOn: undefined, months: undefined })),
        ),
      ),
    ).toEqual([
      'items[0].amount: required for a monthly item',
      'items[0].startOn: required for a monthly item',
      'items[0].months: required for a monthly item',
    ]);
  });

  it('refuses a percent on a monthly item', () => {
    expect(
      errorsOf(
        parseBillingPlan(withItem(monthlyItem({ amount: undefined, percent: 10 })), {
          dealAmount: 1000,
        }),
      ),
    ).toEqual(['items[0].percent: a monthly item takes an amount, not a percent']);
  });

  it('refuses startOn and months on other triggers', () => {
    expect(
      errorsOf(parseBillingPlan(withItem(fixed({ startOn: '2026-01-01', months: 3 })))),
    ).toEqual([
      'items[0].startOn: only allowed when trigger is monthly',
      'items[0].months: only allowed when trigger is monthly',
    ]);
  });
});

describe('parseBillingPlan — monthly_fixed', () => {
  const monthlyFixed = (extra: Record<string, unknown> = {}) => ({
    currency: 'jpy',
    taxRatePercent: 10,
    billingCount: 'monthly_fixed',
    monthly: { amount: 30000, startOn: '2026-11-30', months: 6 },
    ...extra,
  });

  it('expands the monthly fee into a "monthly" item after the listed items', () => {
    const { plan, items } = ok(
      parseBillingPlan(monthlyFixed({ items: [fixed({ key: 'setup', amount: 100000 })] }), {
        currency: 'jpy',
      }),
    );
    expect(items).toEqual([
      {
        key: 'setup',
        label: 'X',
        trigger: 'contract.signed',
        amount: 100000,
        taxRatePercent: 10,
        silentApproval: false,
        position: 0,
      },
      {
        key: 'monthly',
        label: '月額 (monthly fee)',
        trigger: 'monthly',
        amount: 30000,
        taxRatePercent: 10,
        silentApproval: false,
        startOn: '2026-11-30',
        months: 6,
        position: 1,
      },
    ]);
    expect(plan.monthly).toEqual({ amount: 30000, startOn: '2026-11-30', months: 6 });
    expect(plan.items).toHaveLength(1);
  });

  it('may have no items at all', () => {
    const { items } = ok(parseBillingPlan(monthlyFixed()));
    expect(items.map((i) => [i.key, i.amount, i.months, i.position])).toEqual([
      ['monthly', 30000, 6, 0],
    ]);
  });

  it('requires the monthly block', () => {
    expect(errorsOf(parseBillingPlan(monthlyFixed({ monthly: undefined })))).toEqual([
      'monthly: required when billingCount is monthly_fixed',
    ]);
  });

  it('refuses the monthly block on other billing counts', () => {
    expect(
      errorsOf(parseBillingPlan(monthlyFixed({ billingCount: 'one_time', items: [fixed()] }))),
    ).toEqual(['monthly: only allowed when billingCount is monthly_fixed']);
  });

  it('refuses an item keyed "monthly"', () => {
    expect(
      errorsOf(parseBillingPlan(monthlyFixed({ items: [fixed({ key: 'monthly' })] }))),
    ).toEqual([
      'items[0].key: "monthly" is reserved for the plan\'s monthly fee when billingCount is monthly_fixed',
    ]);
    // ...which is fine on other plans
    expect(parseBillingPlan(withItem(fixed({ key: 'monthly' }))).ok).toBe(true);
  });

  it('validates the monthly block', () => {
    expect(
      errorsOf(
        parseBillingPlan(
          monthlyFixed({ monthly: { amount: 0, startOn: '2026-02-29', months: 0 } }),
        ),
      ),
    ).toEqual([
      "monthly.amount: must be a positive integer (in the currency's smallest unit)",
      'monthly.startOn: must be a valid date in YYYY-MM-DD form',
      'monthly.months: must be a whole number of months from 1 to 120',
    ]);
  });
});

describe('parseBillingPlan — limits of real size (CONTRACT §4)', () => {
  const items = (n: number, item: Record<string, unknown> = {}) =>
    Array.from({ length: n }, (_, i) => fixed({ key: `k${i}`, label: `Item ${i}`, ...item }));

  it('takes a plan of 500 items and refuses 501, naming the limit', () => {
    const { items: resolved } = ok(parseBillingPlan({ currency: 'jpy', items: items(500) }));
    expect(resolved).toHaveLength(500);
    expect(resolved[499]).toMatchObject({ key: 'k499', position: 499, amount: 1000 });
    expect(errorsOf(parseBillingPlan({ currency: 'jpy', items: items(501) }))).toEqual([
      'items: a plan has at most 500 items (this one has 501)',
    ]);
  });

  it('counts the monthly_fixed fee as an item of its own', () => {
    const plan = (n: number) => ({
      currency: 'jpy',
      billingCount: 'monthly_fixed',
      monthly: { amount: 50_000, startOn: '2026-12-01', months: 12 },
      items: items(n),
    });
    expect(ok(parseBillingPlan(plan(499))).items).toHaveLength(500);
    expect(errorsOf(parseBillingPlan(plan(500)))).toEqual([
      'items: a plan has at most 500 items (this one has the monthly fee and 500)',
    ]);
  });

  it('keeps an additional order within 500 items for the whole plan', () => {
    const existing = Array.from({ length: 498 }, (_, i) => `e${i}`);
    expect(ok(parseAdditionalItems(items(2), existing, { currency: 'jpy' })).items).toHaveLength(2);
    expect(errorsOf(parseAdditionalItems(items(3), existing, { currency: 'jpy' }))).toEqual([
      'items: a plan has at most 500 items (the plan has 498, the order adds 3)',
    ]);
  });

  it('takes a deal amount of 999,999,999,999 and refuses 1,000,000,000,000', () => {
    const plan = withItem(fixed({ amount: undefined, percent: 0.001 }));
    const { items: resolved } = ok(
      parseBillingPlan(plan, { dealAmount: 999_999_999_999, currency: 'jpy' }),
    );
    // 0.001 % of 999,999,999,999 is 9,999,999.99999, rounded half up: exact at this size.
    expect(resolved[0].amount).toBe(10_000_000);
    expect(
      errorsOf(parseBillingPlan(plan, { dealAmount: 1_000_000_000_000, currency: 'jpy' })),
    ).toContain(
      'deal amount: 1,000,000,000,000 is more than the hub takes (at most 999,999,999,999)',
    );
  });

  it('refuses item amounts above 999,999,999,999 as amounts, before asking Stripe', () => {
    const tooMuch = errorsOf(parseBillingPlan(withItem(fixed({ amount: 1_000_000_000_000 }))));
    expect(tooMuch).toEqual([
      'items[0].amount: must be at most 999,999,999,999 (the largest amount the hub takes)',
    ]);
    // 999,999,999,999 is an amount the hub takes; it is refused only for not fitting one invoice.
    const largest = errorsOf(parseBillingPlan(withItem(fixed({ amount: 999_999_999_999 }))));
    expect(largest).toHaveLength(1);
    expect(largest[0]).toMatch(/^items\[0\]: item "x" is too large for one Stripe invoice/);
    expect(
      errorsOf(
        parseBillingPlan({
          currency: 'jpy',
          billingCount: 'monthly_fixed',
          monthly: { amount: 1_000_000_000_000, startOn: '2026-12-01', months: 12 },
        }),
      ),
    ).toEqual([
      'monthly.amount: must be at most 999,999,999,999 (the largest amount the hub takes)',
    ]);
  });

  describe("Stripe's limit per invoice: 99,999,999 including tax", () => {
    it('takes an item whose invoice is 99,999,999 with its tax and refuses one unit more', () => {
      // 90,909,090 + 10 % tax 9,090,909 = 99,999,999.
      ok(parseBillingPlan(withItem(fixed({ amount: 90_909_090 }), { taxRatePercent: 10 })));
      expect(
        errorsOf(
          parseBillingPlan(
            withItem(fixed({ key: 'deposit', amount: 90_909_091 }), { taxRatePercent: 10 }),
          ),
        ),
      ).toEqual([
        'items[0]: item "deposit" is too large for one Stripe invoice: its invoice would be 100,000,000 incl. tax (90,909,091 + 10% tax 9,090,909), more than Stripe takes on one invoice (99,999,999 in the smallest unit, tax included); split it into items that each fit',
      ]);
    });

    it('judges the amount after tax: 99,999,999 fits without tax, not with 10 %', () => {
      ok(parseBillingPlan(withItem(fixed({ amount: 99_999_999 }))));
      expect(errorsOf(parseBillingPlan(withItem(fixed({ amount: 100_000_000 }))))).toEqual([
        'items[0]: item "x" is too large for one Stripe invoice: its invoice would be 100,000,000 (no tax), more than Stripe takes on one invoice (99,999,999 in the smallest unit, tax included); split it into items that each fit',
      ]);
      expect(
        errorsOf(parseBillingPlan(withItem(fixed({ amount: 99_999_999 }), { taxRatePercent: 10 }))),
      ).toEqual([
        expect.stringContaining('109,999,999 incl. tax (99,999,999 + 10% tax 10,000,000)'),
      ]);
    });

    it('refuses the percent items of a ¥3,000,000,000 deal, each by name', () => {
      const errors = errorsOf(
        parseBillingPlan(contractExample(), { dealAmount: 3_000_000_000, currency: 'jpy' }),
      );
      // 30 % = ¥900,000,000 (+ 10 % tax) on one invoice, twice; the ¥120,000 balance fits.
      expect(errors).toEqual([
        'items[0]: item "deposit" is too large for one Stripe invoice: its invoice would be 990,000,000 incl. tax (900,000,000 + 10% tax 90,000,000), more than Stripe takes on one invoice (99,999,999 in the smallest unit, tax included); split it into items that each fit',
        'items[1]: item "design" is too large for one Stripe invoice: its invoice would be 990,000,000 incl. tax (900,000,000 + 10% tax 90,000,000), more than Stripe takes on one invoice (99,999,999 in the smallest unit, tax included); split it into items that each fit',
      ]);
    });

    it('bills a ¥3,000,000,000 deal whose plan splits into items that each fit', () => {
      const plan = {
        currency: 'jpy',
        taxRatePercent: 10,
        items: Array.from({ length: 40 }, (_, i) => ({
          key: `phase-${i + 1}`,
          label: `Phase ${i + 1}`,
          percent: 2.5,
          trigger: 'milestone.accepted',
        })),
      };
      const { items: resolved } = ok(
        parseBillingPlan(plan, { dealAmount: 3_000_000_000, currency: 'jpy' }),
      );
      expect(resolved).toHaveLength(40);
      expect(resolved.every((i) => i.amount === 75_000_000)).toBe(true);
      expect(resolved.reduce((s, i) => s + i.amount, 0)).toBe(3_000_000_000);
    });

    it("holds each month's invoice of a monthly item and the whole of a progress item to it", () => {
      const monthly = fixed({
        key: 'retainer',
        amount: 95_000_000,
        trigger: 'monthly',
        startOn: '2026-12-01',
        months: 12,
      });
      expect(errorsOf(parseBillingPlan(withItem(monthly, { taxRatePercent: 10 })))).toEqual([
        expect.stringMatching(
          /^items\[0\]: item "retainer" .*one month's invoice would be 104,500,000/,
        ),
      ]);
      const progress = fixed({ key: 'build', amount: 95_000_000, trigger: 'milestone.progress' });
      expect(errorsOf(parseBillingPlan(withItem(progress, { taxRatePercent: 10 })))).toEqual([
        expect.stringMatching(/^items\[0\]: item "build" .*one progress step can bill all of it/),
      ]);
      expect(
        errorsOf(
          parseBillingPlan({
            currency: 'jpy',
            taxRatePercent: 10,
            billingCount: 'monthly_fixed',
            monthly: { amount: 95_000_000, startOn: '2026-12-01', months: 12 },
          }),
        ),
      ).toEqual([expect.stringMatching(/^monthly\.amount: item "monthly" .*one month's invoice/)]);
    });

    it('holds additional orders to it too', () => {
      expect(
        errorsOf(
          parseAdditionalItems([fixed({ key: 'extra', amount: 95_000_000 })], [], {
            currency: 'jpy',
            taxRatePercent: 10,
          }),
        ),
      ).toEqual([
        expect.stringMatching(/^items\[0\]: item "extra" is too large for one Stripe invoice/),
      ]);
    });
  });

  it('keeps what a plan adds up to within 999,999,999,999', () => {
    // 500 monthly items of ¥90,000,000 for 120 months: every invoice fits, the total does not.
    const plan = {
      currency: 'jpy',
      items: items(500, {
        amount: 90_000_000,
        trigger: 'monthly',
        startOn: '2026-12-01',
        months: 120,
      }),
    };
    expect(errorsOf(parseBillingPlan(plan))).toEqual([
      'items: the plan adds up to 5,400,000,000,000, more than the hub takes (at most 999,999,999,999)',
    ]);
  });
});

describe('contractedAmount', () => {
  it('is the deal amount when the deal has one', () => {
    const { items } = ok(parseBillingPlan(contractExample(), deal));
    expect(contractedAmount(400000, items)).toBe(400000);
  });

  it('otherwise sums one-off amounts and monthly amount × months', () => {
    const { items } = ok(
      parseBillingPlan({
        currency: 'jpy',
        billingCount: 'monthly_fixed',
        monthly: { amount: 30000, startOn: '2026-11-30', months: 6 },
        items: [fixed({ key: 'setup', amount: 100000 })],
      }),
    );
    expect(contractedAmount(null, items)).toBe(100000 + 30000 * 6);
    expect(contractedAmount(undefined, items)).toBe(280000);
    expect(contractedAmount(0, items)).toBe(280000);
  });

  it("a monthly_fixed plan's fee is always one of its items, so the plan's value is its items' sum", () => {
    const { items } = ok(
      parseBillingPlan({
        currency: 'jpy',
        billingCount: 'monthly_fixed',
        monthly: { amount: 30000, startOn: '2026-11-30', months: 6 },
        items: [fixed({ key: 'setup', amount: 100000 })],
      }),
    );
    expect(items.map((i) => i.key)).toEqual(['setup', 'monthly']);
    expect(
      contractedAmount(
        null,
        items.filter((i) => i.key !== 'monthly'),
      ),
    ).toBe(100000);
  });

  it('counts each month at the amount in force and stops at an early end', () => {
    const { items } = ok(
      parseBillingPlan({
        currency: 'jpy',
        billingCount: 'monthly_fixed',
        monthly: {
          amount: 30000,
          startOn: '2026-11-30',
          months: 6,
          changes: [{ fromMonth: '2027-01', amount: 40000 }],
          endMonth: '2027-03',
        },
        items: [fixed({ key: 'setup', amount: 100000 })],
      }),
    );
    // 2026-11, 2026-12 at 30,000; 2027-01 to 2027-03 at 40,000; nothing after March.
    expect(contractedAmount(null, items)).toBe(100000 + 2 * 30000 + 3 * 40000);
  });
});

describe('monthly fee changes and early end (CONTRACT §4)', () => {
  /** ¥50,000 a month for 6 months, 2026-11 to 2027-04, plus what a spec adds to `monthly`. */
  const fee = (monthly: Record<string, unknown> = {}) => ({
    currency: 'jpy',
    taxRatePercent: 10,
    billingCount: 'monthly_fixed',
    monthly: { amount: 50000, startOn: '2026-11-30', months: 6, ...monthly },
  });

  it('expands changes and the end onto the monthly item', () => {
    const { items } = ok(
      parseBillingPlan(
        fee({ changes: [{ fromMonth: '2027-01', amount: 60000 }], endMonth: '2027-03' }),
      ),
    );
    expect(items).toEqual([
      expect.objectContaining({
        key: 'monthly',
        amount: 50000,
        monthlyChanges: [{ fromMonth: '2027-01', amount: 60000 }],
        endMonth: '2027-03',
      }),
    ]);
    // Without them the item has neither.
    const [plain] = ok(parseBillingPlan(fee())).items;
    expect(plain).not.toHaveProperty('monthlyChanges');
    expect(plain).not.toHaveProperty('endMonth');
  });

  it('takes the same fields on a monthly item of any plan', () => {
    const { items } = ok(
      parseBillingPlan(
        withItem({
          key: 'ops',
          label: 'Ops',
          amount: 1000,
          trigger: 'monthly',
          startOn: '2026-11-01',
          months: 3,
          changes: [{ fromMonth: '2026-12', amount: 2000 }],
          endMonth: '2026-12',
        }),
      ),
    );
    expect(items[0]).toMatchObject({
      monthlyChanges: [{ fromMonth: '2026-12', amount: 2000 }],
      endMonth: '2026-12',
    });
  });

  it('refuses malformed changes and ends by their path', () => {
    expect(
      errorsOf(
        parseBillingPlan(fee({ changes: [{ fromMonth: '2027-3', amount: 0 }], endMonth: 'March' })),
      ),
    ).toEqual([
      'monthly.changes[0].fromMonth: must be a month in YYYY-MM form',
      "monthly.changes[0].amount: must be a positive integer (in the currency's smallest unit)",
      'monthly.endMonth: must be a month in YYYY-MM form',
    ]);
    expect(errorsOf(parseBillingPlan(fee({ changes: [{ from: '2027-03', amount: 1 }] })))).toEqual([
      'monthly.changes[0].fromMonth: required',
      'monthly.changes[0].from: unknown field',
    ]);
    expect(errorsOf(parseBillingPlan(fee({ changes: 'from March' })))).toEqual([
      'monthly.changes: must be an array of { fromMonth, amount }',
    ]);
  });

  it('refuses a change that is not after the first month, out of order, repeated or after the term', () => {
    expect(
      errorsOf(
        parseBillingPlan(
          fee({
            changes: [
              { fromMonth: '2026-11', amount: 60000 },
              { fromMonth: '2026-10', amount: 1 },
              { fromMonth: '2027-05', amount: 60000 },
              { fromMonth: '2027-05', amount: 70000 },
            ],
          }),
        ),
      ),
    ).toEqual([
      "monthly.changes[0].fromMonth: 2026-11 is the fee's first month; a change starts after it (monthly.amount is the amount from 2026-11)",
      'monthly.changes[1].fromMonth: must come after 2026-11 (changes are listed in month order, each month once)',
      "monthly.changes[2].fromMonth: 2027-05 is after the fee's last month 2027-04 (its term is 2026-11 to 2027-04)",
      'monthly.changes[3].fromMonth: must come after 2027-05 (changes are listed in month order, each month once)',
    ]);
    expect(
      errorsOf(parseBillingPlan(fee({ changes: [{ fromMonth: '2026-09', amount: 60000 }] }))),
    ).toEqual([
      "monthly.changes[0].fromMonth: 2026-09 is before the fee's first month 2026-11; a change starts after it (monthly.amount is the amount from 2026-11)",
    ]);
  });

  it('refuses a change to the same amount, after the end, or too large for one invoice', () => {
    expect(
      errorsOf(
        parseBillingPlan(
          fee({
            changes: [
              { fromMonth: '2027-01', amount: 50000 },
              { fromMonth: '2027-03', amount: 95_000_000 },
            ],
            endMonth: '2027-02',
          }),
        ),
      ),
    ).toEqual([
      'monthly.changes[0].amount: 50000 is already the amount before 2027-01 (not a change)',
      'monthly.changes[1].fromMonth: 2027-03 is after monthly.endMonth 2027-02, the last month billed',
      'monthly.changes[1].amount: item "monthly" is too large for one Stripe invoice: one month\'s invoice would be 104,500,000 incl. tax (95,000,000 + 10% tax 9,500,000), more than Stripe takes on one invoice (99,999,999 in the smallest unit, tax included); split it into items that each fit',
    ]);
  });

  it('refuses an end outside the term', () => {
    expect(errorsOf(parseBillingPlan(fee({ endMonth: '2026-10' })))).toEqual([
      "monthly.endMonth: 2026-10 is before the fee's first month 2026-11",
    ]);
    expect(errorsOf(parseBillingPlan(fee({ endMonth: '2027-05' })))).toEqual([
      "monthly.endMonth: 2027-05 is after the fee's last month 2027-04 (its term is 2026-11 to 2027-04); to bill longer, raise monthly.months",
    ]);
    // The first and the last month of the term are ends.
    expect(parseBillingPlan(fee({ endMonth: '2026-11' })).ok).toBe(true);
    expect(parseBillingPlan(fee({ endMonth: '2027-04' })).ok).toBe(true);
  });

  it('refuses changes and an end on an item that is not monthly, and names a monthly item by its index', () => {
    expect(
      errorsOf(
        parseBillingPlan({
          currency: 'jpy',
          items: [
            fixed({ changes: [{ fromMonth: '2027-01', amount: 2 }], endMonth: '2027-02' }),
            {
              key: 'ops',
              label: 'Ops',
              amount: 1000,
              trigger: 'monthly',
              startOn: '2026-11-01',
              months: 3,
              changes: [{ fromMonth: '2026-11', amount: 2 }],
              endMonth: '2027-03',
            },
          ],
        }),
      ),
    ).toEqual([
      'items[0].changes: only allowed when trigger is monthly',
      'items[0].endMonth: only allowed when trigger is monthly',
      "items[1].endMonth: 2027-03 is after the fee's last month 2027-01 (its term is 2026-11 to 2027-01); to bill longer, raise items[1].months",
      "items[1].changes[0].fromMonth: 2026-11 is the fee's first month; a change starts after it (items[1].amount is the amount from 2026-11)",
    ]);
  });

  describe('months already invoiced never change', () => {
    const invoiced = [
      { month: '2026-11', amount: 50000 },
      { month: '2026-12', amount: 50000 },
    ];
    const check = (plan: Record<string, unknown>) => {
      const parsed = ok(parseBillingPlan(plan));
      const item = parsed.items[parsed.items.length - 1];
      return invoicedMonthErrors(planPathOf(parsed.plan, item), item, invoiced, 'jpy');
    };

    it('lets a change start and the fee end from the last invoiced month on', () => {
      expect(
        check(fee({ changes: [{ fromMonth: '2027-01', amount: 60000 }], endMonth: '2027-02' })),
      ).toEqual([]);
      expect(check(fee({ endMonth: '2026-12' }))).toEqual([]);
      expect(check(fee())).toEqual([]);
    });

    it('refuses a change of an invoiced month', () => {
      expect(check(fee({ changes: [{ fromMonth: '2026-12', amount: 60000 }] }))).toEqual([
        'monthly.changes[0].fromMonth: 2026-12 would bill ¥60,000 for 2026-12, already invoiced at ¥50,000; months already invoiced never change (a change can start from 2027-01)',
      ]);
    });

    it('refuses another first amount once a month is invoiced, and says how to change it', () => {
      expect(
        check(fee({ amount: 60000, changes: [{ fromMonth: '2027-01', amount: 70000 }] })),
      ).toEqual([
        'monthly.amount: 2026-11 to 2026-12 are already invoiced at ¥50,000 a month; months already invoiced never change — to bill ¥60,000 from 2027-01, keep monthly.amount at 50000 and add monthly.changes: [{ "fromMonth": "2027-01", "amount": 60000 }]',
      ]);
    });

    it('refuses an end before an invoiced month', () => {
      expect(check(fee({ endMonth: '2026-11' }))).toEqual([
        'monthly.endMonth: 2026-11 ends before 2026-12, which is already invoiced; months already invoiced never change (the earliest end is 2026-12)',
      ]);
    });

    it('refuses a term that would leave an invoiced month out', () => {
      expect(check(fee({ startOn: '2027-01-05' }))).toEqual([
        'monthly.startOn: the term would start in 2027-01, after 2026-11, which is already invoiced; months already invoiced never change',
      ]);
      expect(check(fee({ months: 1 }))).toEqual([
        'monthly.months: the term would end in 2026-11, before 2026-12, which is already invoiced; months already invoiced never change (to end the fee early, keep monthly.months and set monthly.endMonth)',
      ]);
    });

    it('names a monthly item by its index, and ignores other items', () => {
      const parsed = ok(
        parseBillingPlan({
          currency: 'jpy',
          items: [
            fixed(),
            {
              key: 'ops',
              label: 'Ops',
              amount: 60000,
              trigger: 'monthly',
              startOn: '2026-11-01',
              months: 3,
            },
          ],
        }),
      );
      expect(planPathOf(parsed.plan, parsed.items[1])).toBe('items[1]');
      expect(invoicedMonthErrors('items[1]', parsed.items[1], invoiced, 'jpy')).toEqual([
        'items[1].amount: 2026-11 to 2026-12 are already invoiced at ¥50,000 a month; months already invoiced never change — to bill ¥60,000 from 2027-01, keep items[1].amount at 50000 and add items[1].changes: [{ "fromMonth": "2027-01", "amount": 60000 }]',
      ]);
      expect(invoicedMonthErrors('items[0]', parsed.items[0], invoiced, 'jpy')).toEqual([]);
    });
  });
});

describe('parseAdditionalItems', () => {
  const base = () => ok(parseBillingPlan(contractExample(), deal));
  const existingKeys = ['deposit', 'design', 'balance'];

  it('resolves new items after the existing ones and appends them to the plan', () => {
    const { plan } = base();
    const { plan: grown, items } = ok(
      parseAdditionalItems(
        [{ key: 'extra-page', label: '追加ページ', amount: 50000, trigger: 'milestone.accepted' }],
        existingKeys,
        { plan },
      ),
    );
    expect(items).toEqual([
      {
        key: 'extra-page',
        label: '追加ページ',
        trigger: 'milestone.accepted',
        amount: 50000,
        taxRatePercent: 10,
        silentApproval: false,
        position: 3,
      },
    ]);
    expect(grown.items.map((i) => i.key)).toEqual(['deposit', 'design', 'balance', 'extra-page']);
    expect(plan.items).toHaveLength(3); // the input plan is not mutated
  });

  it('works from the deal context alone (no plan at hand)', () => {
    const result = ok(
      parseAdditionalItems([fixed({ key: 'extra', amount: 7000 })], ['deposit'], {
        dealAmount: 400000,
        currency: 'JPY',
        taxRatePercent: 8,
      }),
    );
    expect(result.items).toEqual([
      {
        key: 'extra',
        label: 'X',
        trigger: 'contract.signed',
        amount: 7000,
        taxRatePercent: 8,
        silentApproval: false,
        position: 1,
      },
    ]);
    expect(result.plan).toEqual({
      currency: 'jpy',
      taxRatePercent: 8,
      billingCount: 'one_time',
      items: [fixed({ key: 'extra', amount: 7000 })],
    });
    // no tax rate anywhere → 0
    const noTax = ok(parseAdditionalItems([fixed({ key: 'extra' })], [], { currency: 'jpy' }));
    expect(noTax.items[0].taxRatePercent).toBe(0);
  });

  it('prefers an explicit tax rate over the plan', () => {
    const { plan } = base();
    const { items } = ok(
      parseAdditionalItems([fixed({ key: 'a' })], existingKeys, { plan, taxRatePercent: 8 }),
    );
    expect(items[0].taxRatePercent).toBe(8);
  });

  it('honours firstPosition', () => {
    const { plan } = base();
    const { items } = ok(
      parseAdditionalItems([fixed({ key: 'a' })], existingKeys, { plan, firstPosition: 7 }),
    );
    expect(items[0].position).toBe(7);
  });

  it('refuses keys that already exist', () => {
    const { plan } = base();
    expect(
      errorsOf(parseAdditionalItems([fixed({ key: 'design' })], existingKeys, { plan })),
    ).toEqual(['items[0].key: "design" already exists in the plan']);
  });

  it('refuses "monthly" on a monthly_fixed plan', () => {
    const { plan } = ok(
      parseBillingPlan({
        currency: 'jpy',
        billingCount: 'monthly_fixed',
        monthly: { amount: 1, startOn: '2026-01-01', months: 1 },
      }),
    );
    expect(errorsOf(parseAdditionalItems([fixed({ key: 'monthly' })], [], { plan }))).toEqual([
      'items[0].key: "monthly" already exists in the plan',
    ]);
  });

  it('refuses keys repeated within the order', () => {
    const { plan } = base();
    expect(
      errorsOf(
        parseAdditionalItems([fixed({ key: 'n' }), fixed({ key: 'n' })], existingKeys, { plan }),
      ),
    ).toEqual(['items: keys must be unique ("n" appears twice)']);
  });

  it('refuses percent items', () => {
    const { plan } = base();
    expect(
      errorsOf(
        parseAdditionalItems([fixed({ key: 'n', amount: undefined, percent: 10 })], existingKeys, {
          plan,
        }),
      ),
    ).toEqual(['items[0].percent: use amount for additional orders']);
  });

  it('validates the item shape with paths under items', () => {
    const { plan } = base();
    expect(
      errorsOf(
        parseAdditionalItems([fixed({ key: 'n', triger: 'x' }), 'nope'], existingKeys, { plan }),
      ),
    ).toEqual(['items[0].triger: unknown field', 'items[1]: must be an object']);
  });

  it('refuses an empty order', () => {
    const { plan } = base();
    expect(errorsOf(parseAdditionalItems([], existingKeys, { plan }))).toEqual([
      'items: an additional order must add at least one item',
    ]);
  });

  it('does not check additional amounts against the deal amount', () => {
    const { plan } = base();
    expect(
      parseAdditionalItems([fixed({ key: 'big', amount: 10_000_000 })], existingKeys, { plan }).ok,
    ).toBe(true);
  });
});

describe('helpers', () => {
  it('formatPath', () => {
    expect(formatPath(['items', 1, 'percent'])).toBe('items[1].percent');
    expect(formatPath([])).toBe('plan');
    expect(formatPath([0, 'key'], 'items')).toBe('items[0].key');
    expect(formatPath(['monthly', 'startOn'])).toBe('monthly.startOn');
  });

  it('isIsoDate', () => {
    expect(isIsoDate('2028-02-29')).toBe(true);
    expect(isIsoDate('2026-02-29')).toBe(false);
    expect(isIsoDate('2026-13-01')).toBe(false);
    expect(isIsoDate('2026-1-01')).toBe(false);
    expect(isIsoDate('2026-12-15T00:00:00Z')).toBe(false);
  });
});
