/**
 * Money helpers for billing. Pure functions, no I/O.
 *
 * Every amount in closeloop is an integer in the currency's smallest unit, as Stripe expects
 * (provider-facts §3.6): JPY is zero-decimal, so 300000 is ¥300,000; USD is two-decimal, so
 * 100050 is $1,000.50.
 */

/**
 * The largest amount the hub takes anywhere (CONTRACT §4): deal and plan amounts are integers up
 * to 999,999,999,999 in the currency's smallest unit. Far inside Number.MAX_SAFE_INTEGER
 * (9,007,199,254,740,991), so such amounts and the sums of a plan's items are exact as numbers;
 * percents and tax rates are applied with BigInt (percentOf, taxOf).
 */
export const MAX_AMOUNT = 999_999_999_999;

/**
 * The most Stripe takes on one invoice: its amounts have at most eight digits, 99,999,999 in the
 * smallest unit of any currency (¥99,999,999; $999,999.99). The limit is on what the customer is
 * charged, so an invoice's total including tax must fit (CONTRACT §4; Stripe's "minimum and maximum
 * charge amounts").
 */
export const STRIPE_MAX_INVOICE_TOTAL = 99_999_999;

/** Thrown for any amount or currency the hub cannot turn into an exact integer. */
export class MoneyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'MoneyError';
  }
}

/** "999,999,999,999": an amount in the smallest unit with thousands separators, for messages. */
export const groupDigits = (n: number): string => n.toLocaleString('en-US');

/** Whether `n` is an amount the hub takes: an integer from 0 to MAX_AMOUNT (CONTRACT §4). */
export function isAmount(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0 && n <= MAX_AMOUNT;
}

/**
 * Stripe's zero-decimal currencies (provider-facts §3.6). Upper-case ISO 4217 codes.
 */
export const ZERO_DECIMAL_CURRENCIES: ReadonlySet<string> = new Set([
  'BIF',
  'CLP',
  'DJF',
  'GNF',
  'JPY',
  'KMF',
  'KRW',
  'MGA',
  'PYG',
  'RWF',
  'UGX',
  'VND',
  'VUV',
  'XAF',
  'XOF',
  'XPF',
]);

const CURRENCY_CODE = /^[A-Za-z]{3}$/;

function normaliseCurrency(currency: string): string {
  if (typeof currency !== 'string' || !CURRENCY_CODE.test(currency)) {
    throw new MoneyError(`"${String(currency)}" is not a 3-letter ISO 4217 currency code`);
  }
  return currency.toUpperCase();
}

/**
 * Number of decimal digits between the currency's major unit and the unit Stripe counts in:
 * 0 for Stripe's zero-decimal currencies, 2 for every other currency.
 *
 * Stripe's three-decimal currencies (BHD, JOD, KWD, OMR, TND) are deliberately NOT special-cased:
 * provider-facts §3.6 does not list them, so they get 2 like any other currency. Billing in one of
 * them needs that fact confirmed first.
 */
export function currencyExponent(currency: string): number {
  return ZERO_DECIMAL_CURRENCIES.has(normaliseCurrency(currency)) ? 0 : 2;
}

const PLAIN_DECIMAL = /^(\d+)(?:\.(\d+))?$/;

/**
 * Converts an amount in major units (HubSpot's `amount` property is a decimal string such as
 * "300000" or "1200.5") into an integer in the currency's smallest unit.
 *
 * The digits of the decimal are used as they are written: "1200.5" USD is 1200 × 100 + 50, never
 * `Number("1200.5") * 100`, so there is no floating-point drift.
 *
 * Accepted: digits, optionally followed by "." and digits, with surrounding whitespace. Trailing
 * zeros in the fraction are harmless ("300000.00" JPY is 300000).
 * Refused with a {@link MoneyError}: empty strings, thousands separators ("1,200"), signs, exponents
 * ("1e5"), negative amounts, more fraction digits than the currency has ("1000.5" JPY), and results
 * beyond `Number.MAX_SAFE_INTEGER`. A `number` is accepted when it is finite and non-negative; it is
 * read through its shortest decimal representation, so `0.1 + 0.2` USD is refused (too many
 * decimals) rather than silently rounded.
 */
export function toMinorUnits(value: string | number, currency: string): number {
  const code = normaliseCurrency(currency);
  const exponent = currencyExponent(code);

  let text: string;
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) {
      throw new MoneyError(`${String(value)} is not an amount`);
    }
    if (value < 0) {
      throw new MoneyError(`amount must not be negative (got ${value})`);
    }
    text = Number.isInteger(value) ? BigInt(value).toString() : String(value);
  } else if (typeof value === 'string') {
    text = value.trim();
  } else {
    throw new MoneyError(`amount must be a decimal string or a number (got ${typeof value})`);
  }

  if (/^-\s*\d/.test(text)) {
    throw new MoneyError(`amount must not be negative (got "${text}")`);
  }
  const match = PLAIN_DECIMAL.exec(text);
  if (!match) {
    throw new MoneyError(
      `"${text}" is not a plain decimal amount (digits with an optional "." and fraction, no separators)`,
    );
  }
  const integerDigits = match[1];
  const fractionDigits = (match[2] ?? '').replace(/0+$/, '');
  if (fractionDigits.length > exponent) {
    throw new MoneyError(
      exponent === 0
        ? `${code} has no decimals (got "${text}")`
        : `${code} has at most ${exponent} decimals (got "${text}")`,
    );
  }
  const minor = BigInt(integerDigits + fractionDigits.padEnd(exponent, '0'));
  if (minor > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new MoneyError(`"${text}" ${code} is too large`);
  }
  return Number(minor);
}

/**
 * An amount entering the hub (HubSpot's deal `amount`, Partner Center's `dealValue`): toMinorUnits,
 * then refused with a {@link MoneyError} above MAX_AMOUNT, the most the hub takes (CONTRACT §4).
 */
export function toAmount(value: string | number, currency: string): number {
  const minor = toMinorUnits(value, currency);
  if (minor > MAX_AMOUNT) {
    throw new MoneyError(
      `${groupDigits(minor)} in the smallest unit of ${currency.toUpperCase()} is more than the hub takes (at most ${groupDigits(MAX_AMOUNT)})`,
    );
  }
  return minor;
}

/** An amount in the currency's smallest unit as a plain decimal string of its major unit ("1234.50"), as CRMs and Partner Center take it. */
export function toMajorUnits(minor: number, currency: string): string {
  if (!Number.isSafeInteger(minor)) {
    throw new MoneyError(`${minor} is not an integer amount in the smallest unit`);
  }
  const exponent = currencyExponent(currency);
  if (exponent === 0) return String(minor);
  const digits = String(Math.abs(minor)).padStart(exponent + 1, '0');
  return `${minor < 0 ? '-' : ''}${digits.slice(0, -exponent)}.${digits.slice(-exponent)}`;
}

/**
 * Human display of an amount in the smallest unit, e.g. `formatMoney(300000, 'jpy')` → "¥300,000",
 * `formatMoney(100050, 'usd', 'en-US')` → "$1,000.50". Uses Intl with exactly the currency's exponent
 * as fraction digits. ICU renders the yen sign as the full-width "￥" in ja-JP; it is normalised to
 * "¥" (U+00A5) so the output does not depend on the ICU version.
 */
export function formatMoney(amount: number, currency: string, locale = 'ja-JP'): string {
  const code = normaliseCurrency(currency);
  if (!Number.isSafeInteger(amount)) {
    throw new MoneyError(`${amount} is not an integer amount in the smallest unit of ${code}`);
  }
  const exponent = currencyExponent(code);
  // Building an Intl.NumberFormat is costly (it showed in the worker's profile): one per locale+currency.
  const key = `${locale}|${code}`;
  let format = FORMATS.get(key);
  if (!format) {
    format = new Intl.NumberFormat(locale, {
      style: 'currency',
      currency: code,
      minimumFractionDigits: exponent,
      maximumFractionDigits: exponent,
    });
    FORMATS.set(key, format);
  }
  return format.format(amount / 10 ** exponent).replace(/\uFFE5/g, '\u00A5');
}

const FORMATS = new Map<string, Intl.NumberFormat>();

/** Splits a finite non-negative number into an exact decimal fraction `digits / 10^scale`. */
function exactDecimal(value: number): { digits: bigint; scale: number } {
  const [mantissa, exponentPart] = String(value).toLowerCase().split('e');
  const [intPart, fracPart = ''] = mantissa.split('.');
  let digits = BigInt(intPart + fracPart);
  let scale = fracPart.length - Number(exponentPart ?? 0);
  if (scale < 0) {
    digits *= 10n ** BigInt(-scale);
    scale = 0;
  }
  return { digits, scale };
}

/**
 * `percent`% of `total`, as an integer in the same unit, rounded half up (x.5 → x+1).
 *
 * Computed exactly on the decimal digits of `percent` (33.33 is 3333/10000), not with floating
 * point: 30% of 400000 is 120000, 12.5% of 1 is 0.125 → 0, 50% of 5 is 2.5 → 3.
 * `total` must be a non-negative safe integer and `percent` a finite number from 0 to 100.
 */
export function percentOf(total: number, percent: number): number {
  if (!Number.isSafeInteger(total) || total < 0) {
    throw new MoneyError(`total must be a non-negative integer (got ${total})`);
  }
  if (!Number.isFinite(percent) || percent < 0 || percent > 100) {
    throw new MoneyError(`percent must be between 0 and 100 (got ${percent})`);
  }
  const { digits, scale } = exactDecimal(percent);
  const numerator = BigInt(total) * digits;
  const denominator = 100n * 10n ** BigInt(scale);
  // round half up: floor((2n + d) / 2d)
  return Number((2n * numerator + denominator) / (2n * denominator));
}

/**
 * Tax on a tax-exclusive amount: amountExTax × ratePercent / 100, rounded half up (x.5 → x+1).
 *
 * Computed exactly on the decimal digits of the rate, like percentOf: `Math.round(a × r / 100)` in
 * floating point is off for large amounts and rates such as 7.8 (the product is not exact), while
 * this is the exact value of the same expression, so it agrees with the provider simulator's
 * `Math.round` wherever that one is exact. Real Stripe rounds per its own rules (per line, not
 * documented in detail — provider-facts §3.6), so reconciliation always uses the totals Stripe
 * reports on the invoice (`invoice.total` / tax amounts), never this estimate.
 */
export function taxOf(amountExTax: number, ratePercent: number): number {
  if (!Number.isSafeInteger(amountExTax) || amountExTax < 0) {
    throw new MoneyError(`amount must be a non-negative integer (got ${amountExTax})`);
  }
  if (!Number.isFinite(ratePercent) || ratePercent < 0 || ratePercent > 100) {
    throw new MoneyError(`tax rate must be between 0 and 100 (got ${ratePercent})`);
  }
  return percentOf(amountExTax, ratePercent);
}
