/**
 * Money columns are BIGINT: amounts are integers in the currency's smallest unit up to
 * 999,999,999,999 (CONTRACT §4; a ¥3,000,000,000 deal is ordinary), beyond a 32-bit integer. In
 * TypeScript money stays a `number`, which is exact for every integer up to
 * Number.MAX_SAFE_INTEGER (9,007,199,254,740,991), so JSON answers, the dashboard, reports and
 * Stripe calls keep plain numbers.
 *
 * Every amount read from Postgres passes through dbAmount: Prisma returns BIGINT columns as
 * `bigint`, raw SQL through `pg` returns int8 as a decimal string. A value that is not an integer
 * within the safe range is refused loudly (never rounded). Writes need nothing: Prisma and `pg`
 * take numbers for BIGINT columns.
 */

/** An amount read from the database that a number cannot hold exactly. */
export class DbAmountError extends Error {
  constructor(value: unknown) {
    super(
      `amount ${String(value)} read from the database is not an integer a number holds exactly (|n| <= ${Number.MAX_SAFE_INTEGER})`,
    );
    this.name = 'DbAmountError';
  }
}

const INTEGER = /^-?\d+$/;

/** A BIGINT amount column's value (bigint from Prisma, string from `pg`) as an exact number. */
export function dbAmount(value: bigint | number | string): number;
export function dbAmount(value: bigint | number | string | null): number | null;
export function dbAmount(value: bigint | number | string | null): number | null {
  if (value === null) return null;
  if (typeof value === 'bigint') {
    if (value > BigInt(Number.MAX_SAFE_INTEGER) || value < BigInt(Number.MIN_SAFE_INTEGER)) {
      throw new DbAmountError(value);
    }
    return Number(value);
  }
  if (typeof value === 'string') {
    if (!INTEGER.test(value)) throw new DbAmountError(JSON.stringify(value));
    return dbAmount(BigInt(value));
  }
  if (typeof value === 'number' && Number.isSafeInteger(value)) return value;
  throw new DbAmountError(value);
}
