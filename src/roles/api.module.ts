import { Module } from '@nestjs/common';

import { AdminModule } from '../admin/admin.module';
import { DashboardModule } from '../dashboard/dashboard.module';
import { WebhooksModule } from '../webhooks/webhooks.module';

/** Api role: webhook door, admin API and dashboard. Never registers job handlers. */
@Module({ imports: [WebhooksModule, AdminModule, DashboardModule] })
export class ApiModule {}
