import { newId } from '../../src/common/ids';
import { Prisma, Report, ReportStatus } from '../../src/generated/prisma/client';
import { reportFields } from '../../src/reporting/report-fields';
import { Db } from './db';

/** The report as sent (ReportData, named through reportFields so this file does not follow its moves). */
type ReportData = Parameters<typeof reportFields>[0];
type ReportKind = ReportData['kind'];
type ReportChannel = 'partner-center' | 'webhook' | 'manual';

export interface ReportOverrides {
  dealId: string;
  id?: string;
  kind?: ReportKind;
  /** Default: `<dealId>|<kind>|<report id>` (unique; a spec naming a real fact passes the hub's). */
  factKey?: string;
  platform?: string;
  referralId?: string | null;
  channel?: ReportChannel;
  status?: ReportStatus;
  /** Merged over the defaults of the kind (a confirmed amount: ¥300,000, design, one_time). */
  data?: Partial<ReportData>;
  /** Default: reportFields(data, zone), as the report service writes them. */
  fields?: unknown;
  zone?: string;
  occurredAt?: Date;
  /** Default: 2026-12-16T15:00Z for manual tasks, null otherwise. */
  dueAt?: Date | null;
  deliveredAt?: Date | null;
  billingKey?: string | null;
  /** Default: data.amountExTax. */
  amountExTax?: number | null;
  reportedAmount?: number | null;
  attempts?: number;
  lastError?: string | null;
}

/** A report row as the report service writes it. Defaults: a PENDING manual confirmed amount for aimitsu. */
export async function createReport(db: Db, over: ReportOverrides): Promise<Report> {
  const id = over.id ?? newId('rpt');
  const kind = over.kind ?? 'confirmed_amount';
  const platform = over.platform ?? 'aimitsu';
  const channel = over.channel ?? 'manual';
  const occurredAt = over.occurredAt ?? new Date('2026-11-23T01:00:00.000Z');
  const data: ReportData = {
    reportId: id,
    kind,
    platform,
    dealId: over.dealId,
    occurredAt: occurredAt.toISOString(),
    ...(kind === 'confirmed_amount'
      ? {
          amountExTax: 300_000,
          currency: 'jpy',
          billingCount: 'one_time',
          itemKey: 'design',
          orderDescription: 'Design — Website renewal',
          issueDate: '2026-11-23',
          invoicePdfUrl: 'https://pay.example/inv/pdf',
        }
      : {}),
    ...over.data,
  };
  return db.report.create({
    data: {
      id,
      factKey: over.factKey ?? `${over.dealId}|${kind}|${id}`,
      dealId: over.dealId,
      kind,
      platform,
      referralId: over.referralId === undefined ? 'R-1' : over.referralId,
      channel,
      status: over.status ?? 'PENDING',
      data: data as unknown as Prisma.InputJsonValue,
      fields: (over.fields ??
        reportFields(data, over.zone ?? 'Asia/Tokyo')) as Prisma.InputJsonValue,
      occurredAt,
      dueAt:
        over.dueAt !== undefined
          ? over.dueAt
          : channel === 'manual'
            ? new Date('2026-12-16T15:00:00Z')
            : null,
      deliveredAt: over.deliveredAt ?? null,
      billingKey: over.billingKey ?? null,
      amountExTax: over.amountExTax === undefined ? (data.amountExTax ?? null) : over.amountExTax,
      reportedAmount: over.reportedAmount ?? null,
      attempts: over.attempts ?? 0,
      lastError: over.lastError ?? null,
    },
  });
}
