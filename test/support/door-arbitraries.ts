import { deflateSync, gzipSync } from 'node:zlib';

import fc from 'fast-check';

import { MAX_JSON_DEPTH } from '../../src/webhooks/json-body';
import { Header } from './door-harness';
import { record } from './door-oracle';

/**
 * Generators of the door properties (test/integration/door-properties): event templates and their
 * identities, and every way a delivery is changed — its body (before or after signing), its
 * signature headers, its timestamp, its content type. What the hub must answer to each is the
 * oracle's (door-oracle.ts).
 */

// ---------------------------------------------------------------------------------------------
// Templates: event bodies with placeholders for the identity of each delivery
// ---------------------------------------------------------------------------------------------

/** Replaced by the delivery's token (a fresh, unique string). */
export const ID = '§id§';
/** Replaced by a fresh, unique integer (HubSpot objectIds). */
export const NUM = '§num§';

const RUN = Date.now().toString(36);
let tokens = 0;
let numbers = Date.now() * 100; // < 2^53, unique within a run of the suite

/** A fresh identity token: never seen by the hub's database in this run. */
export const freshToken = (): string => `${RUN}${(++tokens).toString(36)}`;

/** In an array template: a copy of the array's element at this index (once filled), e.g. a HubSpot redelivery. */
export const COPY = '§copy§';

/**
 * The template with its placeholders filled: every `§id§` in strings by `token`, `§num§` by a new
 * number, `{ "§copy§": i }` in an array by a copy of its element i (modulo the elements before it).
 */
export function instantiate(template: unknown, token: string): unknown {
  if (template === NUM) return ++numbers;
  if (typeof template === 'string') return template.split(ID).join(token);
  if (Array.isArray(template)) {
    const out: unknown[] = [];
    for (const v of template) {
      const copy = record(v)?.[COPY];
      out.push(
        typeof copy === 'number' && out.length > 0
          ? structuredClone(out[copy % out.length])
          : instantiate(v, token),
      );
    }
    return out;
  }
  if (template !== null && typeof template === 'object') {
    return Object.fromEntries(Object.entries(template).map(([k, v]) => [k, instantiate(v, token)]));
  }
  return template;
}

// ---------------------------------------------------------------------------------------------
// Small arbitraries
// ---------------------------------------------------------------------------------------------

/** Printable text in any script (no lone surrogates). */
export const text = (maxLength = 24) =>
  fc.string({ unit: 'grapheme', maxLength }).filter((s) => !s.includes('\u0000'));
const word = fc.stringMatching(/^[a-z][a-z0-9_]{0,11}$/);
const isoMinute = fc
  .date({
    min: new Date('2020-01-01T00:00:00Z'),
    max: new Date('2030-12-31T00:00:00Z'),
    noInvalidDate: true,
  })
  .map((d) => d.toISOString());
/** DocuSign and Partner Center write seven fractional digits. */
const isoTicks = fc
  .tuple(isoMinute, fc.integer({ min: 0, max: 9_999_999 }))
  .map(([iso, ticks]) => `${iso.slice(0, 19)}.${String(ticks).padStart(7, '0')}Z`);
const epochMs = fc.integer({ min: 1_500_000_000_000, max: 1_900_000_000_000 });

/** Extra fields a provider may add at any time: the hub must not care. */
const extras = fc.dictionary(
  word.filter((k) => !k.startsWith('_')),
  fc.jsonValue({ maxDepth: 2 }),
  { maxKeys: 3 },
);

// ---------------------------------------------------------------------------------------------
// Body transformations (made before signing, or after it)
// ---------------------------------------------------------------------------------------------

export type BodyChange =
  | { t: 'truncate'; at: number }
  | { t: 'reencode'; as: 'utf16le' | 'utf16be' | 'utf16le+bom' | 'latin1' | 'utf8+bom' }
  | { t: 'compress'; as: 'gzip' | 'deflate'; contentEncoding: string | null }
  | { t: 'duplicate-key'; key: string; value: unknown; injectedWins: boolean }
  | { t: 'numbers-as-strings'; everyNth: number }
  | { t: 'garbage'; value: unknown }
  | { t: 'deep'; depth: number; kind: 'array' | 'object'; where: 'body' | 'field' }
  | { t: 'unstorable'; what: 'nul' | 'lone-surrogate' | 'huge-exponent' }
  | { t: 'drop-key'; key: string }
  | { t: 'retype-key'; key: string; value: unknown }
  | { t: 'wrap'; as: 'array' | 'string' | 'object' }
  | { t: 'pad'; before: string; after: string }
  | { t: 'trailing'; junk: string }
  | { t: 'flip-byte'; at: number; xor: number }
  | { t: 'empty' };

/** Deeply nested JSON text: `depth` levels of arrays (or objects) around a 1. */
export function nested(depth: number, kind: 'array' | 'object'): string {
  return kind === 'array'
    ? `${'['.repeat(depth)}1${']'.repeat(depth)}`
    : `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
}

/** Inserts `"key":<raw>` as the first member (`last` false) or the last one of the first object in `json`. */
function injectMember(json: string, key: string, raw: string, last: boolean): string {
  const open = json.indexOf('{');
  if (open < 0) return json;
  if (!last) {
    const empty = /^\{\s*\}/.test(json.slice(open));
    return `${json.slice(0, open + 1)}${JSON.stringify(key)}:${raw}${empty ? '' : ','}${json.slice(open + 1)}`;
  }
  // The first object's closing brace: scan with string awareness.
  let depth = 0;
  let inString = false;
  for (let i = open; i < json.length; i++) {
    const c = json[i];
    if (inString) {
      if (c === '\\') i++;
      else if (c === '"') inString = false;
    } else if (c === '"') inString = true;
    else if (c === '{' || c === '[') depth++;
    else if (c === '}' || c === ']') {
      if (--depth === 0) {
        const empty = /\{\s*$/.test(json.slice(0, i));
        return `${json.slice(0, i)}${empty ? '' : ','}${JSON.stringify(key)}:${raw}${json.slice(i)}`;
      }
    }
  }
  return json;
}

/** The first object of the body: the event, or a HubSpot batch's first element. */
function firstObject(body: unknown): Record<string, unknown> | undefined {
  return record(body) ?? (Array.isArray(body) ? record(body[0]) : undefined);
}

function numbersAsStrings(v: unknown, every: number, counter = { n: 0 }): unknown {
  if (typeof v === 'number') return ++counter.n % every === 0 ? String(v) : v;
  if (Array.isArray(v)) return v.map((x) => numbersAsStrings(x, every, counter));
  const r = record(v);
  if (r)
    return Object.fromEntries(
      Object.entries(r).map(([k, x]) => [k, numbersAsStrings(x, every, counter)]),
    );
  return v;
}

/** Applies a change to a body made from `event` (serialised as `json`). */
export function changeBody(
  event: unknown,
  change: BodyChange,
): { body: Buffer; headers: Header[] } {
  const json = JSON.stringify(event);
  const utf8 = Buffer.from(json, 'utf8');
  const plain = (s: string) => ({ body: Buffer.from(s, 'utf8'), headers: [] as Header[] });
  switch (change.t) {
    case 'truncate':
      return { body: utf8.subarray(0, Math.floor(utf8.length * change.at)), headers: [] };
    case 'reencode': {
      const le = Buffer.from(json, 'utf16le');
      const body =
        change.as === 'utf16le'
          ? le
          : change.as === 'utf16le+bom'
            ? Buffer.concat([Buffer.from([0xff, 0xfe]), le])
            : change.as === 'utf16be'
              ? Buffer.from(le).swap16()
              : change.as === 'latin1'
                ? Buffer.from(json, 'latin1')
                : Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), utf8]);
      return { body, headers: [] };
    }
    case 'compress':
      return {
        body: change.as === 'gzip' ? gzipSync(utf8) : deflateSync(utf8),
        headers: change.contentEncoding ? [['content-encoding', change.contentEncoding]] : [],
      };
    case 'duplicate-key':
      return plain(
        injectMember(json, change.key, JSON.stringify(change.value), change.injectedWins),
      );
    case 'numbers-as-strings':
      return plain(JSON.stringify(numbersAsStrings(event, change.everyNth)));
    case 'garbage':
      return plain(JSON.stringify(change.value));
    case 'deep':
      return plain(
        change.where === 'body'
          ? nested(change.depth, change.kind)
          : injectMember(json, 'deep', nested(change.depth, change.kind), true),
      );
    case 'unstorable': {
      const raw =
        change.what === 'nul'
          ? '"nul \\u0000 here"'
          : change.what === 'lone-surrogate'
            ? '"\\ud800"'
            : '1e1000000';
      return plain(injectMember(json, 'note', raw, true));
    }
    case 'drop-key': {
      const target = firstObject(event);
      if (target) delete target[change.key];
      return plain(JSON.stringify(event));
    }
    case 'retype-key': {
      const target = firstObject(event);
      if (target) target[change.key] = change.value;
      return plain(JSON.stringify(event));
    }
    case 'wrap':
      return plain(
        change.as === 'array'
          ? `[${json}]`
          : change.as === 'string'
            ? JSON.stringify(json)
            : `{"event":${json}}`,
      );
    case 'pad':
      return plain(`${change.before}${json}${change.after}`);
    case 'trailing':
      return plain(`${json}${change.junk}`);
    case 'flip-byte': {
      const body = Buffer.from(utf8);
      if (body.length > 0) {
        const i = Math.min(body.length - 1, Math.floor(body.length * change.at));
        body[i] ^= change.xor;
      }
      return { body, headers: [] };
    }
    case 'empty':
      return { body: Buffer.alloc(0), headers: [] };
  }
}

/** Body changes for a kit whose events carry `keys` (identity fields and type first). */
export function bodyChange(keys: string[]): fc.Arbitrary<BodyChange> {
  const key = fc.constantFrom(...keys);
  const junk = fc.oneof(
    fc.constant(null),
    fc.constant(''),
    fc.constant({}),
    fc.constant([]),
    fc.boolean(),
    fc.double(),
    fc.integer(),
    text(8),
  );
  return fc.oneof(
    fc.record({
      t: fc.constant('truncate' as const),
      at: fc.double({ min: 0, max: 0.999, noNaN: true }),
    }),
    fc.record({
      t: fc.constant('reencode' as const),
      as: fc.constantFrom(
        'utf16le',
        'utf16be',
        'utf16le+bom',
        'latin1',
        'utf8+bom',
      ) as fc.Arbitrary<'utf16le' | 'utf16be' | 'utf16le+bom' | 'latin1' | 'utf8+bom'>,
    }),
    fc.record({
      t: fc.constant('compress' as const),
      as: fc.constantFrom('gzip', 'deflate') as fc.Arbitrary<'gzip' | 'deflate'>,
      contentEncoding: fc.constantFrom(null, 'gzip', 'deflate', 'br', 'identity'),
    }),
    fc.record({
      t: fc.constant('duplicate-key' as const),
      key,
      value: fc.oneof(
        junk,
        text(8).map((s) => `dup-${s}`),
      ),
      injectedWins: fc.boolean(),
    }),
    fc.record({
      t: fc.constant('numbers-as-strings' as const),
      everyNth: fc.integer({ min: 1, max: 3 }),
    }),
    fc.record({ t: fc.constant('garbage' as const), value: fc.jsonValue({ maxDepth: 3 }) }),
    fc.record({
      t: fc.constant('deep' as const),
      depth: fc.constantFrom(
        10_000,
        100_000,
        MAX_JSON_DEPTH - 3,
        MAX_JSON_DEPTH - 2,
        MAX_JSON_DEPTH - 1,
        MAX_JSON_DEPTH,
        MAX_JSON_DEPTH + 1,
      ),
      kind: fc.constantFrom('array', 'object') as fc.Arbitrary<'array' | 'object'>,
      where: fc.constantFrom('body', 'field') as fc.Arbitrary<'body' | 'field'>,
    }),
    fc.record({
      t: fc.constant('unstorable' as const),
      what: fc.constantFrom('nul', 'lone-surrogate', 'huge-exponent') as fc.Arbitrary<
        'nul' | 'lone-surrogate' | 'huge-exponent'
      >,
    }),
    fc.record({ t: fc.constant('drop-key' as const), key }),
    fc.record({ t: fc.constant('retype-key' as const), key, value: junk }),
    fc.record({
      t: fc.constant('wrap' as const),
      as: fc.constantFrom('array', 'string', 'object') as fc.Arbitrary<
        'array' | 'string' | 'object'
      >,
    }),
    fc.record({
      t: fc.constant('pad' as const),
      before: fc.stringMatching(/^[ \t\r\n]{0,4}$/),
      after: fc.stringMatching(/^[ \t\r\n]{0,4}$/),
    }),
    fc.record({
      t: fc.constant('trailing' as const),
      junk: fc.constantFrom(',', '}', ']', 'x', '{}', '\u0000', ' 1'),
    }),
    fc.record({
      t: fc.constant('flip-byte' as const),
      at: fc.double({ min: 0, max: 0.999, noNaN: true }),
      xor: fc.integer({ min: 1, max: 255 }),
    }),
    fc.constant({ t: 'empty' as const }),
  );
}

// ---------------------------------------------------------------------------------------------
// Header mutations
// ---------------------------------------------------------------------------------------------

export type ValueMangle =
  | { m: 'flip'; at: number; to: string }
  | { m: 'delete'; at: number }
  | { m: 'insert'; at: number; c: string }
  | { m: 'truncate'; keep: number }
  | { m: 'case'; upper: boolean }
  | { m: 'urlsafe' }
  | { m: 'unpad' }
  | { m: 'pad' }
  | { m: 'surround'; ws: string }
  | { m: 'empty' }
  | { m: 'long'; n: number }
  | { m: 'double' }
  | { m: 'reverse' };

export function mangle(value: string, how: ValueMangle): string {
  const at = (f: number) => Math.min(value.length, Math.floor(value.length * f));
  switch (how.m) {
    case 'flip': {
      const i = Math.min(value.length - 1, at(how.at));
      if (i < 0) return how.to;
      return value.slice(0, i) + how.to + value.slice(i + 1);
    }
    case 'delete':
      return value.slice(0, at(how.at)) + value.slice(at(how.at) + 1);
    case 'insert':
      return value.slice(0, at(how.at)) + how.c + value.slice(at(how.at));
    case 'truncate':
      return value.slice(0, Math.floor(value.length * how.keep));
    case 'case':
      return how.upper ? value.toUpperCase() : value.toLowerCase();
    case 'urlsafe':
      return value.replace(/\+/g, '-').replace(/\//g, '_');
    case 'unpad':
      return value.replace(/=+$/, '');
    case 'pad':
      return `${value}=`;
    case 'surround':
      return `${how.ws}${value}${how.ws}`;
    case 'empty':
      return '';
    case 'long':
      return value + 'A'.repeat(how.n);
    case 'double':
      return value + value;
    case 'reverse':
      return [...value].reverse().join('');
  }
}

const printable = fc.stringMatching(/^[\x21-\x7e]$/);

export const valueMangle: fc.Arbitrary<ValueMangle> = fc.oneof(
  fc.record({
    m: fc.constant('flip' as const),
    at: fc.double({ min: 0, max: 0.999, noNaN: true }),
    to: printable,
  }),
  fc.record({
    m: fc.constant('delete' as const),
    at: fc.double({ min: 0, max: 0.999, noNaN: true }),
  }),
  fc.record({
    m: fc.constant('insert' as const),
    at: fc.double({ min: 0, max: 1, noNaN: true }),
    c: printable,
  }),
  fc.record({
    m: fc.constant('truncate' as const),
    keep: fc.double({ min: 0, max: 0.999, noNaN: true }),
  }),
  fc.record({ m: fc.constant('case' as const), upper: fc.boolean() }),
  fc.constant({ m: 'urlsafe' as const }),
  fc.constant({ m: 'unpad' as const }),
  fc.constant({ m: 'pad' as const }),
  fc.record({ m: fc.constant('surround' as const), ws: fc.constantFrom(' ', '\t', '  ') }),
  fc.constant({ m: 'empty' as const }),
  fc.record({ m: fc.constant('long' as const), n: fc.integer({ min: 1, max: 4000 }) }),
  fc.constant({ m: 'double' as const }),
  fc.constant({ m: 'reverse' as const }),
);

export type HeaderMutation =
  | { h: 'remove'; which: number }
  | { h: 'duplicate'; which: number; mangled: ValueMangle | null; atEnd: boolean }
  | { h: 'recase'; which: number; style: 'upper' | 'lower' | 'title' | 'random'; seed: number }
  | { h: 'mangle'; which: number; how: ValueMangle }
  | { h: 'swap'; which: number; with: number }
  | { h: 'rename'; which: number; to: 'prefix' | 'suffix' | 'zero' | 'underscore' }
  | { h: 'shuffle'; keys: number[] }
  /** The same change to every signature header (one of several signatures may otherwise hold). */
  | { h: 'each'; m: Extract<HeaderMutation, { which: number }> };

const onOne = {
  remove: fc.record({ h: fc.constant('remove' as const), which: fc.nat() }),
  duplicate: fc.record({
    h: fc.constant('duplicate' as const),
    which: fc.nat(),
    mangled: fc.option(valueMangle, { nil: null }),
    atEnd: fc.boolean(),
  }),
  recase: fc.record({
    h: fc.constant('recase' as const),
    which: fc.nat(),
    style: fc.constantFrom('upper', 'lower', 'title', 'random') as fc.Arbitrary<
      'upper' | 'lower' | 'title' | 'random'
    >,
    seed: fc.nat(),
  }),
  mangle: fc.record({ h: fc.constant('mangle' as const), which: fc.nat(), how: valueMangle }),
  rename: fc.record({
    h: fc.constant('rename' as const),
    which: fc.nat(),
    to: fc.constantFrom('prefix', 'suffix', 'zero', 'underscore') as fc.Arbitrary<
      'prefix' | 'suffix' | 'zero' | 'underscore'
    >,
  }),
};

export const headerMutation: fc.Arbitrary<HeaderMutation> = fc.oneof(
  ...Object.values(onOne),
  fc.record({ h: fc.constant('swap' as const), which: fc.nat(), with: fc.nat() }),
  fc.record({
    h: fc.constant('shuffle' as const),
    keys: fc.array(fc.nat(), { minLength: 8, maxLength: 8 }),
  }),
  fc.record({ h: fc.constant('each' as const), m: fc.oneof(...Object.values(onOne)) }),
);

export function recase(
  name: string,
  style: 'upper' | 'lower' | 'title' | 'random',
  seed: number,
): string {
  switch (style) {
    case 'upper':
      return name.toUpperCase();
    case 'lower':
      return name.toLowerCase();
    case 'title':
      return name.replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => dash + c.toUpperCase());
    case 'random':
      return [...name]
        .map((c, i) => (((seed >> (i % 30)) & 1) === 1 ? c.toUpperCase() : c.toLowerCase()))
        .join('');
  }
}

/**
 * Applies `m` to `headers`, where the first `targets` entries are the signature headers (the
 * mutation targets; `which` picks one modulo their number).
 */
export function mutateHeaders(headers: Header[], targets: number, m: HeaderMutation): Header[] {
  const out = headers.map(([n, v]): Header => [n, v]);
  // Earlier mutations may have removed signature headers: pick among the first ones left.
  const among = Math.min(targets, out.length);
  if (among === 0) return out;
  const pick = (which: number) => which % among;
  switch (m.h) {
    case 'remove':
      out.splice(pick(m.which), 1);
      return out;
    case 'duplicate': {
      const [n, v] = out[pick(m.which)];
      const copy: Header = [n, m.mangled ? mangle(v, m.mangled) : v];
      if (m.atEnd) out.push(copy);
      else out.splice(pick(m.which) + 1, 0, copy);
      return out;
    }
    case 'recase':
      out[pick(m.which)][0] = recase(out[pick(m.which)][0], m.style, m.seed);
      return out;
    case 'mangle':
      out[pick(m.which)][1] = mangle(out[pick(m.which)][1], m.how);
      return out;
    case 'swap': {
      const a = pick(m.which);
      const b = pick(m.with);
      [out[a][1], out[b][1]] = [out[b][1], out[a][1]];
      return out;
    }
    case 'rename': {
      const [n] = out[pick(m.which)];
      out[pick(m.which)][0] =
        m.to === 'prefix'
          ? `x-${n}`
          : m.to === 'suffix'
            ? `${n}-2`
            : m.to === 'zero'
              ? n.replace(/(\d+)$/, '0$1')
              : n.replace(/-/g, '_');
      return out;
    }
    case 'shuffle':
      return out
        .map((h, i) => ({ h, k: m.keys[i % m.keys.length] * 16 + i }))
        .sort((x, y) => x.k - y.k)
        .map((x) => x.h);
    case 'each': {
      // From the last target to the first, so removals and copies do not shift the ones to come.
      let each = out;
      for (let i = targets - 1; i >= 0; i--)
        each = mutateHeaders(each, targets, { ...m.m, which: i });
      return each;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Content types and timestamps
// ---------------------------------------------------------------------------------------------

/** Content-Type values (null: none sent). The door verifies the bytes whatever the type says. */
export const contentType: fc.Arbitrary<string | null> = fc.oneof(
  fc.constantFrom(
    'application/json',
    'application/json; charset=utf-8',
    'application/json; charset=UTF-8',
    'application/json;charset=utf-16',
    'text/plain',
    'text/html',
    'application/x-www-form-urlencoded',
    'multipart/form-data; boundary=x',
    'application/octet-stream',
    'application/xml',
    'image/png',
    'application/json, text/plain',
    'application/json;;;',
    'application/json; charset="',
    'garbage',
    '/',
    'a/b/c',
    '*/*',
    '',
    ' ',
  ),
  fc.constant(null),
  fc.stringMatching(/^[\x20-\x7e]{0,40}$/),
);

/** A timestamp relative to now, or a text that is no timestamp at all. */
export type TimestampShape = { ts: 'offset'; seconds: number } | { ts: 'text'; value: string };

/** Within ±270 s (CONTRACT: 5 minutes, with room for a slow run), beyond ±330 s, and non-numbers. */
export const timestampShape: fc.Arbitrary<TimestampShape> = fc.oneof(
  fc.record({ ts: fc.constant('offset' as const), seconds: fc.integer({ min: -270, max: 270 }) }),
  fc.record({
    ts: fc.constant('offset' as const),
    seconds: fc.oneof(
      fc.integer({ min: 330, max: 3_600 }),
      fc.integer({ min: -3_600, max: -330 }),
      fc.integer({ min: 3_600, max: 100 * 365 * 86_400 }),
      fc.integer({ min: -50 * 365 * 86_400, max: -3_600 }),
    ),
  }),
  fc.record({
    ts: fc.constant('text' as const),
    value: fc.constantFrom(
      '',
      '0',
      '1',
      '-1',
      'abc',
      '1e9',
      '0x10',
      'NaN',
      'Infinity',
      '9999999999999999',
      '99999999999999999999',
      '1.5',
      '١٢٣',
      '+1',
    ),
  }),
);

/** The timestamp text for a shape, in the kit's unit. */
export function timestampText(shape: TimestampShape, nowMs: number, unit: 's' | 'ms'): string {
  if (shape.ts === 'text') return shape.value;
  const ms = nowMs + shape.seconds * 1000;
  return String(unit === 's' ? Math.floor(ms / 1000) : ms);
}

/** Whether a timestamp shape is inside the 5-minute window both ways. */
export const withinWindow = (shape: TimestampShape): boolean =>
  shape.ts === 'offset' && Math.abs(shape.seconds) <= 270;

export { epochMs, extras, isoMinute, isoTicks, word };
