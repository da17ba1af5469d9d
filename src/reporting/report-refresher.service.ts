import { Injectable } from '@nestjs/common';
import { PinoLogger } from 'nestjs-pino';

import { Clock } from '../common/clock';
import { TransientError } from '../common/errors';
import { AppConfig } from '../config/app-config';
import { missingInvoiceFacts } from '../domain/invoice-state';
import { ReportData } from '../domain/report';
import { Invoice, Prisma, Report } from '../generated/prisma/client';
import { InvoicingPort } from '../ports/invoicing.port';
import { dbAmount } from '../prisma/db-amount';
import { PrismaService } from '../prisma/prisma.service';
import { addTimeline } from '../timeline/timeline';
import { reportFields } from './report-fields';
import { ReportService, withConfirmed } from './report.service';

/**
 * Reports are built when they are delivered, from the facts then known (issue 13 item 6): a
 * confirmed amount (確定報告) is rebuilt from its invoice row as it is at delivery — number, hosted
 * and PDF URLs, the invoice's own tax, 請求回数 and the next date — and where the row still lacks
 * them (the invoicing system's answer to the issuer was lost and an event told the hub instead),
 * the invoice is read from the invoicing system through its port and the row completed. While the
 * invoice's facts are still unknown the report is not sent: TransientError, retried later.
 */
@Injectable()
export class ReportRefresher {
  constructor(
    private readonly prisma: PrismaService,
    private readonly invoicing: InvoicingPort,
    private readonly reports: ReportService,
    private readonly config: AppConfig,
    private readonly clock: Clock,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(ReportRefresher.name);
  }

  /**
   * The report as it is to be delivered: a confirmed amount rebuilt from its invoice (completed
   * from the invoicing system first when it must be); any other report as it is. Throws
   * TransientError when the invoice's number, URLs or own tax are still unknown (the rebuilt
   * report is kept all the same).
   */
  async refresh(report: Report): Promise<Report> {
    if (report.kind !== 'confirmed_amount' || !report.billingKey) return report;
    let invoice = await this.prisma.invoice.findUnique({
      where: { billingKey: report.billingKey },
    });
    if (!invoice) return report;
    if (missingInvoiceFacts(invoice).length > 0) invoice = await this.complete(invoice);
    const rebuilt = await this.rebuild(report, invoice);
    const missing = missingInvoiceFacts(invoice);
    if (missing.length > 0) {
      throw new TransientError(
        `invoice ${invoice.invoiceNumber ?? invoice.providerInvoiceId ?? invoice.billingKey} has no ${missing.join(', ')} yet: the confirmed-amount report ${report.id} waits for them`,
      );
    }
    return rebuilt;
  }

  /** The invoice row completed from the invoicing system (finalized invoices only), else as it was. */
  private async complete(invoice: Invoice): Promise<Invoice> {
    if (!invoice.providerInvoiceId) return invoice;
    const view = await this.invoicing.retrieveInvoice(invoice.providerInvoiceId);
    // A draft has no number, URLs or final tax yet.
    if (view.status === 'draft') return invoice;
    const data: Prisma.InvoiceUpdateInput = {};
    if (!invoice.invoiceNumber && view.number) data.invoiceNumber = view.number;
    if (!invoice.hostedInvoiceUrl && view.hostedInvoiceUrl)
      data.hostedInvoiceUrl = view.hostedInvoiceUrl;
    if (!invoice.invoicePdfUrl && view.invoicePdf) data.invoicePdfUrl = view.invoicePdf;
    if (invoice.total === null) {
      data.total = view.total;
      data.taxAmount = view.tax;
    }
    if (Object.keys(data).length === 0) return invoice;
    return this.prisma.transaction(async (tx) => {
      const updated = await tx.invoice.update({ where: { id: invoice.id }, data });
      await addTimeline(tx, {
        dealId: invoice.dealId,
        kind: 'billing',
        message: `invoice ${updated.invoiceNumber ?? view.id} completed from ${this.invoicing.provider} for its confirmed-amount report: ${Object.keys(
          data,
        ).join(', ')}${invoice.total === null ? ` (tax ${view.tax}, the invoice's own)` : ''}`,
        cause: `report refresh ${invoice.billingKey}`,
        details: { billingKey: invoice.billingKey, providerInvoiceId: view.id },
      });
      this.logger.info(
        { billingKey: invoice.billingKey, invoice: view.id, fields: Object.keys(data) },
        'invoice completed from the invoicing system for its confirmed-amount report',
      );
      return updated;
    });
  }

  /** The report's content rebuilt from the invoice, unless the report changed meanwhile. */
  private async rebuild(report: Report, invoice: Invoice): Promise<Report> {
    return this.prisma.transaction(async (tx) => {
      const deal = await tx.deal.findUniqueOrThrow({ where: { id: report.dealId } });
      const items = await tx.billingItem.findMany({
        where: { dealId: deal.id, removed: false },
        orderBy: { position: 'asc' },
      });
      const content = await this.reports.confirmedData(tx, invoice, deal, items, this.clock.now());
      const data = withConfirmed(report.data as unknown as ReportData, content);
      const zone = this.config.timeZoneOf(deal);
      // Only as read: an operator's change (or a correction) made meanwhile is not overwritten.
      await tx.report.updateMany({
        where: { id: report.id, status: report.status, updatedAt: report.updatedAt },
        data: {
          data: data as unknown as Prisma.InputJsonValue,
          fields: reportFields(data, zone) as unknown as Prisma.InputJsonValue,
          amountExTax: dbAmount(invoice.amount),
        },
      });
      return tx.report.findUniqueOrThrow({ where: { id: report.id } });
    });
  }
}
