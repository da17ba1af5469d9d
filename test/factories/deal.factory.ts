import { newId } from '../../src/common/ids';
import { BillingItem, Deal, Prisma } from '../../src/generated/prisma/client';
import { CRM_TARGETS, CrmTarget, DealStage, isWonOrLater } from '../../src/domain/deal-stage';
import { createBillingItems } from './billing-item.factory';
import { Db, FACTORY_NOW, uniq } from './db';
import { BillingPlanInput } from '../../src/billing/billing-plan';
import { resolvePlan } from './plan.factory';
import { createStageTrigger } from './stage-trigger.factory';

export type DealOverrides = Partial<Prisma.DealUncheckedCreateInput> & {
  /** A referral deal: its platform and the platform's referral id (id defaults to a fresh one). */
  referral?: { platform: string; id?: string };
  /**
   * The billing plan, resolved through parseBillingPlan against the deal's amount and currency:
   * stored on the deal and written as its billing items (a plan the hub refuses throws). To store
   * a plan's JSON without items, give `billingPlan` instead.
   */
  plan?: BillingPlanInput | string;
  /**
   * Whether the deal's stage is backed by its history (default true): the stage is the fold of the
   * deal's stage triggers, so a deal seeded in a stage gets the trigger that put it there (as the
   * admin API does): `crm.stage` for the CRM's stages, `referral.declined` / `referral.expired`.
   * DELIVERED and CLOSED follow from facts (deliveredOn, accepted items, settled invoices): they
   * get the WON trigger, the facts are the spec's.
   */
  history?: boolean;
  /** When that trigger happened (default FACTORY_NOW minus a day). */
  stageAt?: Date;
  /**
   * Only the columns given and those the table requires (no made-up customer, no wonAt): for
   * specs that seed a row exactly as they describe it.
   */
  bare?: boolean;
};

export type DealWithItems = Deal & { items: BillingItem[] };

/**
 * A deal row as the hub keeps it. Defaults: "Website renewal", REFERRED, ¥400,000 excl. tax, JPY,
 * source admin (referral when `referral` is given), a fresh id. Won-or-later stages get `wonAt`.
 */
export async function createDeal(db: Db, over: DealOverrides = {}): Promise<DealWithItems> {
  const { referral, plan, history = true, stageAt, bare = false, ...fields } = over;
  const id = fields.id ?? newId('cl_deal');
  const stage: DealStage = fields.stage ?? 'REFERRED';
  const currency = fields.currency ?? 'jpy';
  const amount = fields.amount === undefined ? 400_000 : fields.amount;
  const resolved =
    plan === undefined
      ? undefined
      : resolvePlan(plan, {
          dealAmount: amount === null ? null : Number(amount),
          currency,
        });
  const deal = await db.deal.create({
    data: {
      name: 'Website renewal',
      source: referral ? 'referral' : 'admin',
      ...(bare
        ? {}
        : {
            customerName: 'Example KK',
            companyName: 'Example KK',
            customerEmail: `buyer-${uniq()}@example.test`,
            wonAt: isWonOrLater(stage) ? (stageAt ?? dayBefore()) : null,
          }),
      ...(referral
        ? { referralPlatform: referral.platform, referralId: referral.id ?? `R-${uniq()}` }
        : {}),
      ...fields,
      ...(resolved ? { billingPlan: resolved.plan as unknown as Prisma.InputJsonValue } : {}),
      id,
      stage,
      currency,
      amount,
    },
  });
  if (history) {
    const trigger = historyOf(stage);
    if (trigger)
      await createStageTrigger(db, { dealId: id, ...trigger, at: stageAt ?? dayBefore() });
  }
  const items = resolved ? await createBillingItems(db, id, resolved.items) : [];
  return { ...deal, items };
}

function historyOf(
  stage: DealStage,
):
  | { type: 'crm.stage'; target: CrmTarget }
  | { type: 'referral.declined' | 'referral.expired' }
  | undefined {
  if ((CRM_TARGETS as readonly string[]).includes(stage))
    return { type: 'crm.stage', target: stage as CrmTarget };
  if (stage === 'DELIVERED' || stage === 'CLOSED') return { type: 'crm.stage', target: 'WON' };
  if (stage === 'DECLINED') return { type: 'referral.declined' };
  if (stage === 'EXPIRED') return { type: 'referral.expired' };
  return undefined;
}

const dayBefore = () => new Date(FACTORY_NOW.getTime() - 86_400_000);
