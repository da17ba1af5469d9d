import { billability, notBillableText } from './billability';

describe('billability (is a valid plan in force?)', () => {
  const plan = { currency: 'jpy', items: [] };

  it('is billable with a plan in force, even when a later plan was refused', () => {
    expect(billability({ billingPlan: plan, planError: null })).toEqual({ ok: true, reason: null });
    expect(billability({ billingPlan: plan, planError: 'items[0].amount: required' }).ok).toBe(
      true,
    );
  });

  it('names the refusal of a refused plan', () => {
    const b = billability({ billingPlan: null, planError: 'items: a plan has at most 500 items' });
    expect(b).toEqual({ ok: false, reason: 'plan refused (items: a plan has at most 500 items)' });
    expect(notBillableText(b)).toBe(
      'not billable: plan refused (items: a plan has at most 500 items)',
    );
  });

  it('says a deal without any plan has none', () => {
    const b = billability({ billingPlan: null, planError: null });
    expect(notBillableText(b)).toBe('not billable: no billing plan');
    expect(notBillableText(billability({ billingPlan: plan, planError: null }))).toBeNull();
  });
});
