import { Injectable, OnApplicationBootstrap, OnModuleDestroy } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { Clock } from '../common/clock';
import { PeriodicPass } from '../common/periodic-pass';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../prisma/prisma.service';
import { LifecycleService } from './lifecycle.service';
import { ReferralService } from './referral.service';

/**
 * The worker's clock: silent approvals whose window passed, monthly items whose billing date
 * came (in the deal's time zone) and referrals whose response clock runs out. Every worker runs it; each action re-checks its condition under
 * the deal's row lock and billing keys are unique, so a timer fires once however many workers
 * look, and a restart simply looks again.
 */
@Injectable()
export class LifecycleTimerService implements OnApplicationBootstrap, OnModuleDestroy {
  private readonly ticker: PeriodicPass;

  constructor(
    private readonly prisma: PrismaService,
    private readonly lifecycle: LifecycleService,
    private readonly referrals: ReferralService,
    config: AppConfig,
    private readonly logger: PinoLogger,
    clock: Clock,
  ) {
    logger.setContext(LifecycleTimerService.name);
    this.ticker = new PeriodicPass(
      config.env.LIFECYCLE_TIMER_MS,
      clock,
      (now) => this.runOnce(now),
      (err) => this.logger.warn({ err: err.message }, 'lifecycle timers failed'),
    );
  }

  onApplicationBootstrap(): void {
    this.ticker.start();
  }

  onModuleDestroy(): Promise<void> {
    return this.ticker.stop();
  }

  /** One pass over the due timers; returns what it did (tests call it with a chosen clock). */
  async runOnce(now: Date): Promise<{
    silentApprovals: number;
    invoices: string[];
    referrals: { expired: number; warned: number };
  }> {
    const due = await this.prisma.billingItem.findMany({
      where: {
        silentApproval: true,
        acceptedAt: null,
        removed: false,
        acceptanceDueAt: { lte: now },
      },
      select: { id: true, dealId: true },
      take: 500,
    });
    let silentApprovals = 0;
    // One deal's failure (e.g. a lock timeout) must not hold back the others: it is retried next pass.
    const each = async <T>(dealId: string, work: () => Promise<T>): Promise<T | undefined> =>
      work().catch((err: Error) => {
        this.logger.warn({ dealId, err: err.message }, 'lifecycle timer failed for a deal');
        return undefined;
      });
    for (const item of due) {
      if (await each(item.dealId, () => this.lifecycle.silentApprove(item.dealId, item.id, now)))
        silentApprovals++;
    }
    // Only monthly items whose next billing instant has come (indexed next_due_at), of deals that
    // bill: never a scan of every monthly deal ever made. Billing records the next instant.
    const monthly = await this.prisma.$queryRaw<{ dealId: string }[]>`
      SELECT DISTINCT i.deal_id AS "dealId" FROM billing_item i JOIN deal d ON d.id = i.deal_id
       WHERE i.next_due_at <= ${now} AND i.trigger = 'monthly' AND NOT i.removed
         AND d.stage IN ('WON', 'DELIVERED', 'CLOSED')
       LIMIT 500`;
    const invoices: string[] = [];
    for (const { dealId } of monthly) {
      invoices.push(...((await each(dealId, () => this.lifecycle.billDue(dealId, now))) ?? []));
    }
    const referrals = await this.referrals.runClocks(now);
    if (silentApprovals > 0 || invoices.length > 0 || referrals.expired > 0) {
      this.logger.info(
        { silentApprovals, invoices: invoices.length, expiredReferrals: referrals.expired },
        'lifecycle timers fired',
      );
    }
    return { silentApprovals, invoices, referrals };
  }
}
