import { HttpStatus, Injectable } from '@nestjs/common';
import { z } from 'zod';

import { Clock } from '../common/clock';
import { addDaysInZone, localDate, startOfLocalDay } from '../domain/calendar';
import { MAX_AMOUNT, formatMoney } from '../domain/money';
import { DomainException } from '../common/domain.exception';
import { AdminErrorCode } from './admin-error-code';
import { CommonErrorCode } from '../common/error-code';
import { AppConfig } from '../config/app-config';
import { Deal, Prisma, Report } from '../generated/prisma/client';
import { LifecycleService } from '../lifecycle/lifecycle.service';
import { addTimeline } from '../timeline/timeline';
import { canonicalPlatform } from '../domain/platforms';
import { dbAmount } from '../prisma/db-amount';
import { PrismaService } from '../prisma/prisma.service';
import {
  ManualAction,
  REPORT_STATUSES,
  SETTABLE_STATUSES,
  allowedManualActions,
  decideManualAction,
} from '../reporting/manual-report.transitions';
import { REPORT_KIND_LABELS } from '../reporting/report-fields';
import { platformProfile } from '../domain/platforms';
import { ReportService } from '../reporting/report.service';
import {
  POSTPONE_REASONS,
  REPORT_CHANNELS,
  REPORT_KINDS,
  ReportData,
  ReportField,
  ReportKind,
} from '../domain/report';
import { AuditService } from './audit.service';
import { page, pageQuery } from './pagination';
import { Actor } from './tokens.service';

// ---- input ----------------------------------------------------------------------------------

export const reportsQuery = pageQuery.extend({
  status: z.enum(REPORT_STATUSES).optional(),
  platform: z.string().trim().min(1).max(100).optional(),
  dealId: z.string().trim().min(1).optional(),
  kind: z.enum(REPORT_KINDS).optional(),
  channel: z.enum(REPORT_CHANNELS).optional(),
});
export type ReportsQuery = z.output<typeof reportsQuery>;

export const alertsQuery = pageQuery;

const note = z.string().trim().min(1).max(2000).optional();

export const markReportedBody = z.strictObject({
  note,
  /** What was actually entered on the platform, when it differs from the report's amount. */
  amountExTax: z
    .number()
    .int({ error: "must be an integer in the currency's smallest unit" })
    .min(0)
    .max(MAX_AMOUNT)
    .optional(),
});

/** A new deadline: an instant with its offset, or a local date (due when that day ends in the deal's zone). */
const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;
export const postponeBody = z.strictObject({
  reason: z.enum(POSTPONE_REASONS),
  newDueAt: z
    .union([z.iso.datetime({ offset: true }), z.iso.date()], {
      error: 'must be an ISO 8601 date-time with offset (2026-12-15T09:00:00+09:00) or a date',
    })
    .optional(),
  note,
});

export const statusBody = z.strictObject({
  status: z.enum(SETTABLE_STATUSES),
  note,
});

/** 修正依頼: the corrected values by field key, as the form shows them (read by the platform's profile). */
export const correctBody = z.strictObject({
  fields: z
    .record(z.string().trim().min(1).max(100), z.string().max(2000))
    .refine((f) => Object.keys(f).length > 0, { error: 'name at least one field to correct' })
    .refine((f) => Object.keys(f).length <= 50, { error: 'at most 50 fields' }),
  note,
});

// ---- output ---------------------------------------------------------------------------------

/** A report as the admin API shows it: its state, the copy-ready fields and what may be done next. */
export function reportView(r: Report) {
  const label = REPORT_KIND_LABELS[r.kind as ReportKind];
  return {
    id: r.id,
    kind: r.kind,
    title: label ? `${label.ja} (${label.en})` : r.kind,
    platform: r.platform,
    channel: r.channel,
    dealId: r.dealId,
    referralId: r.referralId,
    status: r.status,
    dueAt: r.dueAt,
    /** Not delivered before this instant (Partner Center's deal-registration wait before Won). */
    notBefore: r.notBefore,
    deliveredAt: r.deliveredAt,
    occurredAt: r.occurredAt,
    attempts: r.attempts,
    lastError: r.lastError,
    fields: r.fields,
    data: r.data,
    billingKey: r.billingKey,
    amountExTax: dbAmount(r.amountExTax),
    reportedAmount: dbAmount(r.reportedAmount),
    postponeReason: r.postponeReason,
    note: r.note,
    createdAt: r.createdAt,
    updatedAt: r.updatedAt,
    /** What the table allows from here (`mark-reported`, `postpone`, `status:<STATUS>`). */
    actions: allowedManualActions(r),
  };
}

const notFound = (id: string) =>
  new DomainException(HttpStatus.NOT_FOUND, CommonErrorCode.NotFound, `report ${id} not found`);

/** What an admin request asks, before the report is read. */
type Request =
  | { action: 'mark_reported'; body: z.output<typeof markReportedBody> }
  | { action: 'postpone'; body: z.output<typeof postponeBody> }
  | { action: 'status'; body: z.output<typeof statusBody> };

/**
 * The report queue of the admin API (CONTRACT §6): list and read reports, and the operator's
 * transitions (issue item 3). Each transition is one transaction: it reads the report, asks the
 * pure table (manual-report.transitions.ts), updates the row only if it is still as read (status
 * and updatedAt in the WHERE: a concurrent change answers 409 REPORT_CHANGED instead of being
 * overwritten), and writes the audit log (actor and role) and the deal's timeline with it.
 */
@Injectable()
export class ReportsService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly audit: AuditService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly lifecycle: LifecycleService,
    private readonly reporting: ReportService,
  ) {}

  async list(q: ReportsQuery) {
    const rows = await this.prisma.report.findMany({
      where: {
        status: q.status,
        platform: q.platform ? canonicalPlatform(q.platform) : undefined,
        dealId: q.dealId,
        kind: q.kind,
        channel: q.channel,
        ...(q.cursor ? { id: { lt: q.cursor } } : {}),
      },
      // Report ids are time-ordered (rpt_<uuidv7>): id order is creation order.
      orderBy: { id: 'desc' },
      take: q.limit + 1,
    });
    const { items, nextCursor } = page(rows, q.limit);
    return { items: items.map(reportView), nextCursor };
  }

  /** One report with its history: every admin action on it, oldest first. */
  async get(id: string) {
    const report = await this.prisma.report.findUnique({ where: { id } });
    if (!report) throw notFound(id);
    const history = await this.prisma.auditLog.findMany({
      where: { target: id },
      orderBy: { id: 'asc' },
    });
    return {
      ...reportView(report),
      history: history.map((h) => ({
        at: h.createdAt,
        actor: h.actor,
        role: h.role,
        action: h.action,
        details: h.details,
      })),
    };
  }

  async listAlerts(q: z.output<typeof alertsQuery>) {
    const rows = await this.prisma.alert.findMany({
      where: q.cursor ? { id: { lt: q.cursor } } : {},
      // Alert ids are time-ordered (alr_<uuidv7>).
      orderBy: { id: 'desc' },
      take: q.limit + 1,
    });
    return page(rows, q.limit);
  }

  markReported(id: string, body: z.output<typeof markReportedBody>, actor?: Actor) {
    return this.apply(id, { action: 'mark_reported', body }, actor);
  }

  postpone(id: string, body: z.output<typeof postponeBody>, actor?: Actor) {
    return this.apply(id, { action: 'postpone', body }, actor);
  }

  setStatus(id: string, body: z.output<typeof statusBody>, actor?: Actor) {
    return this.apply(id, { action: 'status', body }, actor);
  }

  /**
   * 修正依頼: finance corrects the report's fields (not only the amount) while the platform asks
   * for a correction. The platform's profile reads each value back into the report data (unknown
   * keys and unreadable values: 400, each named, nothing changed); the fields and data are
   * replaced, a corrected amount is also the amount entered on the platform (reportedAmount), and
   * every changed field is recorded with its value before and after in the audit log (the report's
   * history) and on the deal's timeline. Values that are the ones shown change nothing.
   */
  async correct(id: string, body: z.output<typeof correctBody>, actor?: Actor) {
    return this.prisma.$transaction(async (tx) => {
      const row = await tx.report.findUnique({
        where: { id },
        include: { deal: { select: { timeZone: true, currency: true } } },
      });
      if (!row) throw notFound(id);
      const { deal, ...report } = row;
      const decision = decideManualAction(report, { type: 'correct' }, this.clock.now());
      if (!decision.ok) {
        throw new DomainException(
          HttpStatus.CONFLICT,
          AdminErrorCode.TransitionRefused,
          `report ${id} (${report.kind}, ${report.status}): ${decision.reason}`,
        );
      }
      const zone = this.config.timeZoneOf(deal);
      const stored = (Array.isArray(report.fields)
        ? report.fields
        : []) as unknown as ReportField[];
      const correction = platformProfile(report.platform).correct(
        report.data as unknown as ReportData,
        zone,
        stored,
        body.fields,
      );
      if (!correction.ok) {
        throw new DomainException(
          HttpStatus.BAD_REQUEST,
          CommonErrorCode.ValidationFailed,
          `report ${id} (${report.kind}): ${correction.reason}`,
        );
      }
      if (correction.changes.length === 0) return reportView(report);

      const { count } = await tx.report.updateMany({
        where: { id, status: report.status, updatedAt: report.updatedAt },
        data: {
          data: correction.data as unknown as Prisma.InputJsonValue,
          fields: correction.fields as unknown as Prisma.InputJsonValue,
          ...(correction.amountExTax !== undefined
            ? { reportedAmount: correction.amountExTax }
            : {}),
          ...(body.note !== undefined ? { note: body.note } : {}),
          updatedAt: this.clock.now(),
        },
      });
      if (count === 0) {
        throw new DomainException(
          HttpStatus.CONFLICT,
          AdminErrorCode.ReportChanged,
          `report ${id} changed while this request was handled (it was ${report.status}): reload it and try again`,
        );
      }
      const details = {
        dealId: report.dealId,
        kind: report.kind,
        from: report.status,
        to: report.status,
        changes: correction.changes,
        ...(correction.amountExTax !== undefined
          ? {
              reportedAmount: correction.amountExTax,
              amountExTax: dbAmount(report.amountExTax),
            }
          : {}),
        ...(body.note !== undefined ? { note: body.note } : {}),
      } as unknown as Prisma.InputJsonValue;
      await this.audit.record(tx, actor, 'report.correct', id, details);
      const label = REPORT_KIND_LABELS[report.kind as ReportKind];
      await addTimeline(tx, {
        dealId: report.dealId,
        kind: 'report',
        message: `${label ? label.ja : report.kind} report ${id} corrected (修正依頼): ${correction.changes
          .map((c) => `${c.label} ${c.before ?? '—'} → ${c.after}`)
          .join('; ')}`,
        cause: `admin ${actor?.name ?? 'system'}`,
        details: { reportId: id, ...(details as object) },
      });
      return reportView(await tx.report.findUniqueOrThrow({ where: { id } }));
    });
  }

  private async apply(id: string, req: Request, actor: Actor | undefined) {
    return this.prisma.$transaction(async (tx) => {
      const row = await tx.report.findUnique({
        where: { id },
        include: { deal: { select: { timeZone: true, currency: true } } },
      });
      if (!row) throw notFound(id);
      // The deal first, as every change to a deal's reports takes it (its effects below write it).
      const locked = await this.lifecycle.lockDeal(tx, row.dealId);
      const { deal, ...report } = row;
      const zone = this.config.timeZoneOf(deal);
      const now = this.clock.now();

      const action = toAction(req, zone);
      const decision = decideManualAction(report, action, now);
      if (!decision.ok) {
        throw decision.refusal === 'invalid'
          ? new DomainException(
              HttpStatus.BAD_REQUEST,
              CommonErrorCode.ValidationFailed,
              decision.reason,
            )
          : new DomainException(
              HttpStatus.CONFLICT,
              AdminErrorCode.TransitionRefused,
              `report ${id} (${report.kind}, ${report.status}): ${decision.reason}`,
            );
      }

      const data: Prisma.ReportUpdateManyMutationInput = { status: decision.to, updatedAt: now };
      if (decision.dueAt !== undefined) data.dueAt = decision.dueAt;
      if (decision.postponeReason) data.postponeReason = decision.postponeReason;
      if (
        decision.deliveredAt === 'now' ||
        (decision.deliveredAt === 'if-unset' && report.deliveredAt === null)
      ) {
        data.deliveredAt = now;
      }
      if (decision.reportedAmount !== undefined) data.reportedAmount = decision.reportedAmount;
      if (req.body.note !== undefined) data.note = req.body.note;

      const { count } = await tx.report.updateMany({
        where: { id, status: report.status, updatedAt: report.updatedAt },
        data,
      });
      if (count === 0) {
        throw new DomainException(
          HttpStatus.CONFLICT,
          AdminErrorCode.ReportChanged,
          `report ${id} changed while this request was handled (it was ${report.status}): reload it and try again`,
        );
      }

      const details = {
        dealId: report.dealId,
        kind: report.kind,
        from: report.status,
        to: decision.to,
        ...(decision.dueAt !== undefined
          ? {
              dueAt: decision.dueAt?.toISOString() ?? null,
              previousDueAt: report.dueAt?.toISOString() ?? null,
            }
          : {}),
        ...(decision.postponeReason ? { postponeReason: decision.postponeReason } : {}),
        ...(decision.reportedAmount !== undefined
          ? { reportedAmount: decision.reportedAmount, amountExTax: dbAmount(report.amountExTax) }
          : {}),
        ...(req.body.note !== undefined ? { note: req.body.note } : {}),
      };
      await this.audit.record(tx, actor, `report.${req.action}`, id, details);
      await addTimeline(tx, {
        dealId: report.dealId,
        kind: 'report',
        message: timelineMessage(report, decision.to, req, decision.dueAt, deal.currency),
        cause: `admin ${actor?.name ?? 'system'}`,
        details: { reportId: id, ...details },
      });

      const ctx = { cause: `admin ${actor?.name ?? 'system'}`, correlationId: `admin|${id}`, now };
      if (req.action === 'postpone' && decision.postponeReason === 'date_changed') {
        await this.moveExpectedDate(tx, locked, report, req.body.newDueAt!, zone, ctx.cause);
      }
      if (req.action === 'postpone' && decision.postponeReason === 'lost') {
        await this.proposeLoss(tx, locked, report, req.body.note, now, ctx.cause);
      }
      await this.reporting.reviewed(
        tx,
        locked,
        report,
        { from: report.status, to: decision.to },
        ctx,
      );
      return reportView(await tx.report.findUniqueOrThrow({ where: { id } }));
    });
  }

  /**
   * まだ未定: 請求予定日が変更. A confirmed-amount task still waiting for its invoice moves its item's
   * expected invoice date to the new one (the local date in the deal's zone), and what is derived
   * from the plan follows (ReportService.plannedDatesChanged). A monthly item bills on its schedule
   * and an invoiced task's date is its invoice's: for those only the deadline moves.
   */
  private async moveExpectedDate(
    tx: Prisma.TransactionClient,
    deal: Deal,
    report: Report,
    given: string,
    zone: string,
    cause: string,
  ): Promise<void> {
    if (report.kind !== 'confirmed_amount' || report.billingKey) return;
    const itemKey = (report.data as Partial<ReportData> | null)?.itemKey;
    if (!itemKey) return;
    const item = await tx.billingItem.findUnique({
      where: { dealId_key: { dealId: deal.id, key: itemKey } },
    });
    if (!item || item.removed || item.trigger === 'monthly') return;
    const date = DATE_ONLY.test(given) ? given : localDate(new Date(given), zone);
    if (item.expectedInvoiceDate !== date) {
      await tx.billingItem.update({
        where: { id: item.id },
        data: { expectedInvoiceDate: date },
      });
      await addTimeline(tx, {
        dealId: deal.id,
        kind: 'billing',
        message: `expected invoice date of ${item.label} (${item.key}) moved from ${item.expectedInvoiceDate ?? 'none'} to ${date} (まだ未定: 請求予定日が変更, report ${report.id})`,
        cause,
        details: {
          itemKey: item.key,
          from: item.expectedInvoiceDate,
          to: date,
          reportId: report.id,
        },
      });
    }
    await this.reporting.plannedDatesChanged(tx, deal);
  }

  /**
   * まだ未定: 失注. The loss is proposed on the deal (shown on it in the admin API and the dashboard)
   * for a person to confirm (POST /api/deals/:id/loss/confirm: the deal becomes LOST and the lost
   * report follows) or dismiss. A loss already proposed keeps its first proposal.
   */
  private async proposeLoss(
    tx: Prisma.TransactionClient,
    deal: Deal,
    report: Report,
    note: string | undefined,
    now: Date,
    cause: string,
  ): Promise<void> {
    const label = REPORT_KIND_LABELS[report.kind as ReportKind]?.ja ?? report.kind;
    const proposal = note ?? `まだ未定（失注）: ${label} ${report.id}`;
    if (!deal.lossProposedAt) {
      await tx.deal.update({
        where: { id: deal.id },
        data: { lossProposedAt: now, lossProposal: proposal, version: { increment: 1 } },
      });
    }
    await addTimeline(tx, {
      dealId: deal.id,
      kind: 'admin',
      message: deal.lossProposedAt
        ? `loss proposed again from ${label} report ${report.id} (まだ未定: 失注); the proposal of ${deal.lossProposedAt.toISOString()} stands: confirm or dismiss it`
        : `loss proposed from ${label} report ${report.id} (まだ未定: 失注): ${proposal} — confirm or dismiss it`,
      cause,
      details: { reportId: report.id, proposal, stage: deal.stage },
    });
  }
}

function toAction(req: Request, zone: string): ManualAction {
  switch (req.action) {
    case 'mark_reported':
      return { type: 'mark-reported', amountExTax: req.body.amountExTax };
    case 'status':
      return { type: 'status', status: req.body.status };
    case 'postpone': {
      const given = req.body.newDueAt;
      const newDueAt =
        given === undefined
          ? undefined
          : DATE_ONLY.test(given)
            ? // A date: the task is due once that local day is over (as the report service sets deadlines).
              addDaysInZone(startOfLocalDay(given, zone), 1, zone)
            : new Date(given);
      return { type: 'postpone', reason: req.body.reason, newDueAt };
    }
  }
}

function timelineMessage(
  report: Pick<Report, 'id' | 'kind' | 'status' | 'amountExTax' | 'dueAt'>,
  to: string,
  req: Request,
  dueAt: Date | null | undefined,
  currency: string,
): string {
  const label = REPORT_KIND_LABELS[report.kind as ReportKind];
  const what = `${label ? label.ja : report.kind} report ${report.id}`;
  const money = (n: number) => formatMoney(n, currency);
  const stated = dbAmount(report.amountExTax);
  switch (req.action) {
    case 'mark_reported': {
      const entered = req.body.amountExTax;
      const differs =
        entered !== undefined && entered !== stated
          ? ` (entered ${money(entered)} excl. tax${stated !== null ? `, the hub had ${money(stated)}` : ''})`
          : '';
      return `${what} marked reported on the platform: ${report.status} → ${to}${differs}`;
    }
    case 'status':
      return `${what}: ${report.status} → ${to}`;
    case 'postpone':
      return req.body.reason === 'lost'
        ? `${what} postponed (lost): ${report.status} → ${to}, deadline cleared`
        : `${what} postponed (${req.body.reason}): ${report.status} → ${to}, new deadline ${dueAt?.toISOString() ?? 'none'}`;
  }
}
