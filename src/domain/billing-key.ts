/**
 * Billing keys: the business key of one invoice (CONTRACT §4: deal + item [+ month]). `|` joins
 * the parts because item keys may not contain it and BullMQ job ids may not contain ':'.
 *   cl_deal_…|deposit            one-off item
 *   cl_deal_…|monthly|2026-12    monthly item, one per month
 *   cl_deal_…|build|p60          progress item, one per billed step
 *   cl_deal_…|deposit|r1         the first admin re-bill after a void
 */
export function billingKeyFor(
  dealId: string,
  itemKey: string,
  period?: string | null,
  rebill = 0,
): string {
  return [dealId, itemKey, ...(period ? [period] : []), ...(rebill > 0 ? [`r${rebill}`] : [])].join(
    '|',
  );
}

export const billingJobId = (billingKey: string): string => `bill|${billingKey}`;
