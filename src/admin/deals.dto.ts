import { HttpException, HttpStatus } from '@nestjs/common';
import { z } from 'zod';

import { CRM_TARGETS, DEAL_STAGES } from '../domain/deal-stage';
import { MAX_AMOUNT } from '../domain/money';
import { pageQuery } from './pagination';
import { AdminErrorCode } from './admin-error-code';

/** What the deals API takes (query, creation body, Idempotency-Key) and its refused-plan answer. */

export const dealsQuery = pageQuery.extend({
  /** Only the deals that need a person, each with its reasons (`attention`). */
  attention: z
    .enum(['true', 'false'], { error: 'must be true or false' })
    .transform((v) => v === 'true')
    .optional(),
  stage: z.enum(DEAL_STAGES).optional(),
  crmDealId: z.string().trim().min(1).optional(),
  referralId: z.string().trim().min(1).optional(),
  /** Any of the deal's ids: hub, CRM, envelope, Stripe invoice id or number, referral. */
  q: z.string().trim().min(1).max(200).optional(),
});
export type DealsQuery = z.output<typeof dealsQuery>;

function isTimeZone(zone: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: zone });
    return true;
  } catch {
    return false;
  }
}

export const createDealBody = z.strictObject({
  name: z.string().trim().min(1).max(200),
  customer: z
    .strictObject({
      company: z.string().trim().min(1).max(200).optional(),
      contactName: z.string().trim().min(1).max(200).optional(),
      email: z.email().max(320).optional(),
    })
    .optional(),
  currency: z
    .string()
    .regex(/^[A-Za-z]{3}$/, { error: 'must be a 3-letter ISO 4217 currency code' })
    .transform((c) => c.toLowerCase())
    .optional(),
  amount: z
    .number()
    .int({ error: "must be an integer in the currency's smallest unit" })
    .positive()
    .max(MAX_AMOUNT, { error: `must be at most ${MAX_AMOUNT} (the largest amount the hub takes)` })
    .optional(),
  crmDealId: z.string().trim().min(1).max(100).optional(),
  timeZone: z
    .string()
    .refine(isTimeZone, { error: 'must be an IANA time zone such as Asia/Tokyo' })
    .optional(),
  stage: z.enum(CRM_TARGETS).optional(),
  /** CONTRACT §4 JSON; validated by the billing plan parser (its errors name json paths). */
  billingPlan: z.unknown().optional(),
});
export type CreateDealBody = z.output<typeof createDealBody>;

export const idempotencyKeyHeader = z
  .string()
  .trim()
  .min(1, { error: 'Idempotency-Key must not be empty' })
  .max(255, { error: 'Idempotency-Key must be at most 255 characters' });

/** 400 naming every problem of a refused billing plan (`error.details` lists them one by one). */
export class PlanRejected extends HttpException {
  constructor(readonly errors: string[]) {
    super(
      {
        error: {
          code: AdminErrorCode.InvalidBillingPlan,
          message: `billing plan refused: ${errors.join('; ')}`,
          details: errors,
        },
      },
      HttpStatus.BAD_REQUEST,
    );
  }
}
