import { Module } from '@nestjs/common';

import { AdminModule } from '../admin/admin.module';
import { WebhooksModule } from '../webhooks/webhooks.module';

/** Api role: webhook door and admin API. Never registers job handlers. */
@Module({ imports: [WebhooksModule, AdminModule] })
export class ApiModule {}
