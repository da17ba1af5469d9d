/**
 * OpenAPI examples for the report queue and alerts routes (served at /docs). Plain example
 * objects, as in deals.openapi.ts: the shapes are built by ReportsService.
 */
import { POSTPONE_REASONS } from '../domain/report';
import { SETTABLE_STATUSES } from '../reporting/manual-report.transitions';

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
  fields: [
    { key: 'billingCount', label: '請求回数', labelEn: 'Number of invoices', value: '一回' },
    {
      key: 'orderDescription',
      label: '受注内容',
      labelEn: 'Order description',
      value: 'Design — Website renewal',
    },
    {
      key: 'amountExTax',
      label: '請求金額（税抜）',
      labelEn: 'Invoice amount (excl. tax)',
      value: '300000',
    },
    {
      key: 'issueDate',
      label: '初回請求書発行日',
      labelEn: 'Invoice issue date',
      value: '2026-12-15',
    },
    {
      key: 'invoicePdfUrl',
      label: '請求書',
      labelEn: 'Invoice (PDF to attach)',
      value: 'https://pay.stripe.com/invoice/…/pdf',
    },
  ],
  data: {
    reportId: 'rpt_0199a0b1-…',
    kind: 'confirmed_amount',
    platform: 'aimitsu',
    referralId: 'R-1',
    dealId: 'cl_deal_0199a0b1-…',
    occurredAt: '2026-11-23T10:00:00.000Z',
    amountExTax: 300000,
    taxAmount: 30000,
    currency: 'jpy',
    billingCount: 'one_time',
    itemKey: 'design',
    issueDate: '2026-12-15',
  },
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
