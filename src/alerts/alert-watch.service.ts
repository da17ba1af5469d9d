import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { Clock } from '../common/clock';
import { PeriodicPass } from '../common/periodic-pass';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../prisma/prisma.service';
import { JobName } from '../queue/job-name.enum';
import { providerFor, providerOf } from '../config/providers';
import { AlertService } from './alert.service';
import { AlertInput } from './alert.types';

/**
 * The outbound provider jobs watched for repeated failures, by the provider they call.
 * AlertDeliver is left out on purpose: a failing alert webhook must not alert about itself.
 */
export const WATCHED_PROVIDER_JOBS: Readonly<Partial<Record<JobName, string>>> = {
  [JobName.BillingInvoiceIssue]: providerFor('invoicing').key,
  [JobName.ContractEnvelopeCreate]: providerFor('e-signature').key,
  [JobName.CrmDealSync]: providerFor('crm').key,
  // Several platforms share the report job: the alert names the port.
  [JobName.ReportDeliver]: 'referral-platform',
  // Co-sell referrals are created on Partner Center only.
  [JobName.ReferralCosellCreate]: providerOf('partner-center').key,
};

/** Failed attempts (RETRYING or DEAD) of one job name within the window that make an alert. */
export const PROVIDER_FAILURE_THRESHOLD = 5;
export const PROVIDER_FAILURE_WINDOW_MS = 10 * 60_000;
/** How much of the latest error an alert message quotes. */
const MAX_ERROR_IN_MESSAGE = 300;

/** The dead-letter threshold a backlog of `open` rows has reached: 1, 10, 100, … (0 for none). */
export function deadLetterThreshold(open: number): number {
  if (open < 1) return 0;
  let threshold = 1;
  while (threshold * 10 <= open) threshold *= 10;
  return threshold;
}

/** The UTC hour of `at`, e.g. `2026-11-23T08`: a failing provider alerts at most once an hour. */
export function utcHourBucket(at: Date): string {
  return at.toISOString().slice(0, 13);
}

export interface AlertWatchResult {
  /** Causes of the alerts this pass raised (already raised causes are not repeated). */
  raised: string[];
  /** Names of the checks that failed this pass (logged; the others still ran). */
  failed: string[];
}

/**
 * The worker's alert checks (issue 4): dead letters piling up and providers failing repeatedly.
 * Each check derives a cause that names the situation, not the pass, so running it every
 * LIFECYCLE_TIMER_MS on every worker alerts once per cause:
 * - `dead_letters.growing|>=<threshold>|<oldest open dead letter>`: once per power of ten reached
 *   by one backlog; a new backlog (another oldest row) after the old one was cleared alerts again.
 * - `provider.failing|<provider>|<UTC hour>`: ≥ 5 failed attempts of one provider's job in the
 *   last 10 minutes; while it keeps failing, once an hour.
 * Each raise is its own short transaction, and one failing check does not stop the others.
 * Expiring referrals and overdue reports are raised by their own services through AlertService.
 */
@Injectable()
export class AlertWatchService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly ticker: PeriodicPass;

  constructor(
    private readonly prisma: PrismaService,
    private readonly alerts: AlertService,
    config: AppConfig,
    private readonly logger: PinoLogger,
    clock: Clock,
  ) {
    logger.setContext(AlertWatchService.name);
    this.ticker = new PeriodicPass(
      config.env.LIFECYCLE_TIMER_MS,
      clock,
      (now) => this.runOnce(now),
      (err) => this.logger.warn({ err: err.message }, 'alert checks failed'),
    );
  }

  onApplicationBootstrap(): void {
    this.ticker.start();
  }

  onModuleDestroy(): Promise<void> {
    return this.ticker.stop();
  }

  /** One pass over every check (tests call it with a chosen clock). */
  async runOnce(now: Date): Promise<AlertWatchResult> {
    const result: AlertWatchResult = { raised: [], failed: [] };
    const checks: [string, () => Promise<AlertInput[]>][] = [
      ['dead_letters.growing', () => this.deadLetters()],
      ['provider.failing', () => this.failingProviders(now)],
    ];
    const failed = (check: string, err: unknown, cause?: string) => {
      if (!result.failed.includes(check)) result.failed.push(check);
      this.logger.warn({ check, cause, err: (err as Error).message }, 'alert check failed');
    };
    for (const [name, check] of checks) {
      let inputs: AlertInput[];
      try {
        inputs = await check();
      } catch (err) {
        failed(name, err);
        continue;
      }
      for (const input of inputs) {
        try {
          const raised = await this.prisma.$transaction((tx) =>
            this.alerts.raise(tx, input, `alert-watch-${name}`),
          );
          if (raised) result.raised.push(input.cause);
        } catch (err) {
          failed(name, err, input.cause);
        }
      }
    }
    return result;
  }

  private async deadLetters(): Promise<AlertInput[]> {
    const open = await this.prisma.deadLetter.count({ where: { status: 'OPEN' } });
    const threshold = deadLetterThreshold(open);
    if (threshold === 0) return [];
    const oldest = await this.prisma.deadLetter.findFirst({
      where: { status: 'OPEN' },
      orderBy: [{ createdAt: 'asc' }, { id: 'asc' }],
      select: { id: true, jobName: true, error: true, createdAt: true },
    });
    // Resolved between the two reads: nothing is open any more.
    if (!oldest) return [];
    return [
      {
        kind: 'dead_letters.growing',
        cause: `dead_letters.growing|>=${threshold}|${oldest.id}`,
        message:
          `${open} open dead letter${open === 1 ? '' : 's'} (≥ ${threshold}); the oldest, ` +
          `${oldest.id} (${oldest.jobName}) since ${oldest.createdAt.toISOString()}: ` +
          quote(oldest.error),
        details: {
          open,
          threshold,
          oldestId: oldest.id,
          oldestJobName: oldest.jobName,
          oldestAt: oldest.createdAt.toISOString(),
        },
      },
    ];
  }

  private async failingProviders(now: Date): Promise<AlertInput[]> {
    const since = new Date(now.getTime() - PROVIDER_FAILURE_WINDOW_MS);
    const window = {
      outcome: { in: ['RETRYING' as const, 'DEAD' as const] },
      finishedAt: { gt: since, lte: now },
    };
    const groups = await this.prisma.jobAttempt.groupBy({
      by: ['jobName'],
      where: { ...window, jobName: { in: Object.keys(WATCHED_PROVIDER_JOBS) } },
      _count: { _all: true },
    });
    const inputs: AlertInput[] = [];
    for (const group of groups) {
      const failures = group._count._all;
      if (failures < PROVIDER_FAILURE_THRESHOLD) continue;
      const provider = WATCHED_PROVIDER_JOBS[group.jobName as JobName]!;
      const latest = await this.prisma.jobAttempt.findFirst({
        where: { ...window, jobName: group.jobName },
        orderBy: [{ finishedAt: 'desc' }, { id: 'desc' }],
        select: { error: true, finishedAt: true },
      });
      const hour = utcHourBucket(now);
      inputs.push({
        kind: 'provider.failing',
        cause: `provider.failing|${provider}|${hour}`,
        message:
          `${provider} is failing: ${failures} failed ${group.jobName} attempts in the last ` +
          `${PROVIDER_FAILURE_WINDOW_MS / 60_000} minutes; latest: ${quote(latest?.error ?? null)}`,
        details: {
          provider,
          jobName: group.jobName,
          failures,
          windowMinutes: PROVIDER_FAILURE_WINDOW_MS / 60_000,
          latestError: latest?.error ?? null,
          latestAt: latest?.finishedAt.toISOString() ?? null,
        },
      });
    }
    return inputs;
  }
}

function quote(error: string | null): string {
  if (!error) return '(no error recorded)';
  const flat = error.replace(/\s+/g, ' ').trim();
  return flat.length > MAX_ERROR_IN_MESSAGE ? `${flat.slice(0, MAX_ERROR_IN_MESSAGE)}…` : flat;
}
