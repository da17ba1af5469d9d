import { Injectable } from '@nestjs/common';
import { Job } from 'bullmq';

import { PermanentError } from '../common/errors';
import { AppConfig, WebhookSource } from '../config/app-config';
import { HubspotClient } from '../connectors/hubspot/hubspot.client';
import { PartnerCenterClient } from '../connectors/partner-center/partner-center.client';
import { Prisma } from '../generated/prisma/client';
import { MetricsService } from '../health/metrics.service';
import {
  DryRunRollback,
  EventEffects,
  LifecycleService,
  RunOptions,
} from '../lifecycle/lifecycle.service';
import { ReferralService } from '../lifecycle/referral.service';
import { PrismaService } from '../prisma/prisma.service';
import {
  JobFailure,
  JobHandler,
  JobHandlerInterface,
  JobOutcomeKind,
} from '../queue/job-handler.decorator';
import { WebhookEventProcessData } from '../queue/job-data.types';
import { JobName } from '../queue/job-name.enum';
import { SerializationLockService } from '../queue/serialization-lock.service';
import { WebhookProviders } from './webhook-providers';
import { subjectKey } from './webhook.types';

/** Statuses a run may still change; PROCESSED / IGNORED / DEAD are final until an admin replays. */
const OPEN_STATUSES = ['RECEIVED', 'FAILED'] as const;

interface StoredEvent {
  provider: string;
  type: string;
  status: string;
  payload: unknown;
  received_at: Date;
}

const LOAD_EVENT = {
  name: 'webhook_event_load',
  text: 'SELECT provider, type, status, payload, received_at FROM webhook_event WHERE id = $1',
};
const MARK_IGNORED = {
  name: 'webhook_event_ignored',
  text: `UPDATE webhook_event SET status = 'IGNORED', processed_at = now(), attempts = attempts + 1,
           last_error = NULL
         WHERE id = $1 AND status IN ('RECEIVED', 'FAILED')`,
};
const MARK_PROCESSED = {
  name: 'webhook_event_processed',
  text: `UPDATE webhook_event SET status = 'PROCESSED', processed_at = now(), attempts = attempts + 1,
           normalized = $2::jsonb, subject_key = $3, deal_id = $4, last_error = NULL
         WHERE id = $1 AND status IN ('RECEIVED', 'FAILED')`,
};

/**
 * Processes one stored webhook event: normalise it into the hub's internal shape and, under the
 * subject's serialization lock, record the outcome. Idempotent: a second run of a finished event
 * changes nothing. Events the lifecycle uses are applied by LifecycleService in the transaction
 * that marks them PROCESSED; the rest are only recorded.
 */
@Injectable()
@JobHandler(JobName.WebhookEventProcess)
export class WebhookEventHandler implements JobHandlerInterface<WebhookEventProcessData> {
  constructor(
    private readonly prisma: PrismaService,
    private readonly providers: WebhookProviders,
    private readonly lock: SerializationLockService,
    private readonly metrics: MetricsService,
    private readonly lifecycle: LifecycleService,
    private readonly hubspot: HubspotClient,
    private readonly referrals: ReferralService,
    private readonly partnerCenter: PartnerCenterClient,
    private readonly config: AppConfig,
  ) {}

  handle(job: Job<WebhookEventProcessData>): Promise<JobOutcomeKind> {
    return this.process(job.data.eventId, job.data.correlationId);
  }

  /**
   * What replaying a stored event would do — deal, transitions, invoices owed, reports, jobs —
   * found by running the same path as a replay in a transaction that is then rolled back. Remote
   * reads (the HubSpot deal, the Partner Center referral) are made; nothing is written or sent.
   */
  async dryRun(eventId: string): Promise<EventEffects> {
    try {
      await this.process(eventId, `dry-run-${eventId}`, { dryRun: true });
    } catch (err) {
      if (err instanceof DryRunRollback) return err.effects;
      // The replay would fail again, as the event did: say why (a missing event is still a 404).
      if (err instanceof PermanentError && /does not exist$/.test(err.message)) throw err;
      return { ...noEffects('FAILED', null), error: (err as Error).message };
    }
    throw new Error(`dry run of ${eventId} finished without rolling back`);
  }

  private async process(
    eventId: string,
    correlationId: string,
    opts: RunOptions = {},
  ): Promise<JobOutcomeKind> {
    // The hot path (one run per event) uses prepared SQL on Prisma's pool: the profile of the
    // worker under load showed Prisma's query compilation as its largest cost (ADR 0001).
    const { rows } = await this.prisma.pool.query<StoredEvent>({
      ...LOAD_EVENT,
      values: [eventId],
    });
    const event = rows[0];
    if (!event) throw new PermanentError(`event ${eventId} does not exist`);
    if (!opts.dryRun && !(OPEN_STATUSES as readonly string[]).includes(event.status))
      return 'SKIPPED';

    const normalized = this.providers
      .get(event.provider as WebhookSource)
      .normalize(event.type, event.payload);
    if (!normalized) {
      if (opts.dryRun) throw recordedOnly('IGNORED', `${event.type} is not used by the hub`);
      const { rowCount } = await this.prisma.pool.query({ ...MARK_IGNORED, values: [eventId] });
      return rowCount === 1 ? 'IGNORED' : 'SKIPPED';
    }
    const key = subjectKey(normalized.subject) ?? `event:${eventId}`;
    if (this.referrals.handles(normalized.kind)) {
      // Partner Center's webhook is thin: the referral is read from its API (never from the host
      // the webhook names) before any lock or transaction.
      const snapshot =
        normalized.source === 'partner-center' && normalized.subject.referralId
          ? await this.partnerCenter.getReferral(normalized.subject.referralId)
          : undefined;
      const outcome = await this.lock.withLock(key, () =>
        this.referrals.applyEvent(eventId, normalized, key, correlationId, snapshot, opts),
      );
      if (outcome === 'SUCCEEDED') this.metrics.eventProcessed(event.provider, event.received_at);
      return outcome;
    }
    if (this.lifecycle.handles(normalized.kind)) {
      const echoOf = opts.dryRun ? undefined : await this.lifecycle.stripeEcho(normalized);
      if (echoOf) {
        const { rowCount } = await this.prisma.pool.query({
          ...MARK_PROCESSED,
          values: [eventId, JSON.stringify(normalized), key, echoOf],
        });
        if (rowCount === 0) return 'SKIPPED';
        this.metrics.eventProcessed(event.provider, event.received_at);
        return 'SUCCEEDED';
      }
      // Remote reads happen before any lock or transaction (HubSpot: the deal as it is now).
      const snapshot =
        (normalized.kind === 'crm.deal_created' || normalized.kind === 'crm.deal_stage_changed') &&
        this.config.hubspotConfigured &&
        normalized.subject.crmDealId
          ? await this.hubspot.getDeal(normalized.subject.crmDealId)
          : undefined;
      const outcome = await this.lock.withLock(key, () =>
        this.lifecycle.applyEvent(eventId, normalized, key, correlationId, snapshot, opts),
      );
      if (outcome === 'SUCCEEDED') this.metrics.eventProcessed(event.provider, event.received_at);
      return outcome;
    }
    if (opts.dryRun) throw recordedOnly('SUCCEEDED', null);
    return this.lock.withLock(key, async () => {
      const { rowCount } = await this.prisma.pool.query({
        ...MARK_PROCESSED,
        values: [eventId, JSON.stringify(normalized), key, normalized.subject.dealId ?? null],
      });
      if (rowCount === 0) return 'SKIPPED';
      this.metrics.eventProcessed(event.provider, event.received_at);
      return 'SUCCEEDED';
    });
  }

  async onFailure(
    job: Job<WebhookEventProcessData>,
    failure: JobFailure,
    tx: Prisma.TransactionClient,
  ) {
    await tx.webhookEvent.updateMany({
      where: { id: job.data.eventId, status: { in: [...OPEN_STATUSES] } },
      data: {
        status: failure.final ? 'DEAD' : 'FAILED',
        attempts: { increment: 1 },
        lastError: failure.error,
      },
    });
  }
}

function noEffects(outcome: EventEffects['outcome'], ignored: string | null): EventEffects {
  return {
    outcome,
    error: null,
    dealId: null,
    ignored,
    timeline: [],
    invoices: [],
    reports: [],
    jobs: [],
  };
}

/** A dry run of an event the hub only records (nothing else would happen). */
function recordedOnly(outcome: JobOutcomeKind, ignored: string | null): DryRunRollback {
  return new DryRunRollback(noEffects(outcome, ignored));
}
