import { ReportStatus } from '../generated/prisma/client';
import { toCsv } from './csv';
import { ReconciledDeal, ReconciliationReport } from './reconciliation.types';

export const CSV_HEADER = [
  'deal_id',
  'deal_name',
  'crm_deal_id',
  'currency',
  'contracted',
  'invoiced_hub',
  'invoiced_stripe',
  'paid',
  'mismatches',
  // Appended (not next to paid) so readers that take columns by position keep working.
  'referral_platform',
  'reported',
  'reports',
  'reports_not_reported',
] as const;

/** Reports the platform does not have yet (still owed, or an automatic delivery gave up). */
const NOT_YET_REPORTED: readonly ReportStatus[] = ['PENDING', 'OVERDUE', 'FAILED', 'DEAD'];

/** One deal's CSV record, in CSV_HEADER's order. */
export function csvRecord(d: ReconciledDeal) {
  return [
    d.dealId,
    d.dealName,
    d.crmDealId,
    d.currency,
    d.contracted,
    d.invoicedHub,
    d.invoicedStripe,
    d.paid,
    d.mismatches.map((m) => `${m.kind}: ${m.message}`).join(' | '),
    d.referralPlatform,
    d.reported,
    d.reports.total,
    NOT_YET_REPORTED.reduce((n, s) => n + (d.reports.byStatus[s] ?? 0), 0),
  ];
}

/** The header row and one record per deal of the page(s), in their order. */
export function reconciliationCsv(...pages: Pick<ReconciliationReport, 'deals'>[]): string {
  return toCsv([[...CSV_HEADER], ...pages.flatMap((p) => p.deals.map(csvRecord))]);
}
