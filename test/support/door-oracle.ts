import type fc from 'fast-check';

import { WebhookSource } from '../../src/config/providers';
import { MAX_JSON_DEPTH } from '../../src/webhooks/json-body';
import { Header } from './door-harness';

/**
 * The oracle of the door properties (test/integration/door-properties): what a provider kit says
 * about its deliveries, and what the hub must answer to each. It knows the CONTRACT, not the hub's
 * code: each provider's event identity (§3.1–3.5), the event types the hub uses, that 2xx means
 * stored and that nothing else stores. A signature survives a header mutation when the server still
 * sees the original signature bytes where the provider's scheme looks for them (Node's rules for
 * repeated headers applied first). The providers' signing stays in tools/simulator and src: a kit
 * only says which of its headers carry what.
 */

// ---------------------------------------------------------------------------------------------
// The kits
// ---------------------------------------------------------------------------------------------

/** One event the oracle expects the hub to store. */
export interface ExpectedEvent {
  identity: string;
  type: string;
  /** IGNORED at the door for a type the hub does not use; RECEIVED for the worker otherwise. */
  status: 'RECEIVED' | 'IGNORED' | 'RECEIVED or IGNORED';
  payload: unknown;
}

/** What the CONTRACT makes of a correctly signed, parsed body. */
export type Identified =
  { refused: string } | { events: ExpectedEvent[]; duplicates: number; skipped: number };

/** Node's view of the request headers: lower-case names, repeated headers merged (see serverView). */
export type HeaderView = Map<string, string>;

export interface SignContext {
  /** The delivery's token (its Standard Webhooks `webhook-id` is derived from it). */
  token: string;
  /** Signing time, epoch ms. */
  nowMs: number;
  /** Sign with a key the hub does not know. */
  wrongKey?: boolean;
  /** Timestamped schemes: this exact timestamp text instead of the one for `nowMs`. */
  timestamp?: string;
  /** HubSpot: the path and query the signature covers (default the door's path). */
  url?: string;
}

export interface DoorKit {
  provider: WebhookSource;
  path: string;
  /** A well-formed event body (template) of the provider. */
  event: fc.Arbitrary<unknown>;
  /** Headers the provider always sends besides the signature (content type aside). */
  plainHeaders: Header[];
  /** The signature headers for `body` (lower-case names, in the provider's order). */
  sign(body: Buffer, ctx: SignContext): Header[];
  /**
   * Does the server-side view `got` still carry the signature of `signed` (same body)? `maybe`
   * where the answer depends on more than the headers (a Partner Center certificate URL).
   */
  stillSigned(got: HeaderView, signed: HeaderView): boolean | 'maybe';
  /** Timestamped schemes: the unit of their signed timestamp. */
  timestampUnit?: 's' | 'ms';
  /** The CONTRACT's reading of a correctly signed, parsed body. */
  identify(body: unknown, view: HeaderView): Identified;
  /**
   * Whether a signature made over `a` also covers `b`: byte equality, except where a provider's
   * verifier hashes something else than the bytes (Stripe's SDK hashes the UTF-8 decoding).
   */
  signedAlike(a: Buffer, b: Buffer): boolean;
  /** Names of the headers sign() writes, in its order (the mutation targets). */
  signatureHeaders: string[];
}

/** An identity part as CONTRACT §3 reads it: a non-empty string, or a finite number as its text. */
export function part(v: unknown): string | undefined {
  if (typeof v === 'string' && v !== '') return v;
  if (typeof v === 'number' && Number.isFinite(v)) return String(v);
  return undefined;
}

export const record = (v: unknown): Record<string, unknown> | undefined =>
  v !== null && typeof v === 'object' && !Array.isArray(v)
    ? (v as Record<string, unknown>)
    : undefined;

/** A single-event delivery: its identity parts and type, or the reason it has none. */
export function single(
  body: unknown,
  parts: unknown[],
  type: unknown,
  used: (type: string) => ExpectedEvent['status'],
): Identified {
  const ids = parts.map(part);
  const t = part(type);
  if (!t || ids.some((p) => p === undefined)) return { refused: 'no identity or type' };
  return {
    events: [{ identity: ids.join('|'), type: t, status: used(t), payload: body }],
    duplicates: 0,
    skipped: 0,
  };
}

export const usedOf =
  (types: readonly string[]) =>
  (type: string): ExpectedEvent['status'] =>
    types.includes(type) ? 'RECEIVED' : 'IGNORED';

// ---------------------------------------------------------------------------------------------
// Base64 and header views
// ---------------------------------------------------------------------------------------------

/** A base64 value as a verifier decodes it (plain alphabet, optional padding); undefined otherwise. */
function b64(value: string): string | undefined {
  const t = value.trim();
  return /^[A-Za-z0-9+/]+={0,2}$/.test(t) ? Buffer.from(t, 'base64').toString('hex') : undefined;
}

/** Same signature bytes? */
export const sameB64 = (a: string | undefined, b: string | undefined): boolean =>
  a !== undefined && b !== undefined && b64(a) !== undefined && b64(a) === b64(b);

/** Headers Node keeps only the first of when repeated (node:_http_incoming matchKnownFields). */
const FIRST_WINS = new Set([
  'content-type',
  'content-length',
  'user-agent',
  'referer',
  'host',
  'authorization',
  'proxy-authorization',
  'if-modified-since',
  'if-unmodified-since',
  'from',
  'location',
  'max-forwards',
  'retry-after',
  'etag',
  'last-modified',
  'server',
  'age',
  'expires',
]);

/** The headers as the hub sees them: names lower-cased, values trimmed, repeats merged as Node does. */
export function serverView(headers: Header[]): HeaderView {
  const view: HeaderView = new Map();
  for (const [rawName, rawValue] of headers) {
    const name = rawName.toLowerCase();
    const value = rawValue.replace(/^[ \t]+|[ \t]+$/g, '');
    const seen = view.get(name);
    if (seen === undefined) view.set(name, value);
    else if (FIRST_WINS.has(name)) continue;
    else view.set(name, `${seen}${name === 'cookie' ? '; ' : ', '}${value}`);
  }
  return view;
}

// ---------------------------------------------------------------------------------------------
// The oracle for a correctly signed body
// ---------------------------------------------------------------------------------------------

/** Nesting depth of valid JSON text (brackets outside strings). */
export function jsonDepth(json: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 92) i++;
      else if (c === 34) inString = false;
    } else if (c === 34) inString = true;
    else if (c === 91 || c === 123) max = Math.max(max, ++depth);
    else if (c === 93 || c === 125) depth--;
  }
  return max;
}

const LONE_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;

/** Text Postgres cannot hold in jsonb: NUL, or a lone surrogate (in a key or a string). */
/** A number JSON.parse could not hold (Infinity), anywhere in a parsed value. */
function nonFinite(v: unknown): boolean {
  if (typeof v === 'number') return !Number.isFinite(v);
  if (Array.isArray(v)) return v.some(nonFinite);
  const r = record(v);
  return r ? Object.values(r).some(nonFinite) : false;
}

function unstorableText(v: unknown): boolean {
  const bad = (s: string) => s.includes('\u0000') || LONE_SURROGATE.test(s);
  if (typeof v === 'string') return bad(v);
  if (Array.isArray(v)) return v.some(unstorableText);
  const r = record(v);
  return r ? Object.entries(r).some(([k, x]) => bad(k) || unstorableText(x)) : false;
}

/**
 * A number literal (outside strings) whose exponent no Postgres numeric holds. The changes above
 * write 1e1000000; generated doubles stay within ±324.
 */
function hugeExponent(json: string): boolean {
  return /[eE][+-]?\d{7,}/.test(json.replace(/"(?:[^"\\]|\\.)*"/g, '""'));
}

export type Verdict =
  /** 2xx, and exactly these rows are written. */
  | { kind: 'stored'; events: ExpectedEvent[]; duplicates: number; skipped: number }
  /** Either the stored verdict, or 401 and nothing written. */
  | { kind: 'stored-or-401'; stored: Extract<Verdict, { kind: 'stored' }> }
  /**
   * This status with the error JSON; nothing is written. `orReset`: a chunked body over the limit,
   * which the hub stops reading, answers and closes: a client still sending may see the close first.
   */
  | { kind: 'refused'; status: 400 | 401 | 413; why: string; orReset?: boolean }
  /** Over Node's header limit: Node answers 431 itself (or the client sees the reset); nothing is written. */
  | { kind: 'head-too-large' };

const refused = (status: 400 | 401 | 413, why: string): Verdict => ({
  kind: 'refused',
  status,
  why,
});

/**
 * What the hub must do with a correctly signed `body` (CONTRACT §3): 400 for a body that is not
 * UTF-8 JSON (RFC 8259 §8.1), nests deeper than the door takes, or that the provider's identity
 * rule cannot read, or that Postgres cannot hold; otherwise 2xx with exactly the events the
 * identity rule finds.
 */
export function signedVerdict(
  kit: DoorKit,
  body: Buffer,
  view: HeaderView,
  opts: { storesParsedElements?: boolean } = {},
): Verdict {
  let json: string;
  try {
    json = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(body);
  } catch {
    return refused(400, 'not UTF-8');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(json);
  } catch {
    return refused(400, 'not JSON');
  }
  if (jsonDepth(json) > MAX_JSON_DEPTH) return refused(400, 'nested too deep');
  const found = kit.identify(parsed, view);
  if ('refused' in found) return refused(400, found.refused);
  if (opts.storesParsedElements) {
    // HubSpot: an element Postgres cannot hold (text it refuses, or a number JSON.parse made
    // Infinity of) is skipped on its own; the delivery is refused only when no element can be held.
    const bad = found.events.filter((e) => unstorableText(e.payload) || nonFinite(e.payload));
    if (bad.length > 0 && bad.length === found.events.length)
      return refused(400, 'no storable element');
    return {
      kind: 'stored',
      events: found.events.filter((e) => !bad.includes(e)),
      duplicates: found.duplicates,
      skipped: found.skipped + bad.length,
    };
  }
  if (found.events.some((e) => unstorableText(e.payload))) return refused(400, 'unstorable text');
  // A number Postgres' numeric cannot hold (|exponent| beyond its range): unstorable as sent.
  if (hugeExponent(json) && found.events.length > 0) return refused(400, 'number out of range');
  return { kind: 'stored', ...found };
}
