import { DateTime } from 'luxon';

import { MoneyError, currencyExponent, toAmount } from '../money';
import { ReportData, ReportField, ReportKind } from '../report';

/**
 * Values as a platform's form takes them, copy-ready (the manual report queue: an operator copies
 * each value into the platform's form).
 *
 * Conventions, the same for every kind so an operator never has to think about them:
 * - Amounts are the bare number in major units, without separators or symbol (`300000` for
 *   ¥300,000): the platform's amount inputs take digits only, and a pasted "¥300,000" is refused
 *   or mangled. A currency other than JPY gets its ISO code appended (`1000.50 USD`) so nobody
 *   pastes dollars into a yen field without noticing.
 * - Dates are YYYY-MM-DD in the deal's time zone (the same form as the report data and the API).
 * - A field the form requires but the hub does not know yet is kept, with the value {@link NOT_SET},
 *   so the task shows what is still missing; an optional field without a value is left out.
 */

/** The value of a required field the hub does not know yet. */
export const NOT_SET = '未定 / not set yet';

/** The platform's name for each report, for task titles, timeline entries and alerts. */
export const DEFAULT_REPORT_LABELS: Record<ReportKind, { ja: string; en: string }> = {
  appointment: { ja: 'アポイント報告', en: 'appointment' },
  won: { ja: '成約報告', en: 'won' },
  lost: { ja: '失注報告', en: 'lost' },
  lost_withdrawn: { ja: '失注報告の取り消し', en: 'loss withdrawn' },
  confirmed_amount: { ja: '確定報告', en: 'confirmed amount' },
  delivered: { ja: '納品報告', en: 'delivered' },
  additional_order: { ja: '追加発注報告', en: 'additional order' },
  declined: { ja: '辞退報告', en: 'declined' },
  expired: { ja: '期限切れ報告', en: 'expired' },
  in_evaluation: { ja: '評価中の報告', en: 'in evaluation' },
};

/** An amount in the smallest unit as the platform's amount field takes it (see the module comment). */
export function formatAmount(amount: number, currency = 'jpy'): string {
  const exponent = currencyExponent(currency);
  const negative = amount < 0;
  const digits = String(Math.abs(amount)).padStart(exponent + 1, '0');
  const major =
    exponent === 0
      ? digits
      : `${digits.slice(0, digits.length - exponent)}.${digits.slice(-exponent)}`;
  const value = `${negative ? '-' : ''}${major}`;
  return currency.toLowerCase() === 'jpy' ? value : `${value} ${currency.toUpperCase()}`;
}

const DATE_ONLY = /^\d{4}-\d{2}-\d{2}$/;

/**
 * A date for the form: YYYY-MM-DD dates are the deal's local dates already and pass as they are;
 * a timestamp is turned into the local date in `timeZone`. Undefined when there is nothing usable.
 */
export function formatDate(value: string | undefined, timeZone: string): string | undefined {
  if (!value) return undefined;
  if (DATE_ONLY.test(value)) {
    return DateTime.fromISO(value, { zone: timeZone }).isValid ? value : undefined;
  }
  const at = DateTime.fromISO(value, { setZone: true });
  return at.isValid ? (at.setZone(timeZone).toISODate() ?? undefined) : undefined;
}

/** ReportData fields a form's text field shows as they are. */
type TextData = 'dealName' | 'orderDescription' | 'billingTiming' | 'reason';
/** ReportData fields a form's date field shows. */
type DateData = 'appointmentDate' | 'date' | 'issueDate' | 'nextInvoiceDate' | 'deliveredOn';

/**
 * What a field's value is, and so how a corrected value is read back (POST
 * /api/reports/:id/correct): free text (kept on the field alone unless it shows a ReportData
 * field), an amount excl. tax (`amountExTax`), a date, a month (YYYY-MM), or one of the
 * platform's choices (keyed by the ReportData value they stand for).
 */
export type FieldInput =
  | { type: 'text'; data?: TextData }
  | { type: 'amount' }
  | { type: 'date'; data: DateData }
  | { type: 'month'; data: 'effectiveMonth' | 'endMonth' }
  | {
      type: 'choice';
      data: 'billingCount' | 'lostStage';
      choices: Readonly<Record<string, string>>;
    };

export interface FieldSpec {
  key: string;
  label: string;
  labelEn: string;
  value: string | undefined;
  /** The form will not submit without it: shown as NOT_SET when unknown. */
  required: boolean;
  input: FieldInput;
}

/** The specs as copy-ready fields: required ones always (NOT_SET when unknown), optional ones when known. */
export function toFields(specs: readonly FieldSpec[]) {
  return specs
    .filter((f) => f.value !== undefined || f.required)
    .map((f) => ({ key: f.key, label: f.label, labelEn: f.labelEn, value: f.value ?? NOT_SET }));
}

export const text = (s: string | undefined) => (s && s.trim() !== '' ? s.trim() : undefined);

/** One corrected field: what the form showed and what it shows now. */
export interface FieldChange {
  key: string;
  label: string;
  /** null: the field was not shown (an optional field without a value). */
  before: string | null;
  after: string;
}

export type Correction =
  | {
      ok: true;
      /** The report data with the corrected values. */
      data: ReportData;
      /** The form after the correction, copy-ready. */
      fields: ReportField[];
      /** The fields whose shown value changed (none: the values were the ones shown). */
      changes: FieldChange[];
      /** The corrected amount excl. tax, when `amountExTax` was corrected. */
      amountExTax?: number;
    }
  | { ok: false; reason: string };

const DATE = /^\d{4}-\d{2}-\d{2}$/;
const MONTH = /^\d{4}-(0[1-9]|1[0-2])$/;
/** Choices compare in NFKC, so 複数回（毎月変動） with full-width parentheses is 複数回(毎月変動). */
const fold = (s: string) => s.normalize('NFKC').replace(/\s+/g, '');

/**
 * Finance's correction of a report's form (修正依頼, CONTRACT §6): `values` by field key, each
 * read back by its field's input (an amount as the form writes it, a date YYYY-MM-DD, a choice by
 * its label or its value) into the report data, the form rebuilt from the corrected data, and
 * free-text fields that show no data (an attachment) kept as corrected or as `stored`. Unknown
 * keys and unreadable values refuse the whole correction, naming each.
 */
export function correctForm(
  specsOf: (data: ReportData) => FieldSpec[],
  data: ReportData,
  stored: readonly ReportField[],
  values: Readonly<Record<string, string>>,
): Correction {
  const specs = specsOf(data);
  const byKey = new Map(specs.map((s) => [s.key, s]));
  const unknown = Object.keys(values).filter((k) => !byKey.has(k));
  if (unknown.length > 0) {
    return {
      ok: false,
      reason: `unknown field${unknown.length > 1 ? 's' : ''} ${unknown.join(', ')}: a ${data.kind} report's form has ${specs.map((s) => s.key).join(', ')}`,
    };
  }
  const patch: Partial<ReportData> = {};
  const own: Record<string, string> = {};
  const problems: string[] = [];
  let amountExTax: number | undefined;
  for (const [key, raw] of Object.entries(values)) {
    const spec = byKey.get(key)!;
    const value = raw.trim();
    if (value === '') {
      problems.push(`${key}: must not be empty`);
      continue;
    }
    const input = spec.input;
    switch (input.type) {
      case 'text':
        if (input.data) patch[input.data] = value;
        else own[key] = value;
        break;
      case 'amount': {
        const currency = data.currency ?? 'jpy';
        const code = currency.toUpperCase();
        const digits = value.endsWith(` ${code}`) ? value.slice(0, -code.length - 1) : value;
        try {
          amountExTax = toAmount(digits, currency);
          patch.amountExTax = amountExTax;
        } catch (err) {
          if (!(err instanceof MoneyError)) throw err;
          problems.push(
            `${key}: ${err.message} (write the amount as the form shows it, e.g. ${formatAmount(300000, currency)})`,
          );
        }
        break;
      }
      case 'date':
        if (!DATE.test(value) || !DateTime.fromISO(value).isValid) {
          problems.push(`${key}: must be a date YYYY-MM-DD (got "${value}")`);
        } else {
          patch[input.data] = value;
        }
        break;
      case 'month':
        if (!MONTH.test(value)) {
          problems.push(`${key}: must be a month YYYY-MM (got "${value}")`);
        } else {
          patch[input.data] = value;
        }
        break;
      case 'choice': {
        const entry = Object.entries(input.choices).find(
          ([v, label]) => fold(label) === fold(value) || v === value,
        );
        if (!entry) {
          problems.push(
            `${key}: must be one of ${Object.values(input.choices).join(' / ')} (got "${value}")`,
          );
        } else {
          (patch as Record<string, string>)[input.data] = entry[0];
        }
        break;
      }
    }
  }
  if (problems.length > 0) return { ok: false, reason: problems.join('; ') };

  const corrected = { ...data, ...patch } as ReportData;
  const kept = new Map(stored.map((f) => [f.key, f.value]));
  const fields = toFields(
    specsOf(corrected).map((s) =>
      s.input.type === 'text' && !s.input.data
        ? { ...s, value: own[s.key] ?? kept.get(s.key) ?? s.value }
        : s,
    ),
  );
  const changes = Object.keys(values)
    .map((key) => {
      const after = fields.find((f) => f.key === key);
      return {
        key,
        label: byKey.get(key)!.label,
        before: kept.get(key) ?? null,
        after: after?.value ?? NOT_SET,
      };
    })
    .filter((c) => c.before !== c.after);
  return {
    ok: true,
    data: corrected,
    fields,
    changes,
    ...(amountExTax !== undefined ? { amountExTax } : {}),
  };
}
