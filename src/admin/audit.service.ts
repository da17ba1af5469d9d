import { Injectable } from '@nestjs/common';

import { Prisma } from '../generated/prisma/client';
import { Actor } from './tokens.service';

/** Every state-changing admin action, written in the action's own transaction. */
@Injectable()
export class AuditService {
  async record(
    tx: Prisma.TransactionClient,
    actor: Actor | undefined,
    action: string,
    target: string,
    details?: Prisma.InputJsonValue,
  ): Promise<void> {
    await tx.auditLog.create({
      data: {
        actor: actor?.name ?? 'system',
        role: actor?.role ?? 'system',
        action,
        target,
        details,
      },
    });
  }
}
