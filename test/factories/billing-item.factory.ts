import { newId } from '../../src/common/ids';
import { BillingItem, Prisma } from '../../src/generated/prisma/client';
import { Db } from './db';
import { PlanItem } from './plan.factory';

/** A plan item resolved by parseBillingPlan as the row BillingPlanService writes for it. */
export function itemRow(
  dealId: string,
  item: PlanItem,
  addedBy = 'plan',
): Prisma.BillingItemCreateManyInput {
  return {
    id: newId('item'),
    dealId,
    key: item.key,
    label: item.label,
    trigger: item.trigger,
    amount: item.amount,
    percent: item.percent ?? null,
    taxRatePercent: item.taxRatePercent,
    expectedInvoiceDate: item.expectedInvoiceDate ?? null,
    acceptanceDays: item.acceptanceDays ?? null,
    silentApproval: item.silentApproval,
    startOn: item.startOn ?? null,
    months: item.months ?? null,
    monthlyChanges: item.monthlyChanges
      ? (item.monthlyChanges as unknown as Prisma.InputJsonValue)
      : Prisma.DbNull,
    endMonth: item.endMonth ?? null,
    // As BillingPlanService: a monthly item is due for a look by the worker's clock.
    nextDueAt: item.trigger === 'monthly' ? new Date(0) : null,
    position: item.position,
    addedBy,
  };
}

/** Writes resolved plan items (see resolvePlan) as the deal's billing items; returns them in plan order. */
export async function createBillingItems(
  db: Db,
  dealId: string,
  items: readonly PlanItem[],
  addedBy = 'plan',
): Promise<BillingItem[]> {
  await db.billingItem.createMany({ data: items.map((i) => itemRow(dealId, i, addedBy)) });
  return db.billingItem.findMany({ where: { dealId }, orderBy: { position: 'asc' } });
}

export type BillingItemOverrides = Partial<Prisma.BillingItemUncheckedCreateInput> & {
  dealId: string;
};

/**
 * One billing item written as given (for rows a plan cannot express: an accepted item, a removed
 * one, a placeholder). Defaults: ¥100,000 on contract.signed, 10 % tax, added by the plan.
 */
export async function createBillingItem(db: Db, over: BillingItemOverrides): Promise<BillingItem> {
  const key = over.key ?? `item-${newId('k').slice(-8)}`;
  return db.billingItem.create({
    data: {
      id: newId('item'),
      label: key,
      trigger: 'contract.signed',
      amount: 100_000,
      taxRatePercent: 10,
      position: 0,
      addedBy: 'plan',
      ...over,
      key,
    },
  });
}
