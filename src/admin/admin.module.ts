import { Module } from '@nestjs/common';

import { LifecycleModule } from '../lifecycle/lifecycle.module';
import { QueueModule } from '../queue/queue.module';
import { AdminController } from './admin.controller';
import { AuditService } from './audit.service';
import { AuthGuard } from './auth.guard';
import { DealLossController } from './deal-loss.controller';
import { DealLossService } from './deal-loss.service';
import { ContractDocumentsService } from './contract-documents.service';
import { DealsController } from './deals.controller';
import { DealsService } from './deals.service';
import { EventsService } from './events.service';
import { ReconciliationService } from './reconciliation.service';
import { ReferralsController } from './referrals.controller';
import { ReplayPreviewService } from './replay-preview.service';
import { ReportsController } from './reports.controller';
import { ReportsService } from './reports.service';
import { TokensService } from './tokens.service';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../prisma/prisma.service';
import { SecurityModule } from '../security/security.module';
import { WebhookProcessingModule } from '../webhooks/webhook-processing.module';

/**
 * The admin API. One-way: admin → lifecycle / billing (deal changes, re-bills) → connectors
 * (Stripe reads for reconciliation); nothing below imports the admin module.
 */
@Module({
  imports: [QueueModule, LifecycleModule, WebhookProcessingModule, SecurityModule],
  controllers: [
    AdminController,
    DealsController,
    DealLossController,
    ReportsController,
    ReferralsController,
  ],
  providers: [
    EventsService,
    DealsService,
    DealLossService,
    ContractDocumentsService,
    ReconciliationService,
    ReportsService,
    ReplayPreviewService,
    AuditService,
    AuthGuard,
    // One TokensService for the guard and the controller (the CLI builds its own over a bare client).
    {
      provide: TokensService,
      inject: [PrismaService, AppConfig],
      useFactory: (prisma: PrismaService, config: AppConfig) =>
        new TokensService(prisma, config.env.ADMIN_TOKEN),
    },
  ],
})
export class AdminModule {}
