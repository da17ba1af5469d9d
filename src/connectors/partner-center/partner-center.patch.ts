import { toMajorUnits } from '../../domain/money';
import { PermanentError } from '../../common/errors';
import { JsonPatchOp, PartnerCenterStatusKind } from './partner-center.types';

/** The JSON Patch documents the hub sends Partner Center, and the operations it may send. */

const ALLOWED_PATCH_OPS: ReadonlySet<string> = new Set(['replace', 'add']);

/** Partner Center's PATCH takes only `replace` and `add` (provider-facts §4.1). */
export function assertPatchOps(ops: JsonPatchOp[]): void {
  if (!Array.isArray(ops) || ops.length === 0) {
    throw new PermanentError('partner-center PATCH needs at least one JSON Patch operation');
  }
  for (const [index, op] of ops.entries()) {
    const name = (op as { op?: unknown } | null)?.op;
    if (typeof name !== 'string' || !ALLOWED_PATCH_OPS.has(name)) {
      throw new PermanentError(
        `partner-center PATCH op ${index + 1}: "${String(name)}" is not allowed (only replace and add)`,
      );
    }
    if (typeof op.path !== 'string' || !op.path.startsWith('/')) {
      throw new PermanentError(`partner-center PATCH op ${index + 1}: path must be a JSON Pointer`);
    }
    if (!('value' in op) || op.value === undefined) {
      throw new PermanentError(`partner-center PATCH op ${index + 1}: ${name} needs a value`);
    }
  }
}

/** What a report tells Partner Center beyond its status. */
export interface StatusPatchValues {
  /** An integer in the currency's smallest unit (won: the contracted value; accepting: the estimate). */
  dealValue?: number;
  /** ISO 4217 code, any case. */
  currency?: string;
  /** The deal's close date, YYYY-MM-DD (the deal's local date) or an ISO date-time. */
  closingDate?: string;
  /** Why the referral closes (declined, lost, expired): Partner Center's statusReason. */
  reason?: string;
}

/** statusReason when a close has none of its own (Partner Center gets a reason on every close). */
const DEFAULT_REASONS = {
  lost: 'The customer did not proceed',
  declined: 'Declined by the vendor',
  expired: 'No response within the response window',
} as const;

/**
 * The JSON Patch that records a report on a Partner Center referral (CONTRACT §5; docs/decisions/0013):
 * - `accepted`, `engaged`, `appointment` → Active/Accepted, with `/details/dealValue` and
 *   `/details/currency` when a value is known and `/details/closingDateTime` when the close date
 *   is (Partner Center asks for both on accepting, and uses them to send similar referrals);
 * - `won` → Closed/Won with `/details/dealValue`, `/details/currency` (and the closing date);
 * - `lost`, `declined`, `expired` → Closed/Lost, Closed/Declined, Closed/Expired with
 *   `/statusReason` (a skipped referral is Closed/Declined with "Not interested (skipped)");
 * - `in_evaluation` → New/Received: the vendor received it and is evaluating it (the API has no
 *   "in evaluation" substatus);
 * - `lost_withdrawn` → null: not applicable, Partner Center cannot reopen a closed referral.
 *
 * `dealValue` is an integer in the currency's smallest unit, as every amount in closeloop; it is
 * written as Partner Center's decimal in major units, as a string like the documented example
 * (`"10000"`): 300000 JPY → "300000", 100050 USD → "1000.50". `currency` is written as an
 * upper-case ISO 4217 code. `closingDateTime` is UTC midnight of the close date
 * (`2027-03-31T00:00:00Z`).
 */
export function statusPatch(
  kind: PartnerCenterStatusKind,
  value: StatusPatchValues = {},
): JsonPatchOp[] | null {
  switch (kind) {
    case 'won': {
      const { dealValue, currency } = value;
      if (typeof currency !== 'string' || !/^[A-Za-z]{3}$/.test(currency)) {
        throw new PermanentError(
          'a won report needs a 3-letter ISO 4217 currency for Partner Center',
        );
      }
      if (!isAmount(dealValue)) {
        throw new PermanentError(
          'a won report needs dealValue as a non-negative integer in the currency’s smallest unit',
        );
      }
      return [
        replace('/status', 'Closed'),
        replace('/substatus', 'Won'),
        replace('/details/dealValue', toMajorUnits(dealValue, currency)),
        replace('/details/currency', currency.toUpperCase()),
        ...closing(value.closingDate),
      ];
    }
    case 'lost':
    case 'declined':
    case 'expired':
      return [
        replace('/status', 'Closed'),
        replace('/substatus', CLOSED_SUBSTATUS[kind]),
        replace('/statusReason', reasonOf(value.reason, DEFAULT_REASONS[kind])),
      ];
    case 'accepted':
    case 'engaged':
    case 'appointment': {
      const { dealValue, currency } = value;
      const valued =
        isAmount(dealValue) && typeof currency === 'string' && /^[A-Za-z]{3}$/.test(currency)
          ? [
              replace('/details/dealValue', toMajorUnits(dealValue, currency)),
              replace('/details/currency', currency.toUpperCase()),
            ]
          : [];
      return [
        replace('/status', 'Active'),
        replace('/substatus', 'Accepted'),
        ...valued,
        ...closing(value.closingDate),
      ];
    }
    case 'in_evaluation':
      return [replace('/status', 'New'), replace('/substatus', 'Received')];
    case 'lost_withdrawn':
      return null;
    default:
      throw new PermanentError(
        `report kind ${JSON.stringify(kind as string)} has no Partner Center status`,
      );
  }
}

const CLOSED_SUBSTATUS = { lost: 'Lost', declined: 'Declined', expired: 'Expired' } as const;

/** Partner Center's statusReason: the report's reason, else the close's default; one line. */
function reasonOf(reason: string | undefined, fallback: string): string {
  const line = (reason ?? '').replace(/\s+/g, ' ').trim();
  return line === '' ? fallback : line;
}

function isAmount(v: unknown): v is number {
  return typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
}

/** `/details/closingDateTime` for a close date, when it is a usable date. */
function closing(date: string | undefined): JsonPatchOp[] {
  const at = closingDateTime(date);
  return at ? [replace('/details/closingDateTime', at)] : [];
}

/** UTC midnight of a YYYY-MM-DD date, or an ISO date-time in UTC; undefined when unusable. */
export function closingDateTime(date: string | undefined): string | undefined {
  if (!date) return undefined;
  if (/^\d{4}-\d{2}-\d{2}$/.test(date)) {
    const at = Date.parse(`${date}T00:00:00Z`);
    return Number.isNaN(at) || new Date(at).toISOString().slice(0, 10) !== date
      ? undefined
      : `${date}T00:00:00Z`;
  }
  const at = Date.parse(date);
  return Number.isNaN(at) ? undefined : new Date(at).toISOString().replace('.000Z', 'Z');
}

function replace(path: string, value: unknown): JsonPatchOp {
  return { op: 'replace', path, value };
}
