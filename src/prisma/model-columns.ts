import { BillingItem, Deal, Prisma } from '../generated/prisma/client';

/**
 * Column lists for the few hot reads written as raw SQL (a row lock, an UPDATE … RETURNING) that
 * must give back exactly what Prisma's model read gives: every scalar field under its Prisma name,
 * in Prisma's types ($queryRaw returns BIGINT as bigint, timestamptz as Date, jsonb parsed). A
 * Prisma model call costs about twice the CPU of the same statement raw, and the lifecycle's hot
 * path (a signed contract becoming an invoice) makes a dozen of them per event (README,
 * Benchmark). test/integration/model-columns.int-spec.ts compares both reads field by field, so a
 * column added to the schema and not here fails there.
 */
type Columns<T> = { [K in keyof T]-?: string };

function select<T>(table: string, columns: Columns<T>): Prisma.Sql {
  return Prisma.raw(
    Object.entries(columns)
      .map(([field, column]) => {
        const c = `${table}.${column as string}`;
        return column === field ? c : `${c} AS "${field}"`;
      })
      .join(', '),
  );
}

const DEAL: Columns<Deal> = {
  id: 'id',
  name: 'name',
  stage: 'stage',
  version: 'version',
  source: 'source',
  crmDealId: 'crm_deal_id',
  crmPipeline: 'crm_pipeline',
  crmStage: 'crm_stage',
  crmEventAt: 'crm_event_at',
  referralPlatform: 'referral_platform',
  referralId: 'referral_id',
  customerName: 'customer_name',
  customerEmail: 'customer_email',
  contactName: 'contact_name',
  companyName: 'company_name',
  currency: 'currency',
  amount: 'amount',
  timeZone: 'time_zone',
  billingPlan: 'billing_plan',
  planError: 'plan_error',
  billingCustomerId: 'billing_customer_id',
  wonAt: 'won_at',
  deliveredAt: 'delivered_at',
  closedAt: 'closed_at',
  lostAt: 'lost_at',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  deliveredOn: 'delivered_on',
  closeDate: 'close_date',
  cosell: 'cosell',
  cosellRequestedAt: 'cosell_requested_at',
  lossProposedAt: 'loss_proposed_at',
  lossProposal: 'loss_proposal',
};

const BILLING_ITEM: Columns<BillingItem> = {
  id: 'id',
  dealId: 'deal_id',
  key: 'key',
  label: 'label',
  trigger: 'trigger',
  amount: 'amount',
  percent: 'percent',
  taxRatePercent: 'tax_rate_percent',
  expectedInvoiceDate: 'expected_invoice_date',
  acceptanceDays: 'acceptance_days',
  silentApproval: 'silent_approval',
  startOn: 'start_on',
  months: 'months',
  position: 'position',
  addedBy: 'added_by',
  removed: 'removed',
  submittedAt: 'submitted_at',
  acceptanceDueAt: 'acceptance_due_at',
  acceptedAt: 'accepted_at',
  acceptedBy: 'accepted_by',
  rejectedAt: 'rejected_at',
  rejectionReason: 'rejection_reason',
  progressPercent: 'progress_percent',
  billedPercent: 'billed_percent',
  createdAt: 'created_at',
  updatedAt: 'updated_at',
  nextDueAt: 'next_due_at',
  monthlyChanges: 'monthly_changes',
  endMonth: 'end_month',
};

/** Every Deal field, for `SELECT ${DEAL_COLUMNS} FROM deal …` (the table named deal). */
export const DEAL_COLUMNS = select('deal', DEAL);

/** Every BillingItem field, for `SELECT ${BILLING_ITEM_COLUMNS} FROM billing_item …`. */
export const BILLING_ITEM_COLUMNS = select('billing_item', BILLING_ITEM);
