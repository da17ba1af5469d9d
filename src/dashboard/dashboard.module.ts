import { Module } from '@nestjs/common';

import { AuditService } from '../admin/audit.service';
import { DealLossService } from '../admin/deal-loss.service';
import { ContractDocumentsService } from '../admin/contract-documents.service';
import { DealsService } from '../admin/deals.service';
import { ReconciliationService } from '../admin/reconciliation.service';
import { ReportsService } from '../admin/reports.service';
import { EventsService } from '../admin/events.service';
import { ReplayPreviewService } from '../admin/replay-preview.service';
import { TokensService } from '../admin/tokens.service';
import { AppConfig } from '../config/app-config';
import { LifecycleModule } from '../lifecycle/lifecycle.module';
import { PrismaService } from '../prisma/prisma.service';
import { QueueModule } from '../queue/queue.module';
import { SecurityModule } from '../security/security.module';
import { WebhookProcessingModule } from '../webhooks/webhook-processing.module';
import { DashboardController } from './dashboard.controller';
import { DealLossPageController } from './deal-loss.controller';
import { FinanceController } from './finance.controller';
import { OpsController } from './ops.controller';
import { DashboardGuard } from './dashboard.guard';
import { DashboardSessionService } from './session.service';
import { OverviewService } from './overview.service';

/**
 * The web dashboard (api role). It reads through the admin API's own services, so a page and the
 * JSON endpoint answer the same; those services are provided here as well because AdminModule
 * does not export them (they are stateless; the one TokensService rule is the same class and key).
 */
@Module({
  imports: [QueueModule, LifecycleModule, WebhookProcessingModule, SecurityModule],
  controllers: [DashboardController, OpsController, FinanceController, DealLossPageController],
  providers: [
    DashboardSessionService,
    DashboardGuard,
    OverviewService,
    DealsService,
    DealLossService,
    ContractDocumentsService,
    AuditService,
    ReconciliationService,
    ReportsService,
    EventsService,
    ReplayPreviewService,
    {
      provide: TokensService,
      inject: [PrismaService, AppConfig],
      useFactory: (prisma: PrismaService, config: AppConfig) =>
        new TokensService(prisma, config.env.ADMIN_TOKEN),
    },
  ],
})
export class DashboardModule {}
