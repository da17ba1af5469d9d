import {
  Body,
  Controller,
  Get,
  HttpCode,
  Param,
  Post,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiOperation,
  ApiParam,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';

import { REPORT_STATUSES } from '../reporting/manual-report.transitions';
import { REPORT_CHANNELS, REPORT_KINDS } from '../domain/report';
import { AuthGuard, AuthedRequest, RequireRole } from './auth.guard';
import { ApiAuthErrors, ApiError } from './deals.openapi';
import { parseInput } from './parse-query';
import {
  ALERT_LIST_EXAMPLE,
  CORRECTION_HISTORY_EXAMPLE,
  CORRECT_SCHEMA,
  MARK_REPORTED_SCHEMA,
  POSTPONE_SCHEMA,
  REPORT_DETAIL_EXAMPLE,
  REPORT_EXAMPLE,
  REPORT_LIST_EXAMPLE,
  STATUS_SCHEMA,
} from './reports.openapi';
import {
  ReportsService,
  alertsQuery,
  correctBody,
  markReportedBody,
  postponeBody,
  reportsQuery,
  statusBody,
} from './reports.service';

const REPORT_ID = {
  name: 'id',
  description: 'report id (rpt_…), the reportId sent to the platform',
};

/** The outbound report queue and alerts (CONTRACT §6, issue item 3). */
@ApiTags('reports')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Controller('api')
export class ReportsController {
  constructor(private readonly reports: ReportsService) {}

  @Get('reports')
  @RequireRole('viewer')
  @ApiOperation({
    summary: 'List reports to referral platforms, newest first',
    description:
      'Every report the hub owes a referral platform, whatever its channel; `channel=manual` is the manual queue. `fields` are what the platform’s form asks for, copy-ready; `actions` are what may be done next. Paginated: pass `nextCursor` as `cursor`.',
  })
  @ApiQuery({ name: 'status', required: false, enum: REPORT_STATUSES })
  @ApiQuery({ name: 'platform', required: false, type: String })
  @ApiQuery({ name: 'dealId', required: false, type: String })
  @ApiQuery({ name: 'kind', required: false, enum: REPORT_KINDS })
  @ApiQuery({ name: 'channel', required: false, enum: REPORT_CHANNELS })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1–200, default 50' })
  @ApiQuery({ name: 'cursor', required: false, type: String })
  @ApiResponse({
    status: 200,
    description: 'A page of reports',
    schema: { example: REPORT_LIST_EXAMPLE },
  })
  @ApiError(400, 'VALIDATION_FAILED', 'status: Invalid option: expected one of …')
  @ApiAuthErrors('viewer')
  list(@Query() query: unknown) {
    return this.reports.list(parseInput(reportsQuery, query));
  }

  @Get('reports/:id')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'One report with its history (every admin action, oldest first)' })
  @ApiParam(REPORT_ID)
  @ApiResponse({
    status: 200,
    description: 'The report',
    schema: { example: REPORT_DETAIL_EXAMPLE },
  })
  @ApiError(404, 'NOT_FOUND', 'report rpt_… not found')
  @ApiAuthErrors('viewer')
  get(@Param('id') id: string) {
    return this.reports.get(id);
  }

  @Post('reports/:id/mark-reported')
  @HttpCode(200)
  @RequireRole('finance')
  @ApiOperation({
    summary: 'Mark a report as entered on the platform',
    description:
      'REPORTED (FEE_ONGOING for a confirmed amount billed monthly fixed) from PENDING, OVERDUE, UNDER_REVIEW, CORRECTION_REQUESTED, FAILED or DEAD; sets `deliveredAt`. `amountExTax` records what was actually entered when it differs. Audited with the token’s role and written on the deal’s timeline.',
  })
  @ApiParam(REPORT_ID)
  @ApiBody({ schema: MARK_REPORTED_SCHEMA, required: false })
  @ApiResponse({
    status: 200,
    description: 'The report after the change',
    schema: { example: { ...REPORT_EXAMPLE, status: 'REPORTED', actions: [] } },
  })
  @ApiError(
    400,
    'VALIDATION_FAILED',
    'amountExTax: must be an integer in the currency’s smallest unit',
  )
  @ApiError(404, 'NOT_FOUND', 'report rpt_… not found')
  @ApiResponse({
    status: 409,
    description:
      'TRANSITION_REFUSED: the report’s state does not allow it (the reason is named); REPORT_CHANGED: it changed while the request was handled',
    schema: {
      example: {
        error: {
          code: 'TRANSITION_REFUSED',
          message: 'report rpt_… (confirmed_amount, REPORTED): the report is already REPORTED',
        },
      },
    },
  })
  @ApiAuthErrors('finance')
  markReported(@Param('id') id: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    return this.reports.markReported(id, parseInput(markReportedBody, body), req.actor);
  }

  @Post('reports/:id/postpone')
  @HttpCode(200)
  @RequireRole('finance')
  @ApiOperation({
    summary: 'Postpone a manual report that is still owed (PENDING or OVERDUE)',
    description:
      'Back to PENDING with the reason (PRONI アイミツ’s まだ未定): date_changed and not_started move the deadline to `newDueAt` (in the future) — date_changed on a confirmed amount still waiting for its invoice also moves its item’s expected invoice date (the local date in the deal’s zone), and the dates derived from it follow; lost clears the deadline and proposes the loss on the deal, for POST /api/deals/{id}/loss/confirm or …/dismiss. Audited and written on the deal’s timeline.',
  })
  @ApiParam(REPORT_ID)
  @ApiBody({ schema: POSTPONE_SCHEMA })
  @ApiResponse({
    status: 200,
    description: 'The report after the change',
    schema: {
      example: {
        ...REPORT_EXAMPLE,
        status: 'PENDING',
        postponeReason: 'date_changed',
        dueAt: '2026-12-31T15:00:00.000Z',
      },
    },
  })
  @ApiError(400, 'VALIDATION_FAILED', 'reason date_changed needs newDueAt, the new deadline')
  @ApiError(404, 'NOT_FOUND', 'report rpt_… not found')
  @ApiError(
    409,
    'TRANSITION_REFUSED',
    'report rpt_… (won, REPORTED): postpone is not allowed from REPORTED (only from PENDING, OVERDUE): only a report that is still owed has a deadline to move',
  )
  @ApiAuthErrors('finance')
  postpone(@Param('id') id: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    return this.reports.postpone(id, parseInput(postponeBody, body), req.actor);
  }

  @Post('reports/:id/status')
  @HttpCode(200)
  @RequireRole('finance')
  @ApiOperation({
    summary:
      'Set the status the platform shows (事務局確認中, 修正依頼, 報告済み, 成約手数料発生中)',
    description:
      'UNDER_REVIEW from PENDING, OVERDUE or CORRECTION_REQUESTED; CORRECTION_REQUESTED from UNDER_REVIEW, REPORTED or FEE_ONGOING (both manual queue only); REPORTED from any owed, reviewed or fee-running state; FEE_ONGOING only for a confirmed amount billed monthly fixed. A confirmed amount reaching REPORTED (approved; mark-reported too) creates the next cycle’s task of what the deal still has to invoice; one in the platform’s hands lets a delivered deal’s 納品報告 be recorded (PRONI アイミツ). Audited and written on the deal’s timeline.',
  })
  @ApiParam(REPORT_ID)
  @ApiBody({ schema: STATUS_SCHEMA })
  @ApiResponse({
    status: 200,
    description: 'The report after the change',
    schema: { example: { ...REPORT_EXAMPLE, status: 'UNDER_REVIEW' } },
  })
  @ApiError(400, 'VALIDATION_FAILED', 'status: Invalid option: expected one of …')
  @ApiError(404, 'NOT_FOUND', 'report rpt_… not found')
  @ApiError(
    409,
    'TRANSITION_REFUSED',
    'report rpt_… (confirmed_amount, PENDING): setting the status to CORRECTION_REQUESTED is not allowed from PENDING (…)',
  )
  @ApiAuthErrors('finance')
  setStatus(@Param('id') id: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    return this.reports.setStatus(id, parseInput(statusBody, body), req.actor);
  }

  @Post('reports/:id/correct')
  @HttpCode(200)
  @RequireRole('finance')
  @ApiOperation({
    summary: 'Correct the fields of a report the platform asked to correct (修正依頼)',
    description:
      'Manual queue, while the report is CORRECTION_REQUESTED (under review the fields stay as entered; before they are entered the hub keeps them up to date). `fields` are the corrected values by field key, written as the form shows them; the platform’s form reads each back into the report data (an amount, a date, one of its choices). The fields and data are replaced; a corrected amount is also the amount entered on the platform (`reportedAmount`: reconciliation’s reported leg). Each changed field is recorded with its value before and after in the audit log (the report’s `history`) and on the deal’s timeline; values that are the ones shown change nothing. The status stays CORRECTION_REQUESTED: set UNDER_REVIEW (or mark reported) once the corrected report is entered on the platform.',
  })
  @ApiParam(REPORT_ID)
  @ApiBody({ schema: CORRECT_SCHEMA })
  @ApiResponse({
    status: 200,
    description:
      'The report after the correction (its history, with the correction, at GET /api/reports/:id)',
    schema: {
      example: {
        ...REPORT_EXAMPLE,
        status: 'CORRECTION_REQUESTED',
        reportedAmount: 290000,
        actions: ['mark-reported', 'status:UNDER_REVIEW', 'status:REPORTED', 'correct'],
        history: [CORRECTION_HISTORY_EXAMPLE],
      },
    },
  })
  @ApiError(
    400,
    'VALIDATION_FAILED',
    "report rpt_… (confirmed_amount): unknown field invoiceNo: a confirmed_amount report's form has billingCount, orderDescription, amountExTax, issueDate, nextInvoiceDate, attachment, attachmentCertificate",
  )
  @ApiError(404, 'NOT_FOUND', 'report rpt_… not found')
  @ApiResponse({
    status: 409,
    description:
      'TRANSITION_REFUSED: the report is not CORRECTION_REQUESTED or not in the manual queue (the reason is named); REPORT_CHANGED: it changed while the request was handled',
    schema: {
      example: {
        error: {
          code: 'TRANSITION_REFUSED',
          message:
            'report rpt_… (confirmed_amount, UNDER_REVIEW): correcting the fields is not allowed from UNDER_REVIEW (only from CORRECTION_REQUESTED): …',
        },
      },
    },
  })
  @ApiAuthErrors('finance')
  correct(@Param('id') id: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    return this.reports.correct(id, parseInput(correctBody, body), req.actor);
  }

  @Get('alerts')
  @RequireRole('viewer')
  @ApiOperation({
    summary: 'List alerts, newest first (paginated: pass nextCursor as cursor)',
    description:
      'Raised once per cause: referral.expiring, referral.expired, report.overdue, dead_letters.growing, provider.failing, plan.refused. `deliveredAt` is when ALERT_WEBHOOK_URL acknowledged it.',
  })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1–200, default 50' })
  @ApiQuery({ name: 'cursor', required: false, type: String })
  @ApiResponse({
    status: 200,
    description: 'A page of alerts',
    schema: { example: ALERT_LIST_EXAMPLE },
  })
  @ApiError(400, 'VALIDATION_FAILED', 'limit: Too big: expected number to be <=200')
  @ApiAuthErrors('viewer')
  listAlerts(@Query() query: unknown) {
    return this.reports.listAlerts(parseInput(alertsQuery, query));
  }
}
