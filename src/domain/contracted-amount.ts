/**
 * The contracted amount excl. tax (CONTRACT §5: the `won` report's amountExTax, Partner Center's
 * deal value, reconciliation's "contracted"): the one rule, used by billing (a plan's value, the
 * deal amount a plan gives a deal without one), reporting, the contract envelope and
 * reconciliation alike.
 */
import { monthlyFeeTotal, monthlyTermsOf } from './monthly-fee';

/** An item of the plan as the rule needs it (a plan item as parsed, or a billing item's row). */
export interface ContractedItem {
  trigger: string;
  /** Per invoice; a monthly item's first monthly amount. */
  amount: number;
  startOn?: string | null;
  months?: number | null;
  /** A monthly item's changes ([{ fromMonth, amount }], as stored or parsed). */
  monthlyChanges?: unknown;
  endMonth?: string | null;
  /** `order.additional` items are additional orders, not part of the contract. */
  addedBy?: string;
  removed?: boolean;
}

/**
 * What one item bills in all: its amount, or for a monthly item every month it bills — each at
 * the amount in force that month, up to its early end.
 */
export function itemTotal(item: ContractedItem): number {
  if (item.trigger !== 'monthly') return item.amount;
  const terms = monthlyTermsOf(item);
  return terms ? monthlyFeeTotal(terms) : item.amount * (item.months ?? 0);
}

/**
 * The deal amount when the deal has one (> 0); otherwise what the contract's items add up to
 * (additional orders and removed items left out), monthly changes and an early end included.
 */
export function contractedAmount(
  dealAmount: number | null | undefined,
  items: readonly ContractedItem[],
): number {
  if (typeof dealAmount === 'number' && Number.isFinite(dealAmount) && dealAmount > 0) {
    return dealAmount;
  }
  return items
    .filter((i) => i.addedBy !== 'order.additional' && !i.removed)
    .reduce((sum, i) => sum + itemTotal(i), 0);
}
