import {
  Body,
  Controller,
  Delete,
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
import { z } from 'zod';

import { PrismaService } from '../prisma/prisma.service';
import { AuthGuard, AuthedRequest, RequireRole } from './auth.guard';
import { EventsService } from './events.service';
import { JobName } from '../queue/job-name.enum';
import { ReplayPreviewService } from './replay-preview.service';
import { pageQuery } from './pagination';
import { parseInput } from './parse-query';
import { ROLES, TokensService } from './tokens.service';
import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';
import { WEBHOOK_SOURCES } from '../config/providers';
import { AuditService } from './audit.service';
import { ApiAuthErrors, ApiError } from './deals.openapi';

const eventsQuery = pageQuery.extend({
  provider: z.enum(WEBHOOK_SOURCES).optional(),
  status: z.enum(['RECEIVED', 'PROCESSED', 'IGNORED', 'FAILED', 'DEAD']).optional(),
  dealId: z.string().min(1).optional(),
});
const JOB_NAMES = Object.values(JobName) as [JobName, ...JobName[]];
const deadLetterFilter = z.object({
  jobName: z.enum(JOB_NAMES).optional(),
  queue: z.string().trim().min(1).optional(),
  /** Only dead letters created before this instant. */
  before: z.coerce.date().optional(),
});
const deadLettersQuery = pageQuery.merge(deadLetterFilter).extend({
  status: z.enum(['OPEN', 'REPLAYED', 'DISCARDED']).default('OPEN'),
});
const bulkReplayBody = deadLetterFilter.extend({
  limit: z.number().int().min(1).max(500).default(100),
});
const auditQuery = pageQuery.extend({
  action: z.string().trim().min(1).optional(),
  actor: z.string().trim().min(1).optional(),
});
const tokenBody = z.object({
  name: z.string().trim().min(1).max(100),
  role: z.enum(ROLES as [string, ...string[]]),
});

const EVENT_EXAMPLE = {
  id: 'evt_0199a0b1-…',
  provider: 'stripe',
  providerEventId: 'evt_1Q…',
  type: 'invoice.paid',
  status: 'PROCESSED',
  receivedAt: '2026-11-23T10:00:03.000Z',
  processedAt: '2026-11-23T10:00:03.120Z',
  attempts: 1,
  replayCount: 0,
  dealId: 'cl_deal_0199…',
  subjectKey: 'invoice:in_1Q…',
  correlationId: '6f1c…',
  lastError: null,
  purgedAt: null,
};
/** A replay (or its preview) of an event whose payload the retention purge removed. */
const EVENT_PURGED_MESSAGE =
  'event evt_… cannot be replayed: its payload, headers, normalized event and last error purged on 2027-12-28 (400 days after it was received, RETENTION_DAYS)';
const PREVIEW_EXAMPLE = {
  basis: 'event',
  eventId: 'evt_0199…',
  deadLetterId: 'dl_0199…',
  jobName: 'WebhookEventProcess',
  summary: [
    'transition: CONTRACT_SENT → WON',
    'billing: invoice due for 着手金 (deposit): ￥120,000 + tax 10% — the contract is signed',
    'report: won report for partner-center queued (partner-center)',
  ],
  effects: {
    outcome: 'SUCCEEDED',
    dealId: 'cl_deal_0199…',
    ignored: null,
    timeline: [{ kind: 'transition', message: 'CONTRACT_SENT → WON' }],
    invoices: [
      { billingKey: 'cl_deal_0199…|deposit', amount: 120000, taxAmount: 12000, currency: 'jpy' },
    ],
    reports: [
      { kind: 'won', channel: 'partner-center', platform: 'partner-center', amountExTax: 400000 },
    ],
    jobs: [{ name: 'BillingInvoiceIssue', jobId: 'bill|cl_deal_0199…|deposit' }],
  },
};

const DEAD_LETTER_EXAMPLE = {
  id: 'dl_0199…',
  eventId: 'evt_0199…',
  queue: 'webhooks',
  jobName: 'WebhookEventProcess',
  jobId: 'evt_0199…',
  data: { eventId: 'evt_0199…' },
  reason: 'PERMANENT',
  error: 'no deal cl_deal_x: create it (or fix the id) and replay',
  attempts: 1,
  status: 'OPEN',
  createdAt: '2026-11-23T10:00:04.000Z',
  resolvedAt: null,
  resolvedBy: null,
  replayJobId: null,
  event: {
    provider: 'milestones',
    type: 'milestone.accepted',
    providerEventId: 'msg_…',
    dealId: null,
  },
};
const TOKEN_EXAMPLE = {
  id: 'tok_0199…',
  name: 'dashboard',
  role: 'viewer',
  createdAt: '2026-11-23T10:00:00.000Z',
  revokedAt: null,
  lastUsedAt: null,
};

/** Admin API: events, dead letters, tokens (CONTRACT §6). */
@ApiTags('admin')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Controller('api')
export class AdminController {
  constructor(
    private readonly events: EventsService,
    private readonly prisma: PrismaService,
    private readonly audit: AuditService,
    private readonly tokens: TokensService,
    private readonly previews: ReplayPreviewService,
  ) {}

  @Get('events')
  @RequireRole('viewer')
  @ApiOperation({
    summary: 'List webhook events, newest first (paginated: pass nextCursor as cursor)',
  })
  @ApiQuery({
    name: 'provider',
    required: false,
    enum: [...WEBHOOK_SOURCES],
  })
  @ApiQuery({
    name: 'status',
    required: false,
    enum: ['RECEIVED', 'PROCESSED', 'IGNORED', 'FAILED', 'DEAD'],
  })
  @ApiQuery({ name: 'dealId', required: false, type: String })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1–200, default 50' })
  @ApiQuery({ name: 'cursor', required: false, type: String })
  @ApiResponse({
    status: 200,
    description: 'A page of events',
    schema: { example: { items: [EVENT_EXAMPLE], nextCursor: null } },
  })
  @ApiError(400, 'VALIDATION_FAILED', 'limit: Too big: expected number to be <=200')
  @ApiAuthErrors('viewer')
  listEvents(@Query() query: unknown) {
    return this.events.list(parseInput(eventsQuery, query));
  }

  @Get('events/:id')
  @RequireRole('viewer')
  @ApiOperation({
    summary: 'One event with its payload, job attempts and dead letters',
    description:
      'Once RETENTION_DAYS have passed after an event whose processing is over, the retention purge empties its payload and headers (null) and clears normalized and lastError: `purgedAt` and `purgeNote` say when. The event itself (its identity) stays.',
  })
  @ApiParam({ name: 'id', description: 'hub event id (evt_…)' })
  @ApiResponse({
    status: 200,
    description: 'The event',
    schema: {
      example: {
        ...EVENT_EXAMPLE,
        payload: { id: 'evt_1Q…', type: 'invoice.paid' },
        headers: { 'content-type': 'application/json' },
        normalized: { kind: 'invoice.paid' },
        purgeNote: null,
        deadLetters: [],
        jobAttempts: [
          {
            id: '1',
            jobId: 'evt_0199…',
            attempt: 1,
            outcome: 'SUCCEEDED',
            error: null,
            durationMs: 12,
            finishedAt: '2026-11-23T10:00:03.120Z',
          },
        ],
      },
    },
  })
  @ApiError(404, 'NOT_FOUND', 'event evt_… not found')
  @ApiAuthErrors('viewer')
  getEvent(@Param('id') id: string) {
    return this.events.get(id);
  }

  @Post('events/:id/replay')
  @HttpCode(202)
  @RequireRole('admin')
  @ApiOperation({
    summary: 'Replay an event through its handler (resolves its open dead letters)',
  })
  @ApiParam({ name: 'id', description: 'hub event id (evt_…)' })
  @ApiResponse({
    status: 202,
    description: 'Replay queued',
    schema: {
      example: {
        eventId: 'evt_0199…',
        jobId: 'evt_0199…-replay-1',
        status: 'RECEIVED',
        resolvedDeadLetters: 1,
      },
    },
  })
  @ApiError(404, 'NOT_FOUND', 'event evt_… not found')
  @ApiError(410, 'EVENT_PURGED', EVENT_PURGED_MESSAGE)
  @ApiAuthErrors('admin')
  replayEvent(@Param('id') id: string, @Req() req: AuthedRequest) {
    return this.events.replayEvent(id, req.actor);
  }

  @Get('events/:id/replay-preview')
  @RequireRole('admin')
  @ApiOperation({
    summary: 'What replaying the event would do, without doing it',
    description:
      "Runs the event's handler exactly as a replay would, in a transaction that is rolled back: the deal it lands on, transitions and refusals, invoices it would owe, reports it would produce and jobs it would queue. Remote reads (HubSpot deal, Partner Center referral) are made; nothing is written or sent.",
  })
  @ApiParam({ name: 'id', description: 'hub event id (evt_…)' })
  @ApiResponse({ status: 200, description: 'The preview', schema: { example: PREVIEW_EXAMPLE } })
  @ApiError(404, 'NOT_FOUND', 'event evt_… not found')
  @ApiError(410, 'EVENT_PURGED', EVENT_PURGED_MESSAGE)
  @ApiAuthErrors('admin')
  previewEventReplay(@Param('id') id: string) {
    return this.previews.forEvent(id);
  }

  @Get('dead-letters/:id/replay-preview')
  @RequireRole('admin')
  @ApiOperation({
    summary: 'What replaying the dead letter would do, without doing it',
    description:
      "An event's dead letter: the event's dry run (see events/:id/replay-preview). Other jobs: what the job would do to its target now (the Stripe invoice of a billing key, a report, the deal's envelope).",
  })
  @ApiParam({ name: 'id', description: 'dead letter id (dl_…)' })
  @ApiResponse({ status: 200, description: 'The preview', schema: { example: PREVIEW_EXAMPLE } })
  @ApiError(404, 'NOT_FOUND', 'dead letter dl_… not found')
  @ApiError(410, 'EVENT_PURGED', EVENT_PURGED_MESSAGE)
  @ApiAuthErrors('admin')
  previewDeadLetterReplay(@Param('id') id: string) {
    return this.previews.forDeadLetter(id);
  }

  @Get('dead-letters')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'List dead letters, newest first (paginated)' })
  @ApiQuery({ name: 'status', required: false, enum: ['OPEN', 'REPLAYED', 'DISCARDED'] })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1–200, default 50' })
  @ApiQuery({ name: 'cursor', required: false, type: String })
  @ApiResponse({
    status: 200,
    description: 'A page of dead letters',
    schema: { example: { items: [DEAD_LETTER_EXAMPLE], nextCursor: null } },
  })
  @ApiError(
    400,
    'VALIDATION_FAILED',
    'status: Invalid option: expected one of "OPEN"|"REPLAYED"|"DISCARDED"',
  )
  @ApiAuthErrors('viewer')
  listDeadLetters(@Query() query: unknown) {
    return this.events.listDeadLetters(parseInput(deadLettersQuery, query));
  }

  @Post('dead-letters/replay')
  @HttpCode(202)
  @RequireRole('admin')
  @ApiOperation({
    summary: 'Replay every open dead letter matching a filter (each exactly once)',
    description:
      'Oldest first, up to `limit` (default 100, at most 500). Each is replayed as POST /api/dead-letters/:id/replay would; one that another admin replayed meanwhile is skipped.',
  })
  @ApiBody({
    required: false,
    schema: {
      type: 'object',
      properties: {
        jobName: { type: 'string', enum: Object.values(JobName) },
        queue: { type: 'string' },
        before: { type: 'string', format: 'date-time' },
        limit: { type: 'integer', minimum: 1, maximum: 500 },
      },
    },
  })
  @ApiResponse({
    status: 202,
    description: 'What was replayed',
    schema: { example: { replayed: ['dl_0199…'], skipped: [] } },
  })
  @ApiAuthErrors('admin')
  replayDeadLetters(@Body() body: unknown, @Req() req: AuthedRequest) {
    return this.events.replayDeadLetters(parseInput(bulkReplayBody, body ?? {}), req.actor);
  }

  @Get('audit')
  @RequireRole('admin')
  @ApiOperation({ summary: 'The audit log, newest first (paginated by `cursor`)' })
  @ApiQuery({
    name: 'action',
    required: false,
    type: String,
    description: 'e.g. dead_letter.replay',
  })
  @ApiQuery({ name: 'actor', required: false, type: String })
  @ApiQuery({ name: 'limit', required: false, type: Number })
  @ApiQuery({ name: 'cursor', required: false, type: String })
  @ApiResponse({
    status: 200,
    description: 'A page of audit entries',
    schema: {
      example: {
        items: [
          {
            id: '42',
            at: '2026-11-23T09:00:00.000Z',
            actor: 'ops',
            role: 'admin',
            action: 'dead_letter.replay',
            target: 'dl_0199…',
            details: { jobId: 'dl_0199…-replay' },
          },
        ],
        nextCursor: null,
      },
    },
  })
  @ApiAuthErrors('admin')
  listAudit(@Query() query: unknown) {
    return this.events.listAudit(parseInput(auditQuery, query));
  }

  @Post('dead-letters/:id/replay')
  @HttpCode(202)
  @RequireRole('admin')
  @ApiOperation({ summary: 'Replay an open dead letter (exactly once)' })
  @ApiParam({ name: 'id', description: 'dead letter id (dl_…)' })
  @ApiResponse({
    status: 202,
    description: 'Replay queued',
    schema: {
      example: {
        deadLetterId: 'dl_0199…',
        jobId: 'dl_0199…-replay',
        eventId: 'evt_0199…',
        status: 'REPLAYED',
      },
    },
  })
  @ApiError(404, 'NOT_FOUND', 'dead letter dl_… not found')
  @ApiError(409, 'DEAD_LETTER_NOT_OPEN', 'dead letter dl_… is already REPLAYED')
  @ApiError(410, 'EVENT_PURGED', EVENT_PURGED_MESSAGE)
  @ApiAuthErrors('admin')
  replayDeadLetter(@Param('id') id: string, @Req() req: AuthedRequest) {
    return this.events.replayDeadLetter(id, req.actor);
  }

  @Delete('dead-letters/:id')
  @HttpCode(204)
  @RequireRole('admin')
  @ApiOperation({ summary: 'Discard an open dead letter' })
  @ApiParam({ name: 'id', description: 'dead letter id (dl_…)' })
  @ApiResponse({ status: 204, description: 'Discarded' })
  @ApiError(404, 'NOT_FOUND', 'dead letter dl_… not found')
  @ApiError(409, 'DEAD_LETTER_NOT_OPEN', 'dead letter dl_… is already DISCARDED')
  @ApiAuthErrors('admin')
  async discardDeadLetter(@Param('id') id: string, @Req() req: AuthedRequest): Promise<void> {
    await this.events.discardDeadLetter(id, req.actor);
  }

  @Post('tokens')
  @HttpCode(201)
  @RequireRole('admin')
  @ApiOperation({ summary: 'Create an API token (the token is shown once)' })
  @ApiBody({
    schema: {
      type: 'object',
      required: ['name', 'role'],
      properties: {
        name: { type: 'string', maxLength: 100 },
        role: { type: 'string', enum: ['viewer', 'finance', 'admin'] },
      },
      example: { name: 'dashboard', role: 'viewer' },
    },
  })
  @ApiResponse({
    status: 201,
    description: 'Created; `token` is not shown again',
    schema: { example: { id: 'tok_0199…', name: 'dashboard', role: 'viewer', token: 'clk_…' } },
  })
  @ApiError(
    400,
    'VALIDATION_FAILED',
    'role: Invalid option: expected one of "viewer"|"finance"|"admin"',
  )
  @ApiAuthErrors('admin')
  async createToken(@Body() body: unknown, @Req() req: AuthedRequest) {
    const { name, role } = parseInput(tokenBody, body);
    const created = await this.tokens.create(name, role as 'viewer');
    await this.audit.record(this.prisma, req.actor, 'token.create', created.id, { name, role });
    return created;
  }

  @Get('tokens')
  @RequireRole('admin')
  @ApiOperation({ summary: 'List API tokens (never the tokens themselves)' })
  @ApiResponse({
    status: 200,
    description: 'Tokens',
    schema: { example: { items: [TOKEN_EXAMPLE] } },
  })
  @ApiAuthErrors('admin')
  async listTokens() {
    return { items: await this.tokens.list() };
  }

  @Delete('tokens/:id')
  @HttpCode(204)
  @RequireRole('admin')
  @ApiOperation({ summary: 'Revoke an API token' })
  @ApiParam({ name: 'id', description: 'token id (tok_…)' })
  @ApiResponse({ status: 204, description: 'Revoked' })
  @ApiError(404, 'NOT_FOUND', 'no active token tok_…')
  @ApiAuthErrors('admin')
  async revokeToken(@Param('id') id: string, @Req() req: AuthedRequest): Promise<void> {
    if (!(await this.tokens.revoke(id))) {
      throw new DomainException(404, CommonErrorCode.NotFound, `no active token ${id}`);
    }
    await this.audit.record(this.prisma, req.actor, 'token.revoke', id);
  }
}
