import { PinoLogger } from 'nestjs-pino';

import { classifyError, errorMessage } from '../common/errors';
import { newId } from '../common/ids';
import { AppConfig } from '../config/app-config';
import { fullJitterDelay } from '../queue/backoff';
import { JobName } from '../queue/job-name.enum';
import { QueueName } from '../queue/queue-name.enum';
import { eventJobId } from './event-lane';
import { Done, Failed, RunContext, Tx } from './event-pipeline.types';

/**
 * What the event pipeline records of its events: a lane transaction's outcomes (event rows,
 * attempt rows, retries as outbox rows, dead letters), events isolated from a dying batch or
 * lane, and a single-event job's infrastructure failure.
 */
export class EventOutcomes {
  constructor(
    private readonly config: AppConfig,
    private readonly logger: PinoLogger,
  ) {}

  /**
   * Writes a lane transaction's outcomes: event rows, attempt rows, and for each failure either
   * its retry (an outbox row that waits in Postgres until its backoff is over) or, on a permanent
   * error or the last attempt, DEAD and its dead letter.
   */
  async write(
    tx: Tx,
    lane: string,
    done: Done[],
    failed: Failed[],
    run: RunContext,
  ): Promise<void> {
    const maxAttempts = this.config.env.JOB_ATTEMPTS;
    const rows: {
      id: string;
      status: string;
      deal: string | null;
      norm: string | null;
      err: string | null;
    }[] = done.map((d) => ({
      id: d.row.id,
      status: d.status,
      deal: d.dealId,
      norm: d.normalized ? JSON.stringify(d.normalized) : null,
      err: d.reason,
    }));
    const attempts: {
      eventId: string;
      attempt: number;
      outcome: string;
      error: string | null;
      ms: number;
      deal: string | null;
    }[] = done.map((d) => ({
      eventId: d.row.id,
      attempt: d.row.attempts,
      outcome: d.status === 'PROCESSED' ? 'SUCCEEDED' : 'IGNORED',
      error: d.reason,
      ms: d.durationMs,
      deal: d.dealId,
    }));
    const letters: {
      id: string;
      eventId: string;
      jobId: string;
      data: string;
      reason: string;
      error: string;
      attempts: number;
    }[] = [];
    const retries: { jobId: string; data: string; delayMs: number }[] = [];
    for (const f of failed) {
      const error = errorMessage(f.error);
      const permanent = classifyError(f.error) === 'permanent';
      const final = permanent || f.row.attempts - f.row.attempt_base >= maxAttempts;
      rows.push({
        id: f.row.id,
        status: final ? 'DEAD' : 'FAILED',
        deal: null,
        norm: f.normalized ? JSON.stringify(f.normalized) : null,
        err: error,
      });
      attempts.push({
        eventId: f.row.id,
        attempt: f.row.attempts,
        outcome: final ? 'DEAD' : 'RETRYING',
        error,
        ms: f.durationMs,
        deal: null,
      });
      const data = JSON.stringify({ eventId: f.row.id, correlationId: f.row.correlation_id });
      if (final) {
        letters.push({
          id: newId('dl'),
          eventId: f.row.id,
          // A job of one event parks under its own id; a lane's, under the event's.
          jobId: run.single ? run.jobId : eventJobId(f.row),
          data,
          reason: permanent ? 'PERMANENT' : 'EXHAUSTED',
          error,
          attempts: f.row.attempts,
        });
      } else {
        retries.push({
          jobId: eventJobId(f.row),
          data,
          delayMs: fullJitterDelay(f.row.attempts - f.row.attempt_base, f.error, {
            baseMs: this.config.env.JOB_BACKOFF_BASE_MS,
            maxMs: this.config.env.JOB_BACKOFF_MAX_MS,
          }),
        });
      }
      this.logger.warn(
        { correlationId: f.row.correlation_id, eventId: f.row.id, lane, final, err: error },
        'event failed',
      );
    }
    // Every outcome has its event row and its attempt row: both written by one statement.
    if (rows.length > 0) {
      await tx.$executeRaw`
        WITH events AS (
          UPDATE webhook_event e
             SET status = v.status::"EventStatus", deal_id = v.deal_id,
                 normalized = v.normalized::jsonb, last_error = v.err
            FROM unnest(${rows.map((r) => r.id)}::text[], ${rows.map((r) => r.status)}::text[],
                        ${rows.map((r) => r.deal)}::text[], ${rows.map((r) => r.norm)}::text[],
                        ${rows.map((r) => r.err)}::text[])
                 AS v(id, status, deal_id, normalized, err)
           WHERE e.id = v.id)
        INSERT INTO job_attempt (event_id, queue, job_name, job_id, attempt, outcome, error,
                                 duration_ms, deal_id)
        SELECT v.event_id, ${QueueName.Webhooks}, ${run.jobName}, ${run.jobId}, v.attempt,
               v.outcome::"JobOutcome", v.error, v.ms, v.deal_id
          FROM unnest(${attempts.map((a) => a.eventId)}::text[], ${attempts.map((a) => a.attempt)}::int[],
                      ${attempts.map((a) => a.outcome)}::text[], ${attempts.map((a) => a.error)}::text[],
                      ${attempts.map((a) => a.ms)}::int[], ${attempts.map((a) => a.deal)}::text[])
               AS v(event_id, attempt, outcome, error, ms, deal_id)`;
    }
    if (letters.length > 0) {
      await tx.$executeRaw`
        INSERT INTO dead_letter (id, event_id, queue, job_name, job_id, data, reason, error, attempts)
        SELECT v.id, v.event_id, ${QueueName.Webhooks}, ${JobName.WebhookEventProcess}, v.job_id,
               v.data::jsonb, v.reason, v.error, v.attempts
          FROM unnest(${letters.map((l) => l.id)}::text[], ${letters.map((l) => l.eventId)}::text[],
                      ${letters.map((l) => l.jobId)}::text[], ${letters.map((l) => l.data)}::text[],
                      ${letters.map((l) => l.reason)}::text[], ${letters.map((l) => l.error)}::text[],
                      ${letters.map((l) => l.attempts)}::int[])
               AS v(id, event_id, job_id, data, reason, error, attempts)
        ON CONFLICT (job_id) DO NOTHING`;
    }
    if (retries.length > 0) {
      await tx.$executeRaw`
        INSERT INTO outbox (queue, job_name, job_id, data, available_at)
        SELECT ${QueueName.Webhooks}, ${JobName.WebhookEventProcess}, v.job_id, v.data::jsonb,
               now() + make_interval(secs => v.delay_ms / 1000.0)
          FROM unnest(${retries.map((r) => r.jobId)}::text[], ${retries.map((r) => r.data)}::text[],
                      ${retries.map((r) => r.delayMs)}::int[])
               AS v(job_id, data, delay_ms)`;
    }
  }

  /**
   * Work whose worker keeps dying mid-job (a poison event): its events still waiting — a batch's,
   * or the next LANE_BATCH of a lane — leave their lanes as FAILED and are retried one by one as
   * single-event jobs, so only the culprit keeps failing (and is parked after BullMQ's stalled
   * limit) while the rest of the lane flows again.
   */
  async isolate(tx: Tx, of: { eventIds: string[] } | { lane: string }): Promise<void> {
    const note = 'its worker died mid-batch: retried on its own';
    const rows =
      'lane' in of
        ? await tx.$queryRaw<
            { id: string; attempts: number; replay_count: number; correlation_id: string }[]
          >`
            UPDATE webhook_event SET status = 'FAILED', last_error = ${note}
            WHERE id IN (SELECT id FROM webhook_event
                          WHERE subject_key = ${of.lane} AND status = 'RECEIVED'
                          ORDER BY id LIMIT ${this.config.env.LANE_BATCH})
            RETURNING id, attempts, replay_count, correlation_id`
        : await tx.$queryRaw<
            { id: string; attempts: number; replay_count: number; correlation_id: string }[]
          >`
            UPDATE webhook_event SET status = 'FAILED', last_error = ${note}
            WHERE id = ANY(${of.eventIds}::text[]) AND status = 'RECEIVED'
            RETURNING id, attempts, replay_count, correlation_id`;
    if (rows.length === 0) return;
    await tx.$executeRaw`
      INSERT INTO outbox (queue, job_name, job_id, data)
      SELECT ${QueueName.Webhooks}, ${JobName.WebhookEventProcess}, v.job_id, v.data::jsonb
        FROM unnest(${rows.map((r) => eventJobId(r))}::text[],
                    ${rows.map((r) => JSON.stringify({ eventId: r.id, correlationId: r.correlation_id }))}::text[])
             AS v(job_id, data)`;
  }

  /** Marks an event FAILED/DEAD after its single-event job gave up on an infrastructure error. */
  async markJobFailure(eventId: string, final: boolean, error: string, tx: Tx): Promise<void> {
    await tx.$executeRaw`
      UPDATE webhook_event SET status = ${final ? 'DEAD' : 'FAILED'}::"EventStatus",
             attempts = attempts + 1, last_error = ${error}
      WHERE id = ${eventId} AND status IN ('RECEIVED', 'FAILED')`;
  }
}
