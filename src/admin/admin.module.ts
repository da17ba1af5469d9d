import { Module } from '@nestjs/common';

import { QueueModule } from '../queue/queue.module';
import { AdminController } from './admin.controller';
import { AuditService } from './audit.service';
import { AuthGuard } from './auth.guard';
import { EventsService } from './events.service';
import { TokensService } from './tokens.service';
import { AppConfig } from '../config/app-config';
import { PrismaService } from '../prisma/prisma.service';

@Module({
  imports: [QueueModule],
  controllers: [AdminController],
  providers: [
    EventsService,
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
