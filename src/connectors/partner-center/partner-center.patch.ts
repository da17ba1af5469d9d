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

/**
 * The JSON Patch that records a report on a Partner Center referral (CONTRACT §5):
 * - `won` → Closed/Won with `/details/dealValue` and `/details/currency`;
 * - `lost` → Closed/Lost;
 * - `accepted`, `engaged`, `appointment` → Active/Accepted;
 * - `lost_withdrawn` → null: not applicable, Partner Center cannot reopen a closed referral.
 *
 * `dealValue` is an integer in the currency's smallest unit, as every amount in closeloop (the
 * report's `amountExTax`); it is written as Partner Center's decimal in major units, as a string
 * like the documented example (`"10000"`): 300000 JPY → "300000", 100050 USD → "1000.50".
 * `currency` is written as an upper-case ISO 4217 code.
 */
export function statusPatch(
  kind: PartnerCenterStatusKind,
  value: { dealValue?: number; currency?: string } = {},
): JsonPatchOp[] | null {
  switch (kind) {
    case 'won': {
      const { dealValue, currency } = value;
      if (typeof currency !== 'string' || !/^[A-Za-z]{3}$/.test(currency)) {
        throw new PermanentError(
          'a won report needs a 3-letter ISO 4217 currency for Partner Center',
        );
      }
      if (typeof dealValue !== 'number' || !Number.isSafeInteger(dealValue) || dealValue < 0) {
        throw new PermanentError(
          'a won report needs dealValue as a non-negative integer in the currency’s smallest unit',
        );
      }
      return [
        replace('/status', 'Closed'),
        replace('/substatus', 'Won'),
        replace('/details/dealValue', toMajorUnits(dealValue, currency)),
        replace('/details/currency', currency.toUpperCase()),
      ];
    }
    case 'lost':
      return [replace('/status', 'Closed'), replace('/substatus', 'Lost')];
    case 'declined':
      return [replace('/status', 'Closed'), replace('/substatus', 'Declined')];
    case 'accepted':
    case 'engaged':
    case 'appointment':
      return [replace('/status', 'Active'), replace('/substatus', 'Accepted')];
    case 'lost_withdrawn':
      return null;
    default:
      throw new PermanentError(
        `report kind ${JSON.stringify(kind as string)} has no Partner Center status`,
      );
  }
}

function replace(path: string, value: unknown): JsonPatchOp {
  return { op: 'replace', path, value };
}
