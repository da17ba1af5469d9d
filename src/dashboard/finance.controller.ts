import {
  Controller,
  Get,
  HttpStatus,
  Param,
  Post,
  Query,
  Req,
  Res,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { FastifyReply } from 'fastify';

import { parseInput } from '../admin/parse-query';
import { ReconciliationService, reconciliationPageQuery } from '../admin/reconciliation.service';
import {
  ReportsService,
  correctBody,
  markReportedBody,
  postponeBody,
  reportsQuery,
  statusBody,
} from '../admin/reports.service';
import { DomainException } from '../common/domain.exception';
import { PrismaService } from '../prisma/prisma.service';
import { REPORT_STATUSES, SETTABLE_STATUSES } from '../reporting/manual-report.transitions';
import { NOT_SET, REPORT_KIND_LABELS } from '../reporting/report-fields';
import { POSTPONE_REASONS, REPORT_CHANNELS, REPORT_KINDS } from '../domain/report';
import { DashboardExceptionFilter } from './dashboard.filter';
import { DashboardGuard, DashboardRequest, DashboardRole } from './dashboard.guard';
import { POSTPONE_REASON_LABELS, isOverdue } from './finance-labels';
import { nonEmpty, page, render } from './page';

type Form = Record<string, unknown>;

/** A trimmed form field, or undefined when blank or absent. */
function field(form: Form, name: string): string | undefined {
  const v = form[name];
  return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
}

const DONE = ['mark_reported', 'postpone', 'status', 'correct'] as const;
type Done = (typeof DONE)[number];

/** Errors of the admin services a page shows in place (the others become the error page). */
function shownInPlace(err: unknown, statuses: number[]): DomainException | undefined {
  return err instanceof DomainException && statuses.includes(err.getStatus()) ? err : undefined;
}

const errorMessage = (err: DomainException) =>
  (err.getResponse() as { error?: { message?: string } }).error?.message ?? err.message;

/** Reconciliation (three legs, CSV export) and the reports queue (copy-ready fields, mark reported, postpone). */
@ApiExcludeController()
@UseGuards(DashboardGuard)
@UseFilters(DashboardExceptionFilter)
@Controller('dashboard')
export class FinanceController {
  constructor(
    private readonly reconciliation: ReconciliationService,
    private readonly reports: ReportsService,
    private readonly prisma: PrismaService,
  ) {}

  // ---- reconciliation --------------------------------------------------------------------------

  @Get('reconciliation')
  @DashboardRole('finance')
  async reconciliationPage(
    @Req() req: DashboardRequest,
    @Query() query: Form,
    @Res() reply: FastifyReply,
  ) {
    const q = parseInput(reconciliationPageQuery, nonEmpty(query));
    const dealId = q.dealId;
    const readAt = new Date();
    let report: Awaited<ReturnType<ReconciliationService['report']>> | undefined;
    let unavailable: { code: string; message: string } | undefined;
    try {
      report = await this.reconciliation.report(q);
    } catch (err) {
      // Stripe not configured (503) or unreachable (502): say so on the page.
      const shown = shownInPlace(err, [HttpStatus.SERVICE_UNAVAILABLE, HttpStatus.BAD_GATEWAY]);
      if (!shown) throw err;
      unavailable = { code: shown.code, message: errorMessage(shown) };
    }
    // The page's deals come newest first; the page shows its mismatches first.
    const deals = report?.deals ?? [];
    // The next page keeps a page size that was asked for.
    const next = new URLSearchParams();
    if (nonEmpty(query).limit !== undefined) next.set('limit', String(q.limit));
    if (report?.nextCursor) next.set('cursor', report.nextCursor);
    const nextHref = report?.nextCursor
      ? `/dashboard/reconciliation?${next.toString()}`
      : undefined;
    const model = page(
      req,
      { title: 'recon.title', active: 'reconciliation' },
      {
        dealId,
        report,
        unavailable,
        withMismatches: deals.filter((d) => d.mismatches.length > 0),
        clean: deals.filter((d) => d.mismatches.length === 0),
        // Not the first page: a way back to the newest deals.
        firstHref: q.cursor && !dealId ? '/dashboard/reconciliation' : undefined,
        nextHref,
        // The whole reconciliation (every page), or the one deal.
        csvHref: `/dashboard/reconciliation.csv${dealId ? `?dealId=${encodeURIComponent(dealId)}` : ''}`,
      },
      readAt,
    );
    return render(reply, 'finance-reconciliation', model, unavailable ? 503 : 200);
  }

  /** The admin API's CSV (GET /api/reconciliation?format=csv), downloaded with the session. */
  @Get('reconciliation.csv')
  @DashboardRole('finance')
  async reconciliationCsv(@Query() query: Form, @Res() reply: FastifyReply) {
    const { generatedAt, body } = await this.reconciliation.csv(
      parseInput(reconciliationPageQuery, nonEmpty(query)),
    );
    return reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header(
        'content-disposition',
        `attachment; filename="reconciliation-${generatedAt.replace(/[:.]/g, '-')}.csv"`,
      )
      .header('cache-control', 'no-store')
      .send(body);
  }

  // ---- reports queue ---------------------------------------------------------------------------

  @Get('reports')
  async reportsPage(
    @Req() req: DashboardRequest,
    @Query() query: Form,
    @Res() reply: FastifyReply,
  ) {
    const q = parseInput(reportsQuery, nonEmpty(query));
    const readAt = new Date();
    const [result, platforms] = await Promise.all([
      this.reports.list(q),
      // DISTINCT in SQL: Prisma's `distinct` reads every report row and de-duplicates in memory.
      this.prisma.$queryRaw<{ platform: string }[]>`
        SELECT DISTINCT platform FROM report ORDER BY platform LIMIT 100`,
    ]);
    const filters = {
      ...(q.status ? { status: q.status } : {}),
      ...(q.platform ? { platform: q.platform } : {}),
      ...(q.kind ? { kind: q.kind } : {}),
      ...(q.channel ? { channel: q.channel } : {}),
      ...(q.dealId ? { dealId: q.dealId } : {}),
    };
    const nextQuery = result.nextCursor
      ? new URLSearchParams({ ...filters, cursor: result.nextCursor }).toString()
      : undefined;
    const model = page(
      req,
      { title: 'reports.title', active: 'reports' },
      {
        query: q,
        reports: result.items.map((r) => ({ ...r, overdue: isOverdue(r, readAt) })),
        nextQuery,
        statuses: REPORT_STATUSES,
        platforms: platforms.map((p) => p.platform),
        kinds: REPORT_KINDS,
        channels: REPORT_CHANNELS,
        ...this.labels(),
      },
      readAt,
    );
    return render(reply, 'finance-reports', model);
  }

  @Get('reports/:id')
  async reportPage(
    @Req() req: DashboardRequest,
    @Param('id') id: string,
    @Query() query: Form,
    @Res() reply: FastifyReply,
  ) {
    const done = DONE.find((d) => d === query.done);
    return this.renderReport(req, reply, id, { done });
  }

  @Post('reports/:id/mark-reported')
  @DashboardRole('finance')
  async markReported(
    @Req() req: DashboardRequest,
    @Param('id') id: string,
    @Res() reply: FastifyReply,
  ) {
    const form = (req.body ?? {}) as Form;
    const amount = field(form, 'amountExTax');
    const note = field(form, 'note');
    return this.act(req, reply, id, 'mark_reported', () =>
      this.reports.markReported(
        id,
        parseInput(markReportedBody, {
          ...(amount !== undefined
            ? { amountExTax: /^\d+$/.test(amount) ? Number(amount) : amount }
            : {}),
          ...(note !== undefined ? { note } : {}),
        }),
        req.dashboard!.actor,
      ),
    );
  }

  @Post('reports/:id/postpone')
  @DashboardRole('finance')
  async postpone(
    @Req() req: DashboardRequest,
    @Param('id') id: string,
    @Res() reply: FastifyReply,
  ) {
    const form = (req.body ?? {}) as Form;
    const reason = field(form, 'reason');
    // "Lost" clears the deadline: a date left in the form's field is not meant.
    const newDueAt = reason === 'lost' ? undefined : field(form, 'newDueAt');
    const note = field(form, 'note');
    return this.act(req, reply, id, 'postpone', () =>
      this.reports.postpone(
        id,
        parseInput(postponeBody, {
          reason,
          ...(newDueAt !== undefined ? { newDueAt } : {}),
          ...(note !== undefined ? { note } : {}),
        }),
        req.dashboard!.actor,
      ),
    );
  }

  @Post('reports/:id/status')
  @DashboardRole('finance')
  async setStatus(
    @Req() req: DashboardRequest,
    @Param('id') id: string,
    @Res() reply: FastifyReply,
  ) {
    const form = (req.body ?? {}) as Form;
    const note = field(form, 'note');
    return this.act(req, reply, id, 'status', () =>
      this.reports.setStatus(
        id,
        parseInput(statusBody, {
          status: field(form, 'status'),
          ...(note !== undefined ? { note } : {}),
        }),
        req.dashboard!.actor,
      ),
    );
  }

  @Post('reports/:id/correct')
  @DashboardRole('finance')
  async correct(@Req() req: DashboardRequest, @Param('id') id: string, @Res() reply: FastifyReply) {
    const form = (req.body ?? {}) as Form;
    const note = field(form, 'note');
    // The form shows every field with its value: only the ones changed are corrections (a blank
    // input, a field not known yet, is left as it is; none changed: 400, shown in place).
    const report = await this.reports.get(id);
    const shown = new Map(
      (Array.isArray(report.fields) ? (report.fields as { key: string; value: string }[]) : []).map(
        (f) => [f.key, f.value],
      ),
    );
    const fields = Object.fromEntries(
      Object.keys(form)
        .filter((name) => name.startsWith('field.'))
        .map((name) => [name.slice('field.'.length), field(form, name)] as const)
        .filter(
          (e): e is readonly [string, string] => e[1] !== undefined && shown.get(e[0]) !== e[1],
        ),
    );
    return this.act(req, reply, id, 'correct', () =>
      this.reports.correct(
        id,
        parseInput(correctBody, { fields, ...(note !== undefined ? { note } : {}) }),
        req.dashboard!.actor,
      ),
    );
  }

  /**
   * Runs one action of the admin service; back to the report with a notice (303), or the report
   * again with the refusal's reason (400 invalid, 409 refused or changed meanwhile).
   */
  private async act(
    req: DashboardRequest,
    reply: FastifyReply,
    id: string,
    done: Done,
    run: () => Promise<unknown>,
  ) {
    try {
      await run();
    } catch (err) {
      const shown = shownInPlace(err, [HttpStatus.BAD_REQUEST, HttpStatus.CONFLICT]);
      if (!shown) throw err;
      return this.renderReport(req, reply, id, {
        refused: { code: shown.code, message: errorMessage(shown) },
        status: shown.getStatus(),
      });
    }
    return reply.redirect(`/dashboard/reports/${encodeURIComponent(id)}?done=${done}`, 303);
  }

  private async renderReport(
    req: DashboardRequest,
    reply: FastifyReply,
    id: string,
    opts: { done?: Done; refused?: { code: string; message: string }; status?: number },
  ) {
    const readAt = new Date();
    const report = await this.reports.get(id);
    const actions = report.actions as string[];
    const model = page(
      req,
      { title: 'report.title', titleParams: { id }, active: 'reports' },
      {
        report,
        overdue: isOverdue(report, readAt),
        fields: Array.isArray(report.fields)
          ? (report.fields as { key: string; label: string; labelEn: string; value: string }[])
          : [],
        canMarkReported: actions.includes('mark-reported'),
        canPostpone: actions.includes('postpone'),
        canCorrect: actions.includes('correct'),
        notSet: NOT_SET,
        settable: SETTABLE_STATUSES.filter((s) => actions.includes(`status:${s}`)),
        postponeReasons: POSTPONE_REASONS,
        done: opts.done,
        refused: opts.refused,
        ...this.labels(),
      },
      readAt,
    );
    return render(reply, 'finance-report', model, opts.status ?? 200);
  }

  private labels() {
    return {
      kindLabels: REPORT_KIND_LABELS,
      reasonLabels: POSTPONE_REASON_LABELS,
    };
  }
}
