/**
 * Whether a deal can be billed at all (CONTRACT §4: "a won deal never sits unbilled in silence"),
 * in one place for the deal API (`billable`), the dashboard's billing box, the attention list and
 * the plan.refused alert.
 *
 * A deal is billable when a valid billing plan is in force. Without one it is not billable, and
 * the reason says why: its plan was refused (the refusal, as the parser worded it), or it never
 * had one. A deal whose later plan was refused while an earlier valid plan stays in force is
 * billable (it bills by the plan in force); the refusal still alerts (plan.refused) and shows as
 * the deal's planError.
 */

export type Billability = { ok: true; reason: null } | { ok: false; reason: string };

/** The reason's prefix when the plan was refused: `plan refused (<why>)`. */
export const PLAN_REFUSED = 'plan refused';
export const NO_BILLING_PLAN = 'no billing plan';

export function billability(deal: { billingPlan: unknown; planError: string | null }): Billability {
  if (deal.billingPlan !== null && deal.billingPlan !== undefined)
    return { ok: true, reason: null };
  if (deal.planError) return { ok: false, reason: `${PLAN_REFUSED} (${deal.planError})` };
  return { ok: false, reason: NO_BILLING_PLAN };
}

/** "not billable: plan refused (…)", as the deal shows it. */
export function notBillableText(b: Billability): string | null {
  return b.ok ? null : `not billable: ${b.reason}`;
}
