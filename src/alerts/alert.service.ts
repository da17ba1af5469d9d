import { Injectable } from '@nestjs/common';

import { Prisma } from '../generated/prisma/client';
import { AlertInput } from './alert.types';

/** Raises alerts once per cause (skeleton: filled in by the alerts work). */
@Injectable()
export class AlertService {
  /** Records the alert in the caller's transaction unless its cause was already raised; true if new. */
  // eslint-disable-next-line @typescript-eslint/require-await
  async raise(_tx: Prisma.TransactionClient, _input: AlertInput): Promise<boolean> {
    return false;
  }
}
