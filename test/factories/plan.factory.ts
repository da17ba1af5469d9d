import {
  BillingPlanInput,
  ParsePlanResult,
  PlanContext,
  PlanItem,
  parseBillingPlan,
} from '../../src/billing/billing-plan';
import { PLAN_EXAMPLE } from '../../src/admin/deals.openapi';

/**
 * The billing plan of CONTRACT §4: deposit on signature, design and balance on acceptance (the
 * admin API's documented example, which the demo and the bench send too).
 */
export const CONTRACT_PLAN = PLAN_EXAMPLE;

/** A monthly_fixed plan: `amount` a month for `months` months from `startOn`, nothing else. */
export function monthlyPlan(
  over: { amount?: number; startOn?: string; months?: number; taxRatePercent?: number } = {},
): BillingPlanInput {
  return {
    currency: 'jpy',
    taxRatePercent: over.taxRatePercent ?? 10,
    billingCount: 'monthly_fixed',
    monthly: {
      amount: over.amount ?? 50_000,
      startOn: over.startOn ?? '2026-09-01',
      months: over.months ?? 6,
    },
    items: [],
  };
}

/** One item as users write it in a plan. */
export type PlanItemInput = NonNullable<BillingPlanInput['items']>[number];

/** A plan of one item (defaults: ¥300,000 billed on signature). */
export function oneItemPlan(item: Partial<PlanItemInput> = {}): BillingPlanInput {
  return {
    currency: 'jpy',
    taxRatePercent: 10,
    items: [{ key: 'work', label: 'Work', amount: 300_000, trigger: 'contract.signed', ...item }],
  };
}

/**
 * Resolves a plan through the hub's own parser (parseBillingPlan), so seeded items carry exactly
 * the amounts the hub would compute; a plan the hub refuses throws with its reasons.
 */
export function resolvePlan(
  plan: BillingPlanInput | string,
  ctx: PlanContext = {},
): Extract<ParsePlanResult, { ok: true }> {
  const parsed = parseBillingPlan(plan, ctx);
  if (!parsed.ok)
    throw new Error(`test plan refused by parseBillingPlan: ${parsed.errors.join('; ')}`);
  return parsed;
}

export type { PlanItem };
