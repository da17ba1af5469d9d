/**
 * OpenAPI examples for the report queue and alerts routes (served at /docs). Plain example
 * objects, as in deals.openapi.ts: the shapes are built by ReportsService.
 */
import { platformProfile } from '../domain/platforms';
import { POSTPONE_REASONS, ReportData } from '../domain/report';
import { SETTABLE_STATUSES } from '../reporting/manual-report.transitions';

const EXAMPLE_DATA: ReportData = {
  reportId: 'rpt_0199a0b1-…',
  kind: 'confirmed_amount',
  platform: 'aimitsu',
  referralId: 'R-1',
  dealId: 'cl_deal_0199a0b1-…',
  occurredAt: '2026-11-23T10:00:00.000Z',
  amountExTax: 300000,
  taxAmount: 30000,
  currency: 'jpy',
  billingCount: 'monthly_variable',
  itemKey: 'design',
  orderDescription: 'Design — Website renewal',
  invoiceNumber: 'ABCD-0002',
  issueDate: '2026-12-15',
  nextInvoiceDate: '2027-01-20',
  hostedInvoiceUrl: 'https://invoice.stripe.com/i/…',
  invoicePdfUrl: 'https://pay.stripe.com/invoice/…/pdf',
};

export const REPORT_EXAMPLE = {
  id: 'rpt_0199a0b1-…',
  kind: 'confirmed_amount',
  title: '確定報告 (confirmed amount)',
  platform: 'aimitsu',
  channel: 'manual',
  dealId: 'cl_deal_0199a0b1-…',
  referralId: 'R-1',
  status: 'OVERDUE',
  dueAt: '2026-12-15T15:00:00.000Z',
  deliveredAt: null,
  occurredAt: '2026-11-23T10:00:00.000Z',
  attempts: 0,
  lastError: null,
  // The platform's own form, as the PRONI アイミツ profile writes it.
  fields: platformProfile('aimitsu').form(EXAMPLE_DATA, 'Asia/Tokyo'),
  data: EXAMPLE_DATA,
  billingKey: 'cl_deal_0199a0b1-…|design',
  amountExTax: 300000,
  reportedAmount: null,
  postponeReason: null,
  note: null,
  createdAt: '2026-11-23T10:00:00.000Z',
  updatedAt: '2026-12-15T15:00:04.000Z',
  actions: ['mark-reported', 'status:UNDER_REVIEW', 'status:REPORTED', 'postpone'],
};

export const REPORT_LIST_EXAMPLE = { items: [REPORT_EXAMPLE], nextCursor: null };

export const REPORT_DETAIL_EXAMPLE = {
  ...REPORT_EXAMPLE,
  history: [
    {
      at: '2026-12-16T01:00:00.000Z',
      actor: 'ops-finance',
      role: 'finance',
      action: 'report.postpone',
      details: {
        from: 'OVERDUE',
        to: 'PENDING',
        postponeReason: 'date_changed',
        dueAt: '2026-12-31T15:00:00.000Z',
      },
    },
  ],
};

export const MARK_REPORTED_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    note: { type: 'string', maxLength: 2000 },
    amountExTax: {
      type: 'integer',
      minimum: 0,
      description:
        "What was actually entered on the platform, excl. tax, in the currency's smallest unit, when it differs from the report's amount (reconciliation compares it with the invoice). Only for won, confirmed_amount and additional_order.",
    },
  },
  example: { note: 'entered on アイミツ by 山田', amountExTax: 290000 },
};

export const POSTPONE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['reason'],
  properties: {
    reason: {
      type: 'string',
      enum: [...POSTPONE_REASONS],
      description:
        'date_changed: the billing date moved (請求日変更): a confirmed amount still waiting for its invoice moves its item’s expected invoice date too (a monthly item keeps its schedule); not_started: not started or on hold (未着手・保留): the deadline only; lost: the deal was lost (失注) — clears the deadline and proposes the loss on the deal (POST /api/deals/{id}/loss/confirm or …/dismiss).',
    },
    newDueAt: {
      type: 'string',
      description:
        'The new deadline, in the future; required for date_changed and not_started, refused for lost. An ISO 8601 date-time with offset, or a date (YYYY-MM-DD): due when that day ends in the deal’s time zone.',
      example: '2026-12-31',
    },
    note: { type: 'string', maxLength: 2000 },
  },
  example: { reason: 'date_changed', newDueAt: '2026-12-31' },
};

export const STATUS_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['status'],
  properties: {
    status: {
      type: 'string',
      enum: [...SETTABLE_STATUSES],
      description:
        'UNDER_REVIEW 事務局確認中, CORRECTION_REQUESTED 修正依頼, REPORTED 報告済み, FEE_ONGOING 成約手数料発生中 (confirmed amounts billed monthly fixed only)',
    },
    note: { type: 'string', maxLength: 2000 },
  },
  example: { status: 'UNDER_REVIEW', note: 'submitted on アイミツ' },
};

export const CORRECT_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  required: ['fields'],
  properties: {
    fields: {
      type: 'object',
      minProperties: 1,
      additionalProperties: { type: 'string', minLength: 1, maxLength: 2000 },
      description:
        "The corrected values by field key (the keys of the report's `fields`, or of its form's optional fields), written as the form shows them: an amount as bare digits (`290000`; another currency `1000.50 USD`), a date `YYYY-MM-DD`, a choice by its label (`複数回(毎月変動)`) or its value (`monthly_variable`). Each value replaces the field and the report data it shows; a corrected amount is also the amount entered on the platform (`reportedAmount`, reconciliation's reported leg). An unknown key or an unreadable value refuses the whole correction (400, each named).",
    },
    note: { type: 'string', maxLength: 2000 },
  },
  example: {
    fields: {
      billingCount: '複数回(毎月変動)',
      amountExTax: '290000',
      nextInvoiceDate: '2027-01-20',
    },
    note: '事務局の修正依頼: 着手金と残金は複数回',
  },
};

export const CORRECTION_HISTORY_EXAMPLE = {
  at: '2026-12-18T02:00:00.000Z',
  actor: 'ops-finance',
  role: 'finance',
  action: 'report.correct',
  details: {
    dealId: 'cl_deal_0199a0b1-…',
    kind: 'confirmed_amount',
    from: 'CORRECTION_REQUESTED',
    to: 'CORRECTION_REQUESTED',
    changes: [
      { key: 'billingCount', label: '請求回数', before: '1回', after: '複数回(毎月変動)' },
      { key: 'amountExTax', label: '請求金額', before: '300000', after: '290000' },
    ],
    note: '事務局の修正依頼: 着手金と残金は複数回',
  },
};

export const ALERT_LIST_EXAMPLE = {
  items: [
    {
      id: 'alr_0199…',
      cause: 'report.overdue|rpt_0199a0b1-…|2026-12-15T15:00:00.000Z',
      kind: 'report.overdue',
      message:
        '確定報告 (confirmed amount) for aimitsu on deal cl_deal_0199a0b1-… is overdue (due 2026-12-15T15:00:00.000Z)',
      details: { reportId: 'rpt_0199a0b1-…', kind: 'confirmed_amount', platform: 'aimitsu' },
      dealId: 'cl_deal_0199a0b1-…',
      createdAt: '2026-12-15T15:00:04.000Z',
      deliveredAt: null,
    },
  ],
  nextCursor: null,
};
