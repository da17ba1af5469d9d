import { HttpStatus, Injectable } from '@nestjs/common';

import { formatMoney } from '../domain/money';
import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';
import { EventEffects } from '../webhooks/event-effects';
import { dbAmount } from '../prisma/db-amount';
import { PrismaService } from '../prisma/prisma.service';
import { JobName } from '../queue/job-name.enum';
import { eventPurged } from './purged-event';
import { WebhookEventHandler } from '../webhooks/webhook-event.handler';

/** What a replay would do, shown before anything is sent (the dashboard's dry run). */
export interface ReplayPreview {
  /** `event`: the event's handler ran and was rolled back; `job`: the job's current target read. */
  basis: 'event' | 'job';
  eventId: string | null;
  deadLetterId: string | null;
  jobName: string;
  /** One line per effect, in the order they would happen. */
  summary: string[];
  effects: EventEffects | null;
}

const notFound = (what: string, id: string) =>
  new DomainException(HttpStatus.NOT_FOUND, CommonErrorCode.NotFound, `${what} ${id} not found`);

/**
 * Replay previews. An event is previewed by running the production handler in a transaction that
 * is rolled back (LifecycleService.runEvent's dry run): the preview is what the replay would do
 * now, not a guess. A dead letter of another job is previewed from the row the job works on —
 * its idempotency (billing key, report id, one envelope per deal) decides what a replay can do.
 */
@Injectable()
export class ReplayPreviewService {
  constructor(
    private readonly prisma: PrismaService,
    private readonly events: WebhookEventHandler,
  ) {}

  async forEvent(eventId: string, deadLetterId: string | null = null): Promise<ReplayPreview> {
    const event = await this.prisma.webhookEvent.findUnique({
      where: { id: eventId },
      select: { id: true, receivedAt: true, purgedAt: true },
    });
    if (!event) throw notFound('event', eventId);
    // Nothing left to run (RETENTION_DAYS purged the payload): the replay would be refused too.
    if (event.purgedAt) throw eventPurged({ ...event, purgedAt: event.purgedAt });
    const effects = await this.events.dryRun(eventId);
    return {
      basis: 'event',
      eventId,
      deadLetterId,
      jobName: JobName.WebhookEventProcess,
      summary: summarise(effects),
      effects,
    };
  }

  async forDeadLetter(id: string): Promise<ReplayPreview> {
    const dl = await this.prisma.deadLetter.findUnique({ where: { id } });
    if (!dl) throw notFound('dead letter', id);
    if (dl.eventId) return this.forEvent(dl.eventId, id);
    const data = dl.data as Record<string, string | undefined>;
    const base = { basis: 'job' as const, eventId: null, deadLetterId: id, jobName: dl.jobName };
    switch (dl.jobName as JobName) {
      case JobName.BillingInvoiceIssue: {
        const inv = await this.prisma.invoice.findUnique({
          where: { billingKey: data.billingKey ?? '' },
        });
        if (!inv)
          return {
            ...base,
            summary: [`billing key ${data.billingKey} no longer exists`],
            effects: null,
          };
        const open = ['PENDING', 'CREATING', 'CREATED'].includes(inv.state);
        return {
          ...base,
          summary: open
            ? [
                `${inv.providerInvoiceId ? `finish Stripe invoice ${inv.providerInvoiceId}` : 'create the Stripe invoice'} for ${inv.billingKey}: ${formatMoney(dbAmount(inv.amount), inv.currency)} + tax ${formatMoney(dbAmount(inv.taxAmount), inv.currency)}, then finalize and send it`,
                inv.issueAttempts > 0
                  ? `an earlier attempt may have reached Stripe: it is looked up by closeloop_billing_key first (no second invoice)`
                  : 'no earlier attempt reached Stripe',
              ]
            : [`nothing: invoice ${inv.invoiceNumber ?? inv.billingKey} is already ${inv.state}`],
          effects: null,
        };
      }
      case JobName.ReportDeliver: {
        const report = await this.prisma.report.findUnique({ where: { id: data.reportId ?? '' } });
        if (!report)
          return { ...base, summary: [`report ${data.reportId} no longer exists`], effects: null };
        const deliverable = ['PENDING', 'FAILED', 'DEAD'].includes(report.status);
        return {
          ...base,
          summary: deliverable
            ? [
                `send the ${report.kind} report ${report.id} to ${report.platform} (${report.channel})` +
                  (report.amountExTax !== null
                    ? `, amount excl. tax ${dbAmount(report.amountExTax)}`
                    : ''),
              ]
            : [`nothing: report ${report.id} is already ${report.status}`],
          effects: null,
        };
      }
      case JobName.ContractEnvelopeCreate: {
        const contract = await this.prisma.contract.findUnique({
          where: { dealId: data.dealId ?? '' },
        });
        return {
          ...base,
          summary:
            contract && contract.envelopeId
              ? [`nothing: the deal already has envelope ${contract.envelopeId}`]
              : [`create the deal's one DocuSign envelope from the template (deal ${data.dealId})`],
          effects: null,
        };
      }
      case JobName.ReferralCosellCreate: {
        const deal = await this.prisma.deal.findUnique({
          where: { id: data.dealId ?? '' },
          select: { crmDealId: true, referralPlatform: true, referralId: true },
        });
        return {
          ...base,
          summary: !deal
            ? [`deal ${data.dealId} no longer exists`]
            : deal.referralId
              ? [
                  `nothing: the deal already has referral ${deal.referralPlatform} ${deal.referralId}`,
                ]
              : [
                  `create the deal's co-sell referral on Partner Center from CRM deal ${deal.crmDealId} as it is now`,
                  'an earlier attempt may have created it: it is looked up by externalReferenceId first (no second referral)',
                ],
          effects: null,
        };
      }
      default:
        return {
          ...base,
          summary: [`run ${dl.jobName} again for ${JSON.stringify(data)} (idempotent)`],
          effects: null,
        };
    }
  }
}

function summarise(e: EventEffects): string[] {
  if (e.error) return [`would fail again: ${e.error}`];
  if (e.ignored) return [`ignored: ${e.ignored}`];
  const lines = e.timeline.map((t) => `${t.kind}: ${t.message}`);
  if (e.invoices.length === 0 && e.reports.length === 0) {
    lines.push('no invoice and no report would be produced');
  }
  return lines.length > 0 ? lines : ['nothing would change'];
}
