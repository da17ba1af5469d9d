import { DbAmountError, dbAmount } from './db-amount';

describe('dbAmount (BIGINT amount columns read as numbers)', () => {
  it('reads a Prisma bigint exactly, the largest contract amount included', () => {
    expect(dbAmount(3_000_000_000n)).toBe(3_000_000_000);
    expect(dbAmount(999_999_999_999n)).toBe(999_999_999_999);
    expect(dbAmount(0n)).toBe(0);
  });

  it('reads int8 as pg returns it from raw SQL (a decimal string)', () => {
    expect(dbAmount('999999999999')).toBe(999_999_999_999);
    expect(dbAmount('-5')).toBe(-5);
  });

  it('keeps null (a column without a value) and plain safe integers', () => {
    expect(dbAmount(null)).toBeNull();
    expect(dbAmount(120_000)).toBe(120_000);
  });

  it('refuses loudly what a number cannot hold exactly, never rounding it', () => {
    expect(() => dbAmount(BigInt(Number.MAX_SAFE_INTEGER) + 1n)).toThrow(DbAmountError);
    expect(() => dbAmount('9007199254740993')).toThrow(/not an integer a number holds exactly/);
    expect(() => dbAmount(BigInt(Number.MIN_SAFE_INTEGER) - 1n)).toThrow(DbAmountError);
    expect(dbAmount(BigInt(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('refuses what is not an integer at all', () => {
    expect(() => dbAmount('12.5')).toThrow(DbAmountError);
    expect(() => dbAmount('')).toThrow(DbAmountError);
    expect(() => dbAmount(1.5)).toThrow(DbAmountError);
    expect(() => dbAmount(Number.NaN)).toThrow(DbAmountError);
  });
});
