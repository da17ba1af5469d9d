import { HttpStatus, Injectable } from '@nestjs/common';
import { z } from 'zod';

import { Clock } from '../common/clock';
import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';
import { transition } from '../domain/deal-stage';
import { LifecycleContext, LifecycleService } from '../lifecycle/lifecycle.service';
import { PrismaService } from '../prisma/prisma.service';
import { ReportService } from '../reporting/report.service';
import { addTimeline } from '../timeline/timeline';
import { AdminErrorCode } from './admin-error-code';
import { AuditService } from './audit.service';
import { DealQueries } from './deal-queries';
import { Actor } from './tokens.service';
import { AppConfig } from '../config/app-config';

export const lossDecisionBody = z.strictObject({
  note: z.string().trim().min(1).max(2000).optional(),
});
export type LossDecisionBody = z.output<typeof lossDecisionBody>;

const TX_OPTIONS = { timeout: 30_000, maxWait: 10_000 };

/**
 * A loss proposed from the manual queue (PRONI まだ未定 → 失注, ReportsService.postpone), decided by
 * a person (finance or admin, CONTRACT §6): confirming records a `loss.confirmed` stage trigger,
 * so the fold moves the deal to LOST (from any open stage, and from WON while the deal has no
 * invoice) and the lost report follows through the normal path; dismissing withdraws the proposal
 * and the postponed tasks are owed again. Each is one transaction with the deal locked, audited
 * and on the deal's timeline; 409 when nothing is proposed or the loss is refused (nothing changes).
 */
@Injectable()
export class DealLossService {
  private readonly queries: DealQueries;

  constructor(
    private readonly prisma: PrismaService,
    private readonly lifecycle: LifecycleService,
    private readonly reports: ReportService,
    private readonly audit: AuditService,
    private readonly clock: Clock,
    config: AppConfig,
  ) {
    this.queries = new DealQueries(prisma, config);
  }

  confirm(id: string, body: LossDecisionBody, actor: Actor | undefined, correlationId: string) {
    return this.decide(id, 'confirm', body, actor, correlationId);
  }

  dismiss(id: string, body: LossDecisionBody, actor: Actor | undefined, correlationId: string) {
    return this.decide(id, 'dismiss', body, actor, correlationId);
  }

  private async decide(
    id: string,
    decision: 'confirm' | 'dismiss',
    body: LossDecisionBody,
    actor: Actor | undefined,
    correlationId: string,
  ) {
    return this.prisma.$transaction(async (tx) => {
      const exists = await tx.deal.findUnique({ where: { id }, select: { id: true } });
      if (!exists) {
        throw new DomainException(
          HttpStatus.NOT_FOUND,
          CommonErrorCode.NotFound,
          `deal ${id} not found`,
        );
      }
      const deal = await this.lifecycle.lockDeal(tx, id);
      if (!deal.lossProposedAt) {
        throw new DomainException(
          HttpStatus.CONFLICT,
          AdminErrorCode.NoLossProposed,
          `deal ${id} (${deal.stage}) has no proposed loss to ${decision}: a loss is proposed by postponing one of its manual reports with reason lost (まだ未定: 失注)`,
        );
      }
      const now = this.clock.now();
      const cause = `admin ${actor?.name ?? 'system'}`;
      const ctx: LifecycleContext = { cause, correlationId, now };
      const proposal = { proposedAt: deal.lossProposedAt, reason: deal.lossProposal };
      const from = deal.stage;
      let to = deal.stage;
      let closed: string[] = [];
      let reopened: string[] = [];
      if (decision === 'confirm') {
        const invoice = await tx.invoice.findFirst({
          where: { dealId: id, state: { not: 'VOID' } },
          orderBy: { createdAt: 'asc' },
          select: { billingKey: true, invoiceNumber: true, state: true },
        });
        const outcome = transition(deal.stage, { type: 'loss.confirmed', invoiced: !!invoice });
        if (outcome.kind === 'refuse') {
          throw new DomainException(
            HttpStatus.CONFLICT,
            AdminErrorCode.LossRefused,
            `deal ${id}: the loss cannot be confirmed: ${outcome.reason}${invoice ? ` (invoice ${invoice.invoiceNumber ?? invoice.billingKey} is ${invoice.state})` : ''}`,
          );
        }
        const settled = await this.lifecycle.settle(tx, id, ctx, {
          locked: deal,
          add: { trigger: { type: 'loss.confirmed' }, at: now },
        });
        to = settled.stage;
        if (to === 'LOST') closed = await this.reports.lossConfirmed(tx, settled, ctx);
      } else {
        reopened = await this.reports.lossDismissed(tx, deal, now);
      }
      await tx.deal.update({
        where: { id },
        data: { lossProposedAt: null, lossProposal: null, version: { increment: 1 } },
      });
      const details = {
        proposedAt: proposal.proposedAt.toISOString(),
        proposal: proposal.reason,
        from,
        to,
        ...(closed.length > 0 ? { reportsClosed: closed } : {}),
        ...(reopened.length > 0 ? { reportsOwedAgain: reopened } : {}),
        ...(body.note !== undefined ? { note: body.note } : {}),
      };
      await addTimeline(tx, {
        dealId: id,
        kind: 'admin',
        message:
          decision === 'confirm'
            ? `proposed loss confirmed (${proposal.reason ?? 'まだ未定: 失注'}): ${from === to ? `the deal already was ${to}` : `${from} → ${to}`}`
            : `proposed loss dismissed (${proposal.reason ?? 'まだ未定: 失注'})${reopened.length > 0 ? `: ${reopened.length} postponed report(s) owed again` : ''}`,
        cause,
        details,
      });
      await this.audit.record(tx, actor, `deal.loss.${decision}`, id, details);
      return this.queries.detail(tx, id);
    }, TX_OPTIONS);
  }
}
