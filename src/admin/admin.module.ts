import { Module } from '@nestjs/common';

import { QueueModule } from '../queue/queue.module';
import { AdminController } from './admin.controller';
import { AuditService } from './audit.service';
import { AuthGuard } from './auth.guard';
import { EventsService } from './events.service';

@Module({
  imports: [QueueModule],
  controllers: [AdminController],
  providers: [EventsService, AuditService, AuthGuard],
})
export class AdminModule {}
