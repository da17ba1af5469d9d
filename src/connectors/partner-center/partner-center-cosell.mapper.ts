import { PermanentError, TransientError } from '../../common/errors';
import { MoneyError, isAmount, toMajorUnits } from '../../domain/money';
import { OutboundReferral } from '../../ports/referral-platform.port';
import { HttpResult, parseJson, truncate } from './partner-center.mapper';
import { Referral, ReferralMember } from './partner-center.types';

/**
 * Pure mapping of an outbound co-sell referral (CONTRACT §5) onto Partner Center's "create a
 * referral" body [PC-CREATE] (provider-facts §4.1–4.2; docs/decisions/0014), and of its list answer
 * back. No I/O.
 */

/** The body of `POST /v1.0/engagements/referrals` as the hub sends it. */
export interface NewReferral {
  name: string;
  externalReferenceId: string;
  type: 'Shared';
  qualification: 'SalesQualified';
  customerProfile: {
    name: string;
    address: {
      addressLine1?: string;
      addressLine2?: string;
      city?: string;
      state?: string;
      postalCode?: string;
      /** ISO 3166-1 alpha-2. */
      country: string;
    };
    team: ReferralMember[];
  };
  consent: {
    consentToShareInfoWithOthers: boolean;
    /** The name the live API and the docs' samples use (provider-facts §4.2: "docs misspell it"). */
    consentToToShareInfoWithOthers: boolean;
    consentToContact: boolean;
    consentToShareReferralWithMicrosoftSellers: boolean;
  };
  details: {
    notes: string;
    /** Decimal in major units. */
    dealValue: number;
    /** ISO 4217, upper case. */
    currency: string;
    /** The close date at 00:00 UTC, as the docs' samples write it. */
    closingDateTime: string;
  };
}

/** Partner Center's own limits are not documented; notes longer than this are cut. */
const MAX_NOTES = 4000;

/**
 * The fields Partner Center requires that the referral lacks, in words for the person who fills
 * them in the CRM (empty: the referral can be created).
 */
export function missingCosellFields(r: OutboundReferral): string[] {
  const missing: string[] = [];
  if (!text(r.customer.name)) missing.push('the company name');
  const country = r.customer.address?.country;
  if (!text(country)) missing.push("the company's country");
  else if (!countryCode(country!)) missing.push(`a country Partner Center knows ("${country}")`);
  if (!text(r.contact?.email)) missing.push("the contact's e-mail");
  if (!text(r.contact?.firstName)) missing.push("the contact's first name");
  if (!text(r.contact?.lastName)) missing.push("the contact's last name");
  if (r.value === null || r.value === undefined) missing.push('the amount');
  else if (!isAmount(r.value)) missing.push(`a valid amount (${r.value})`);
  if (!text(r.currency) || !/^[A-Za-z]{3}$/.test(r.currency!)) missing.push('the currency');
  if (!text(r.closeDate)) missing.push('the close date');
  else if (!/^\d{4}-\d{2}-\d{2}$/.test(r.closeDate!)) {
    missing.push(`a close date as YYYY-MM-DD ("${r.closeDate}")`);
  }
  return missing;
}

/**
 * The create body of a co-sell referral (CONTRACT §5): type `Shared`, the customer profile with
 * the deal's contact as its team member, consent to share with Microsoft sellers (a co-sell deal,
 * provider-facts §4.1), `details` with value, currency, closing date and notes, and the CRM deal id
 * as `externalReferenceId`.
 *
 * @throws PermanentError naming every missing field ({@link missingCosellFields})
 */
export function cosellReferralBody(r: OutboundReferral): NewReferral {
  const missing = missingCosellFields(r);
  if (missing.length > 0) {
    throw new PermanentError(`the co-sell referral needs ${missing.join(', ')}`);
  }
  const currency = r.currency!.toUpperCase();
  let dealValue: number;
  try {
    dealValue = Number(toMajorUnits(r.value!, currency));
  } catch (err) {
    if (err instanceof MoneyError) throw new PermanentError(err.message);
    throw err;
  }
  const contact = r.contact!;
  const member: ReferralMember = {
    firstName: contact.firstName!.trim(),
    lastName: contact.lastName!.trim(),
    email: contact.email!.trim(),
    phoneNumber: text(contact.phone) ? contact.phone!.trim() : '',
  };
  const a = r.customer.address!;
  const address: NewReferral['customerProfile']['address'] = { country: countryCode(a.country!)! };
  if (text(a.line1)) address.addressLine1 = a.line1!.trim();
  if (text(a.line2)) address.addressLine2 = a.line2!.trim();
  if (text(a.city)) address.city = a.city!.trim();
  if (text(a.state)) address.state = a.state!.trim();
  if (text(a.postalCode)) address.postalCode = a.postalCode!.trim();
  return {
    name: r.title.trim() || `Deal ${r.externalReference}`,
    externalReferenceId: r.externalReference,
    type: 'Shared',
    qualification: 'SalesQualified',
    customerProfile: { name: r.customer.name!.trim(), address, team: [member] },
    consent: {
      consentToShareInfoWithOthers: true,
      consentToToShareInfoWithOthers: true,
      consentToContact: true,
      consentToShareReferralWithMicrosoftSellers: true,
    },
    details: {
      notes: r.notes.length > MAX_NOTES ? `${r.notes.slice(0, MAX_NOTES - 1)}…` : r.notes,
      dealValue,
      currency,
      closingDateTime: `${r.closeDate}T00:00:00Z`,
    },
  };
}

/** `$filter` for the referrals created for one external id (OData string literal, `'` doubled). */
export function externalReferenceFilter(externalReferenceId: string): string {
  return `externalReferenceId eq '${externalReferenceId.replace(/'/g, "''")}'`;
}

/** The referrals of a list answer (`{ value: [...] }`; `items` and a bare array are read too). */
export function parseReferralList(result: HttpResult): Referral[] {
  const body = parseJson(result.text);
  if (body === undefined) {
    throw new TransientError(
      `partner-center ${result.status}: response is not JSON: ${truncate(result.text)}`,
    );
  }
  const list = Array.isArray(body)
    ? body
    : Array.isArray((body as { value?: unknown })?.value)
      ? (body as { value: unknown[] }).value
      : Array.isArray((body as { items?: unknown })?.items)
        ? (body as { items: unknown[] }).items
        : undefined;
  if (!list) throw new PermanentError(`partner-center ${result.status}: response is not a list`);
  return list.filter(
    (r): r is Referral =>
      !!r && typeof r === 'object' && typeof (r as { id?: unknown }).id === 'string',
  );
}

let countries: { codes: Set<string>; names: Map<string, string> } | undefined;

/**
 * An ISO 3166-1 alpha-2 code for a country as typed into a CRM: a code (`jp`, `JP`), or a name in
 * English or Japanese (`Japan`, `日本`, `United States`); undefined when none matches.
 */
export function countryCode(value: string): string | undefined {
  const v = value.normalize('NFKC').trim();
  const { codes, names } = countryTable();
  if (/^[A-Za-z]{2}$/.test(v) && codes.has(v.toUpperCase())) return v.toUpperCase();
  return names.get(squash(v));
}

function countryTable(): { codes: Set<string>; names: Map<string, string> } {
  if (countries) return countries;
  const codes = new Set<string>();
  const names = new Map<string, string>();
  const displays = ['en', 'ja'].map((l) => new Intl.DisplayNames([l], { type: 'region' }));
  const A = 'A'.charCodeAt(0);
  for (let i = 0; i < 26; i++) {
    for (let j = 0; j < 26; j++) {
      const code = String.fromCharCode(A + i, A + j);
      if (NOT_COUNTRIES.test(code)) continue;
      for (const d of displays) {
        const name = d.of(code);
        // Unknown codes come back as themselves.
        if (!name || name === code) continue;
        codes.add(code);
        names.set(squash(name), code);
      }
    }
  }
  for (const [alias, code] of Object.entries(COUNTRY_ALIASES)) names.set(squash(alias), code);
  countries = { codes, names };
  return countries;
}

/**
 * Region codes that are not ISO 3166-1 countries: user-assigned (AA, QM–QZ, XA–XZ, ZZ), groupings
 * (EU, EZ, UN) and the reserved UK (the code is GB).
 */
const NOT_COUNTRIES = /^(AA|Q[M-Z]|X[A-Z]|ZZ|EU|EZ|UN|UK)$/;

/** Names CRMs commonly hold that the display names do not give. */
const COUNTRY_ALIASES: Record<string, string> = {
  USA: 'US',
  'United States of America': 'US',
  UK: 'GB',
  'Great Britain': 'GB',
  England: 'GB',
  Korea: 'KR',
  'Republic of Korea': 'KR',
  'South Korea': 'KR',
  日本国: 'JP',
  アメリカ: 'US',
  米国: 'US',
  イギリス: 'GB',
  英国: 'GB',
  韓国: 'KR',
};

function squash(s: string): string {
  return s
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\s.,'’()-]+/g, '');
}

function text(v: string | null | undefined): boolean {
  return typeof v === 'string' && v.trim() !== '';
}
