/**
 * OpenAPI examples and shared response decorators for the admin API (served at /docs).
 * Plain example objects: the API's shapes are built by its services, not by DTO classes.
 */
import { applyDecorators } from '@nestjs/common';
import { ApiProduces, ApiResponse } from '@nestjs/swagger';

import { BillingPlanInput } from '../billing/billing-plan';
import { CRM_TARGETS } from '../domain/deal-stage';

export const errorExample = (code: string, message: string) => ({ error: { code, message } });

/** 401 and 403 for a route that needs `role`. */
export function ApiAuthErrors(role: 'viewer' | 'finance' | 'admin') {
  return applyDecorators(
    ApiResponse({
      status: 401,
      description: 'No bearer token, or an unknown or revoked one.',
      schema: { example: errorExample('UNAUTHENTICATED', 'a bearer token is required') },
    }),
    ApiResponse({
      status: 403,
      description: `The token's role is below ${role}.`,
      schema: { example: errorExample('FORBIDDEN', `this action needs the ${role} role`) },
    }),
  );
}

export function ApiError(status: number, code: string, message: string, description?: string) {
  return ApiResponse({
    status,
    description: description ?? message,
    schema: { example: errorExample(code, message) },
  });
}

/** The answers of a contract document download (GET /api/deals/:id/contract/document | certificate). */
export function ApiContractDocument(name: 'contract' | 'certificate') {
  return applyDecorators(
    ApiProduces('application/pdf', 'application/json'),
    ApiResponse({
      status: 200,
      description: `The PDF, as an attachment (\`Content-Disposition: attachment; filename="${name}-cl_deal_….pdf"\`, \`Cache-Control: no-store\`)`,
      content: { 'application/pdf': { schema: { type: 'string', format: 'binary' } } },
    }),
    ApiError(
      404,
      'NOT_FOUND',
      'deal cl_deal_… has no contract',
      'No such deal, or the deal has no contract (or its contract no envelope)',
    ),
    ApiError(
      409,
      'CONTRACT_NOT_COMPLETED',
      'the contract of deal cl_deal_… is SENT: its documents are served once it is COMPLETED',
    ),
    ApiError(
      502,
      'ESIGNATURE_UNAVAILABLE',
      'could not read the combined document of envelope … from DocuSign: docusign 503 …',
      'The e-signature tool failed or answered something that is not a PDF',
    ),
    ApiError(
      503,
      'ESIGNATURE_NOT_CONFIGURED',
      'contract documents are read from DocuSign: it is not configured',
    ),
  );
}

/** The CONTRACT §4 example billing plan: the API docs show it; the demo, the bench and the tests send it. */
export const PLAN_EXAMPLE = {
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
} satisfies BillingPlanInput;

/** A monthly fee's amount changes (CONTRACT §4). */
const MONTHLY_CHANGES_SCHEMA = {
  type: 'array',
  description:
    'The amount from a given month on (YYYY-MM, a month of the term after the first), in month order, each month once. Months already invoiced never change: a change of one is refused. Each change is reported to the referral platform once.',
  items: {
    type: 'object',
    required: ['fromMonth', 'amount'],
    properties: {
      fromMonth: { type: 'string', pattern: '^\\d{4}-\\d{2}$', example: '2027-03' },
      amount: { type: 'integer', minimum: 1, maximum: 999_999_999_999 },
    },
  },
};

export const PLAN_SCHEMA = {
  type: 'object',
  description:
    'Billing plan (CONTRACT §4). Amounts are tax-exclusive integers in the smallest currency unit, up to 999,999,999,999; each item has exactly one of amount or percent. At most 500 items. One invoice of an item (a monthly item: one month; a progress item: all of it), tax included, must fit what Stripe takes on one invoice (99,999,999 in the smallest unit), else the plan is refused naming the item.',
  required: ['currency'],
  properties: {
    currency: { type: 'string', example: 'jpy' },
    taxRatePercent: { type: 'number', default: 0 },
    billingCount: { type: 'string', enum: ['one_time', 'monthly_variable', 'monthly_fixed'] },
    monthly: {
      type: 'object',
      properties: {
        amount: { type: 'integer', minimum: 1, maximum: 999_999_999_999 },
        startOn: { type: 'string', format: 'date' },
        months: { type: 'integer' },
        changes: MONTHLY_CHANGES_SCHEMA,
        endMonth: {
          type: 'string',
          pattern: '^\\d{4}-\\d{2}$',
          description:
            'The last month billed when the fee ends before its term (a month of the term, not before one already invoiced). Reported to the referral platform once.',
        },
      },
    },
    items: {
      type: 'array',
      maxItems: 500,
      items: {
        type: 'object',
        required: ['key', 'label', 'trigger'],
        properties: {
          key: { type: 'string', pattern: '^[A-Za-z0-9_-]{1,40}$' },
          label: { type: 'string' },
          amount: { type: 'integer', minimum: 1, maximum: 999_999_999_999 },
          percent: { type: 'number' },
          trigger: {
            type: 'string',
            enum: ['contract.signed', 'milestone.accepted', 'milestone.progress', 'monthly'],
          },
          expectedInvoiceDate: { type: 'string', format: 'date' },
          acceptanceDays: { type: 'integer' },
          silentApproval: { type: 'boolean' },
          startOn: { type: 'string', format: 'date' },
          months: { type: 'integer' },
          changes: MONTHLY_CHANGES_SCHEMA,
          endMonth: { type: 'string', pattern: '^\\d{4}-\\d{2}$' },
        },
      },
    },
  },
  example: PLAN_EXAMPLE,
};

export const CREATE_DEAL_SCHEMA = {
  type: 'object',
  required: ['name'],
  properties: {
    name: { type: 'string', maxLength: 200 },
    customer: {
      type: 'object',
      properties: {
        company: { type: 'string' },
        contactName: { type: 'string' },
        email: { type: 'string', format: 'email' },
      },
    },
    currency: { type: 'string', description: "ISO 4217; default the plan's currency, else jpy" },
    amount: {
      type: 'integer',
      minimum: 1,
      maximum: 999_999_999_999,
      description: 'Contracted amount excl. tax, smallest unit (¥3,000,000,000 is 3000000000)',
    },
    crmDealId: { type: 'string' },
    timeZone: { type: 'string', description: 'IANA zone for billing dates', example: 'Asia/Tokyo' },
    stage: {
      type: 'string',
      enum: [...CRM_TARGETS],
      description: 'Initial stage (recorded as a stage trigger); omitted: REFERRED',
    },
    billingPlan: PLAN_SCHEMA,
  },
  example: {
    name: 'Website renewal',
    customer: { company: '株式会社サンプル', contactName: '山田 太郎', email: 'yamada@example.jp' },
    currency: 'jpy',
    amount: 1000000,
    crmDealId: '12345',
    timeZone: 'Asia/Tokyo',
    stage: 'WON',
    billingPlan: PLAN_EXAMPLE,
  },
};

const INVOICE_EXAMPLE = {
  billingKey: 'cl_deal_0199a0b1-…|deposit',
  period: null,
  rebill: 0,
  state: 'POSTED',
  amount: 300000,
  taxAmount: 30000,
  total: 330000,
  amountPaid: 0,
  currency: 'jpy',
  stripeInvoiceId: 'in_1Q…',
  stripeNumber: 'ABCD-0001',
  hostedInvoiceUrl: 'https://invoice.stripe.com/i/…',
  invoicePdfUrl: 'https://pay.stripe.com/invoice/…/pdf',
  lastError: null,
  createdAt: '2026-11-23T10:00:00.000Z',
  postedAt: '2026-11-23T10:00:02.000Z',
  paidAt: null,
  voidedAt: null,
};

const BILLING_SUMMARY_EXAMPLE = {
  invoicedCount: 1,
  invoicedAmount: 300000,
  paidCount: 0,
  paidAmount: 0,
  voidCount: 0,
  pendingCount: 0,
};

export const DEAL_LIST_EXAMPLE = {
  items: [
    {
      id: 'cl_deal_0199a0b1-…',
      name: 'Website renewal',
      stage: 'WON',
      source: 'admin',
      crmDealId: '12345',
      referral: { platform: 'generic', id: 'R-1' },
      currency: 'jpy',
      amount: 1000000,
      customer: {
        name: '株式会社サンプル',
        company: '株式会社サンプル',
        contactName: '山田 太郎',
        email: 'yamada@example.jp',
      },
      createdAt: '2026-11-23T09:59:59.000Z',
      updatedAt: '2026-11-23T10:00:02.000Z',
      billing: BILLING_SUMMARY_EXAMPLE,
    },
  ],
  nextCursor: null,
};

/** GET /api/deals?attention=true: the list items carry their reasons. */
export const DEAL_ATTENTION_EXAMPLE = {
  items: [
    {
      ...DEAL_LIST_EXAMPLE.items[0],
      attention: [
        {
          reason: 'due_not_issued',
          since: '2026-11-23T10:00:00.000Z',
          detail:
            'invoice cl_deal_0199a0b1-…|deposit for item deposit is CREATING, not issued in Stripe: last error: stripe 400 invalid_request_error: …; dead letter dl_… waits for a replay',
          billingKey: 'cl_deal_0199a0b1-…|deposit',
          itemKey: 'deposit',
        },
      ],
    },
    {
      ...DEAL_LIST_EXAMPLE.items[0],
      id: 'cl_deal_0199a0b0-…',
      billing: { ...BILLING_SUMMARY_EXAMPLE, invoicedCount: 0, invoicedAmount: 0 },
      attention: [
        {
          reason: 'not_billable',
          since: '2026-11-22T08:00:00.000Z',
          detail: 'plan refused (items: a plan has at most 500 items (this one has 501))',
        },
      ],
    },
  ],
  nextCursor: null,
};

export const DEAL_DETAIL_EXAMPLE = {
  ...DEAL_LIST_EXAMPLE.items[0],
  version: 3,
  crmPipeline: null,
  crmStage: null,
  timeZone: 'Asia/Tokyo',
  stripeCustomerId: 'cus_…',
  wonAt: '2026-11-23T10:00:00.000Z',
  deliveredAt: null,
  deliveredOn: null,
  closedAt: null,
  lostAt: null,
  lossProposal: null,
  plan: PLAN_EXAMPLE,
  planError: null,
  billable: { ok: true, reason: null },
  items: [
    {
      key: 'deposit',
      label: '着手金',
      trigger: 'contract.signed',
      amount: 300000,
      percent: 30,
      taxRatePercent: 10,
      expectedInvoiceDate: null,
      startOn: null,
      months: null,
      monthlyChanges: null,
      endMonth: null,
      addedBy: 'plan',
      silentApproval: false,
      acceptanceDays: null,
      submittedAt: null,
      acceptanceDueAt: null,
      acceptedAt: null,
      acceptedBy: null,
      rejectedAt: null,
      rejectionReason: null,
      progressPercent: 0,
      billedPercent: 0,
      removed: false,
      billingStatus: 'INVOICE_POSTED',
      invoices: [INVOICE_EXAMPLE],
    },
  ],
  contract: null,
  // The CRM's co-sell request (closeloop_cosell), null when there is none. state: requested |
  // created (platform, referralId, createdAt) | failed (reason, deadLetterId, failedAt) |
  // not_requested (reason).
  cosell: null,
  // The newest 500 timeline entries and 200 events are listed (oldest first); the totals count all.
  timelineTotal: 1,
  eventsTotal: 1,
  timeline: [
    {
      at: '2026-11-23T09:59:59.000Z',
      kind: 'transition',
      message: 'REFERRED → WON',
      cause: 'admin ops-admin',
      eventId: null,
      fromStage: 'REFERRED',
      toStage: 'WON',
      details: null,
    },
  ],
  events: [
    {
      id: 'evt_0199…',
      provider: 'stripe',
      providerEventId: 'evt_1Q…',
      type: 'invoice.sent',
      status: 'PROCESSED',
      receivedAt: '2026-11-23T10:00:03.000Z',
    },
  ],
};

export const RECONCILIATION_EXAMPLE = {
  generatedAt: '2026-11-23T12:00:00.000Z',
  summary: { deals: 1, dealsWithMismatches: 1, mismatches: 1 },
  deals: [
    {
      dealId: 'cl_deal_0199a0b1-…',
      dealName: 'Website renewal',
      crmDealId: '12345',
      stage: 'WON',
      currency: 'jpy',
      contracted: 1000000,
      invoicedHub: 300000,
      invoicedStripe: 350000,
      paid: 0,
      hubInvoices: 1,
      stripeInvoices: [
        {
          id: 'in_1Q…',
          number: 'ABCD-0001',
          status: 'open',
          customer: 'cus_…',
          subtotal: 300000,
          total: 330000,
          amountPaid: 0,
          billingKey: 'cl_deal_0199a0b1-…|deposit',
        },
      ],
      mismatches: [
        {
          kind: 'unknown_invoice',
          stripeInvoiceId: 'in_1R…',
          message:
            "Stripe invoice ABCD-0002 (in_1R…) (open, ￥50,000 excl. tax) of the deal's customer was not made by the hub",
        },
      ],
    },
  ],
  nextCursor: 'cl_deal_0199a0b1-…',
};
