import { Module } from '@nestjs/common';

import { QueueModule } from '../queue/queue.module';
import { ReportService } from './report.service';

/** Reports owed to referral platforms, derived where the facts are recorded (both roles). */
@Module({
  imports: [QueueModule],
  providers: [ReportService],
  exports: [ReportService],
})
export class ReportingModule {}
