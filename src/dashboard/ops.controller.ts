import {
  Controller,
  Get,
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
import { z } from 'zod';

import { EventsService } from '../admin/events.service';
import { pageQuery } from '../admin/pagination';
import { parseInput } from '../admin/parse-query';
import { ReplayPreviewService } from '../admin/replay-preview.service';
import { DomainException } from '../common/domain.exception';
import { AdminErrorCode } from '../admin/admin-error-code';
import { PrismaService } from '../prisma/prisma.service';
import { JobName } from '../queue/job-name.enum';
import { QueueName } from '../queue/queue-name.enum';
import { WEBHOOK_SOURCES } from '../config/providers';
import { DashboardExceptionFilter } from './dashboard.filter';
import { DashboardGuard, DashboardRequest, DashboardRole } from './dashboard.guard';
import { MessageKey } from './i18n/i18n';
import { nonEmpty, page, render } from './page';

export const EVENT_PROVIDERS = WEBHOOK_SOURCES;
export const EVENT_STATUSES = ['RECEIVED', 'PROCESSED', 'IGNORED', 'FAILED', 'DEAD'] as const;
const DEAD_LETTER_STATUSES = ['OPEN', 'REPLAYED', 'DISCARDED'] as const;
const JOB_NAMES = Object.values(JobName) as [JobName, ...JobName[]];
const QUEUE_NAMES = Object.values(QueueName) as [QueueName, ...QueueName[]];

const eventsQuery = pageQuery.extend({
  provider: z.enum(EVENT_PROVIDERS).optional(),
  status: z.enum(EVENT_STATUSES).optional(),
  dealId: z.string().trim().min(1).max(200).optional(),
});
const deadLetterFilter = z.object({
  jobName: z.enum(JOB_NAMES).optional(),
  queue: z.enum(QUEUE_NAMES).optional(),
  /** Only dead letters created before this instant (the bulk form sends the list's read time). */
  before: z.coerce.date().optional(),
});
const deadLettersQuery = pageQuery.merge(deadLetterFilter).extend({
  status: z.enum(DEAD_LETTER_STATUSES).default('OPEN'),
});
const bulkReplayForm = deadLetterFilter.extend({
  limit: z.coerce.number().int().min(1).max(500).default(100),
});
const auditQuery = pageQuery.extend({
  action: z.string().trim().min(1).max(100).optional(),
  actor: z.string().trim().min(1).max(100).optional(),
});

/**
 * Notices shown after an action's redirect (`?notice=…` plus its parameters). Only these names,
 * and parameters of id-like characters, so a crafted link cannot put arbitrary text on a page.
 */
const NOTICES = {
  eventReplayed: { key: 'ops.notice.eventReplayed', params: ['job', 'resolved'] },
  dlReplayed: { key: 'ops.notice.dlReplayed', params: ['id', 'job'] },
  dlDiscarded: { key: 'ops.notice.dlDiscarded', params: ['id'] },
  dlNotOpen: { key: 'ops.notice.dlNotOpen', params: ['id', 'was'] },
  bulk: { key: 'ops.notice.bulk', params: ['replayed', 'skipped'] },
} as const satisfies Record<string, { key: MessageKey; params: readonly string[] }>;
type NoticeName = keyof typeof NOTICES;

function noticeOf(query: Record<string, unknown>) {
  const name = query.notice;
  if (typeof name !== 'string' || !Object.hasOwn(NOTICES, name)) return undefined;
  const def = NOTICES[name as NoticeName];
  const params: Record<string, string> = {};
  for (const p of def.params) {
    const v = query[p];
    params[p] = typeof v === 'string' && /^[\w.:|-]{1,120}$/.test(v) ? v : '?';
  }
  return { key: def.key as MessageKey, params, problem: name === 'dlNotOpen' };
}

function withNotice(path: string, name: NoticeName, params: Record<string, string | number>) {
  const q = new URLSearchParams({ notice: name });
  for (const [k, v] of Object.entries(params)) q.set(k, String(v));
  return `${path}${path.includes('?') ? '&' : '?'}${q.toString()}`;
}

/** The query string of the next page: the current filters plus the cursor. */
function nextQueryOf(filters: Record<string, unknown>, cursor: string | null): string | undefined {
  if (!cursor) return undefined;
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(filters)) {
    if (v !== undefined && v !== null && k !== 'cursor' && k !== 'limit') {
      q.set(k, v instanceof Date ? v.toISOString() : String(v));
    }
  }
  q.set('cursor', cursor);
  return q.toString();
}

const isNotOpen = (err: unknown): err is DomainException =>
  err instanceof DomainException && err.code === AdminErrorCode.DeadLetterNotOpen;

/** Events inbox, dead letters (replay with a dry-run preview, delete, bulk replay), audit log and Bull Board. */
@ApiExcludeController()
@UseGuards(DashboardGuard)
@UseFilters(DashboardExceptionFilter)
@Controller('dashboard')
export class OpsController {
  constructor(
    private readonly events: EventsService,
    private readonly previews: ReplayPreviewService,
    private readonly prisma: PrismaService,
  ) {}

  // ---- events ----------------------------------------------------------------------------------

  @Get('events')
  async eventsPage(
    @Req() req: DashboardRequest,
    @Query() query: Record<string, unknown>,
    @Res() reply: FastifyReply,
  ) {
    const q = parseInput(eventsQuery, nonEmpty(query));
    const readAt = new Date();
    const result = await this.events.list(q);
    const model = page(
      req,
      { title: 'ops.events.title', active: 'events' },
      {
        query: q,
        providers: EVENT_PROVIDERS,
        statuses: EVENT_STATUSES,
        events: result.items,
        nextQuery: nextQueryOf(q, result.nextCursor),
      },
      readAt,
    );
    return render(reply, 'ops-events', model);
  }

  @Get('events/:id')
  async eventPage(
    @Req() req: DashboardRequest,
    @Param('id') id: string,
    @Query() query: Record<string, unknown>,
    @Res() reply: FastifyReply,
  ) {
    const readAt = new Date();
    const event = await this.events.get(id);
    const model = page(
      req,
      { title: 'ops.event.title', titleParams: { id }, active: 'events' },
      { event, notice: noticeOf(query) },
      readAt,
    );
    return render(reply, 'ops-event', model);
  }

  /** The dry run: the event's handler in a rolled-back transaction; nothing is written or sent. */
  @Get('events/:id/replay-preview')
  @DashboardRole('admin')
  async eventPreview(
    @Req() req: DashboardRequest,
    @Param('id') id: string,
    @Res() reply: FastifyReply,
  ) {
    const readAt = new Date();
    const event = await this.events.get(id);
    const preview = await this.previews.forEvent(id);
    const model = page(
      req,
      { title: 'ops.preview.eventTitle', titleParams: { id }, active: 'events' },
      {
        preview,
        event,
        deadLetter: null,
        action: `/dashboard/events/${encodeURIComponent(id)}/replay`,
        back: `/dashboard/events/${encodeURIComponent(id)}`,
      },
      readAt,
    );
    return render(reply, 'ops-preview', model);
  }

  @Post('events/:id/replay')
  @DashboardRole('admin')
  async replayEvent(
    @Req() req: DashboardRequest,
    @Param('id') id: string,
    @Res() reply: FastifyReply,
  ) {
    const result = await this.events.replayEvent(id, req.dashboard!.actor);
    const to = withNotice(`/dashboard/events/${encodeURIComponent(id)}`, 'eventReplayed', {
      job: result.jobId,
      resolved: result.resolvedDeadLetters,
    });
    return reply.redirect(to, 303);
  }

  // ---- dead letters ----------------------------------------------------------------------------

  @Get('dead-letters')
  async deadLettersPage(
    @Req() req: DashboardRequest,
    @Query() query: Record<string, unknown>,
    @Res() reply: FastifyReply,
  ) {
    const q = parseInput(deadLettersQuery, nonEmpty(query));
    const readAt = new Date();
    const result = await this.events.listDeadLetters(q);
    const model = page(
      req,
      { title: 'ops.dl.title', active: 'deadLetters' },
      {
        query: q,
        statuses: DEAD_LETTER_STATUSES,
        jobNames: JOB_NAMES,
        queues: QUEUE_NAMES,
        deadLetters: result.items,
        nextQuery: nextQueryOf(q, result.nextCursor),
        notice: noticeOf(query),
        // The bulk form replays what was OPEN when this page was read, never what arrives later.
        bulkBefore: (q.before && q.before < readAt ? q.before : readAt).toISOString(),
      },
      readAt,
    );
    return render(reply, 'ops-dead-letters', model);
  }

  @Get('dead-letters/:id/replay-preview')
  @DashboardRole('admin')
  async deadLetterPreview(
    @Req() req: DashboardRequest,
    @Param('id') id: string,
    @Res() reply: FastifyReply,
  ) {
    const readAt = new Date();
    const preview = await this.previews.forDeadLetter(id);
    const deadLetter = await this.deadLetter(id);
    const model = page(
      req,
      { title: 'ops.preview.dlTitle', titleParams: { id }, active: 'deadLetters' },
      {
        preview,
        event: null,
        deadLetter,
        action: `/dashboard/dead-letters/${encodeURIComponent(id)}/replay`,
        back: '/dashboard/dead-letters',
      },
      readAt,
    );
    return render(reply, 'ops-preview', model);
  }

  @Post('dead-letters/replay')
  @DashboardRole('admin')
  async bulkReplay(@Req() req: DashboardRequest, @Res() reply: FastifyReply) {
    const body = nonEmpty((req.body ?? {}) as Record<string, unknown>);
    delete body._csrf;
    const filter = parseInput(bulkReplayForm, body);
    const { replayed, skipped } = await this.events.replayDeadLetters(filter, req.dashboard!.actor);
    const back = new URLSearchParams();
    if (filter.jobName) back.set('jobName', filter.jobName);
    if (filter.queue) back.set('queue', filter.queue);
    const path = `/dashboard/dead-letters${back.size ? `?${back.toString()}` : ''}`;
    return reply.redirect(
      withNotice(path, 'bulk', { replayed: replayed.length, skipped: skipped.length }),
      303,
    );
  }

  @Post('dead-letters/:id/replay')
  @DashboardRole('admin')
  async replayDeadLetter(
    @Req() req: DashboardRequest,
    @Param('id') id: string,
    @Res() reply: FastifyReply,
  ) {
    try {
      const result = await this.events.replayDeadLetter(id, req.dashboard!.actor);
      return reply.redirect(
        withNotice('/dashboard/dead-letters', 'dlReplayed', { id, job: result.jobId }),
        303,
      );
    } catch (err) {
      if (!isNotOpen(err)) throw err;
      return this.notOpen(reply, id);
    }
  }

  @Post('dead-letters/:id/delete')
  @DashboardRole('admin')
  async deleteDeadLetter(
    @Req() req: DashboardRequest,
    @Param('id') id: string,
    @Res() reply: FastifyReply,
  ) {
    try {
      await this.events.discardDeadLetter(id, req.dashboard!.actor);
      return reply.redirect(withNotice('/dashboard/dead-letters', 'dlDiscarded', { id }), 303);
    } catch (err) {
      if (!isNotOpen(err)) throw err;
      return this.notOpen(reply, id);
    }
  }

  /** Someone (or an earlier click) already replayed or deleted it: say so; nothing was queued. */
  private async notOpen(reply: FastifyReply, id: string) {
    const dl = await this.deadLetter(id);
    const to = withNotice(`/dashboard/dead-letters?status=${dl?.status ?? 'OPEN'}`, 'dlNotOpen', {
      id,
      was: dl?.status ?? '?',
    });
    return reply.redirect(to, 303);
  }

  /** One dead letter in any status, with its event as the list shows it. */
  private deadLetter(id: string) {
    return this.prisma.deadLetter.findUnique({
      where: { id },
      include: {
        event: { select: { provider: true, type: true, providerEventId: true, dealId: true } },
      },
    });
  }

  // ---- audit -----------------------------------------------------------------------------------

  @Get('audit')
  @DashboardRole('admin')
  async auditPage(
    @Req() req: DashboardRequest,
    @Query() query: Record<string, unknown>,
    @Res() reply: FastifyReply,
  ) {
    const q = parseInput(auditQuery, nonEmpty(query));
    const readAt = new Date();
    const result = await this.events.listAudit(q);
    const model = page(
      req,
      { title: 'ops.audit.title', active: 'audit' },
      { query: q, entries: result.items, nextQuery: nextQueryOf(q, result.nextCursor) },
      readAt,
    );
    return render(reply, 'ops-audit', model);
  }
}
