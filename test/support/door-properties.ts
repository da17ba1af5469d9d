import fc from 'fast-check';

import {
  BodyChange,
  HeaderMutation,
  TimestampShape,
  bodyChange,
  changeBody,
  contentType,
  freshToken,
  headerMutation,
  instantiate,
  mutateHeaders,
  recase,
  timestampShape,
  timestampText,
  withinWindow,
} from './door-arbitraries';
import { DoorKit, SignContext, Verdict, record, serverView, signedVerdict } from './door-oracle';
import {
  DoorRig,
  Header,
  HttpAnswer,
  Reset,
  RowCounts,
  Wire,
  countedHeadBytes,
  timedGet,
} from './door-harness';

/**
 * The properties every webhook door keeps (CONTRACT §3), run against one provider kit: thousands of
 * generated and mutated deliveries over real HTTP (keep-alive) to an api-only hub, each checked
 * against the oracle (door-oracle.ts) and against the rows it wrote. Fixed seed; fast-check
 * prints the seed and the shrunk counterexample of a failure (DOOR_PROPERTIES_SEED reruns another
 * seed, DOOR_PROPERTIES_RUNS scales the number of runs).
 */

export const SEED = Number(process.env.DOOR_PROPERTIES_SEED ?? 20_261_207);
const SCALE = Number(process.env.DOOR_PROPERTIES_RUNS ?? 1);

export const runs = (n: number): fc.Parameters<unknown> => ({
  seed: SEED,
  numRuns: Math.max(1, Math.round(n * SCALE)),
});

/** Node's default `--max-http-header-size` (see countedHeadBytes): from it on Node answers 431 itself. */
export const NODE_MAX_HEADER_BYTES = 16 * 1024;
const MIB = 1024 * 1024;

export interface DoorSuite {
  rig: () => DoorRig;
  kit: DoorKit;
  /** A body of the kit's event, fresh identity. */
  freshEvent(template: unknown): { token: string; event: unknown; body: Buffer };
  /** The full signed wire of `body` (signature headers first, then the kit's plain headers). */
  signedWire(body: Buffer, ctx: SignContext, extra?: Header[]): Wire;
  /** Sends `wire` and checks the answer and the rows against `verdict`. */
  deliver(
    wire: Wire,
    verdict: Verdict,
    opts?: { headFirst?: boolean },
  ): Promise<HttpAnswer | Reset>;
  verdictOf(body: Buffer, wire: Wire): Verdict;
}

const canonical = (v: unknown): string =>
  JSON.stringify(v, (_k, x: unknown) =>
    x !== null && typeof x === 'object' && !Array.isArray(x)
      ? Object.fromEntries(Object.entries(x).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : x,
  );

function json(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return text;
  }
}

export function doorSuite(
  kit: DoorKit,
  rig: () => DoorRig,
  storesParsedElements = false,
): DoorSuite {
  let counted: RowCounts | undefined;
  const signedWire = (body: Buffer, ctx: SignContext, extra: Header[] = []): Wire => ({
    path: ctx.url ?? kit.path,
    headers: [
      ...kit.sign(body, ctx),
      ...kit.plainHeaders,
      ['content-type', 'application/json'],
      ...extra,
    ],
    body,
  });

  const verdictOf = (body: Buffer, wire: Wire) =>
    signedVerdict(kit, body, serverView(wire.headers), { storesParsedElements });

  async function deliver(
    wire: Wire,
    verdict: Verdict,
    opts: { headFirst?: boolean } = {},
  ): Promise<HttpAnswer | Reset> {
    const { http, db } = rig();
    // Nothing else writes while a property runs: the counts after one delivery are the counts
    // before the next (read again after a failure).
    const before = counted ?? (await db.counts());
    counted = undefined;
    const answer = await http.send(wire, { headFirst: opts.headFirst });
    const after = await db.counts();
    try {
      await check(answer, before, after, verdict);
      counted = after;
    } catch (err) {
      // What was sent and answered, beside fast-check's counterexample (which shows the inputs).
      const body =
        wire.body.length > 300
          ? `${wire.body.subarray(0, 300).toString('latin1')}…`
          : wire.body.toString('latin1');
      (err as Error).message +=
        `\n\nverdict: ${JSON.stringify(verdict).slice(0, 500)}` +
        `\nsent: POST ${wire.path} ${JSON.stringify(wire.headers).slice(0, 2000)} (${wire.body.length} bytes) ${JSON.stringify(body)}` +
        `\nanswered: ${JSON.stringify('text' in answer ? [answer.status, answer.text] : answer)}`;
      throw err;
    }
    return answer;
  }

  async function check(
    answer: HttpAnswer | Reset,
    before: RowCounts,
    after: RowCounts,
    verdict: Verdict,
  ): Promise<void> {
    const { db } = rig();
    if (verdict.kind === 'stored-or-401') {
      return check(
        answer,
        before,
        after,
        answer.status === 401
          ? { kind: 'refused', status: 401, why: 'signature did not hold' }
          : verdict.stored,
      );
    }
    const got = {
      status: answer.status,
      body: 'text' in answer ? json(answer.text) : answer.error,
    };
    // Never a 5xx, whatever the delivery (the first thing a failure says).
    expect(typeof got.status === 'number' && got.status >= 500 ? got : 'no 5xx').toBe('no 5xx');

    if (verdict.kind === 'head-too-large') {
      // Node answers 431 itself and closes; a client still sending may see the close first.
      expect(got.status === 431 || got.status === 'reset' ? 'refused by Node' : got).toBe(
        'refused by Node',
      );
      expect(after).toEqual(before);
      return;
    }
    if (verdict.kind === 'refused') {
      if (verdict.orReset && got.status === 'reset') return expect(after).toEqual(before);
      expect(got).toEqual({
        status: verdict.status,
        body: { error: { code: expect.any(String), message: expect.any(String) } },
      });
      expect(after).toEqual(before);
      return;
    }
    const { events, duplicates, skipped } = verdict;
    // `skipped` (HubSpot) may be left out when 0.
    const { skipped: gotSkipped = 0, ...answered } = (record(got.body) ?? {}) as {
      skipped?: number;
    };
    expect({ status: got.status, body: answered, skipped: gotSkipped }).toEqual({
      status: 200,
      body: { received: events.length, duplicates, eventIds: expect.any(Array) },
      skipped,
    });
    const ids = (got.body as { eventIds: string[] }).eventIds;
    const rows = await db.events(ids);
    const stored = rows
      .map((r) => ({
        provider: r.provider,
        identity: r.provider_event_id,
        type: r.type,
        status: r.status,
        payload: canonical(r.payload),
      }))
      .sort((a, b) => (a.identity < b.identity ? -1 : 1));
    const expected = events
      .map((e) => ({
        provider: kit.provider,
        identity: e.identity,
        type: e.type,
        status:
          e.status === 'RECEIVED or IGNORED'
            ? expect.stringMatching(/^(RECEIVED|IGNORED)$/)
            : e.status,
        payload: canonical(e.payload),
      }))
      .sort((a, b) => (a.identity < b.identity ? -1 : 1));
    expect(stored).toEqual(expected);
    const jobs = rows.filter((r) => r.status === 'RECEIVED').length;
    expect(after).toEqual({ events: before.events + events.length, outbox: before.outbox + jobs });
  }

  return {
    rig,
    kit,
    freshEvent(template) {
      const token = freshToken();
      const event = instantiate(template, token);
      return { token, event, body: Buffer.from(JSON.stringify(event), 'utf8') };
    },
    signedWire,
    deliver,
    verdictOf,
  };
}

/** Header names in another case, in another order, with unrelated headers among them. */
const headerStyle = fc.record({
  style: fc.constantFrom('upper', 'lower', 'title', 'random') as fc.Arbitrary<
    'upper' | 'lower' | 'title' | 'random'
  >,
  seed: fc.nat(),
  order: fc.array(fc.nat(), { minLength: 12, maxLength: 12 }),
  extra: fc.array(
    fc.tuple(
      fc.stringMatching(/^x-[a-z0-9-]{1,20}$/),
      fc.stringMatching(/^[\x21-\x7e][\x20-\x7e]{0,60}$/),
    ),
    { maxLength: 4 },
  ),
  contentType,
  query: fc.option(fc.stringMatching(/^[a-zA-Z0-9=&%._~-]{0,24}$/), { nil: null }),
});

function styled(
  headers: Header[],
  s: { style: 'upper' | 'lower' | 'title' | 'random'; seed: number; order: number[] },
): Header[] {
  return headers
    .map(([n, v], i): [Header, number] => [
      [recase(n, s.style, s.seed + i), v],
      s.order[i % 12] * 64 + i,
    ])
    .sort((a, b) => a[1] - b[1])
    .map(([h]) => h);
}

/**
 * Registers the shared properties in the current describe (after a beforeAll that starts the rig).
 * `identityKeys`: the fields a body change may drop, repeat or retype (identity and type first).
 */
export function registerDoorProperties(suite: DoorSuite, opts: { identityKeys: string[] }): void {
  const { kit } = suite;
  const event = kit.event;

  it('answers 2xx to a correctly signed well-formed delivery and stores exactly its events, whatever the header case and order, extra headers, query or Content-Type', async () => {
    await fc.assert(
      fc.asyncProperty(event, headerStyle, async (template, style) => {
        const { token, body } = suite.freshEvent(template);
        const url = style.query === null ? kit.path : `${kit.path}?${style.query}`;
        const base = suite.signedWire(body, { token, nowMs: Date.now(), url });
        const verdict = suite.verdictOf(body, base);
        expect(verdict.kind).toBe('stored'); // the generator makes well-formed events
        const headers = base.headers.filter(([n]) => n !== 'content-type');
        if (style.contentType !== null) headers.push(['content-type', style.contentType]);
        // Unrelated headers: never one of the provider's signature headers by chance.
        headers.push(...style.extra.filter(([n]) => !/signature|certificate/.test(n)));
        await suite.deliver({ ...base, headers: styled(headers, style) }, verdict);
      }),
      runs(250),
    );
  });

  it('answers 401 and stores nothing when the signature headers are removed, repeated, re-cased, swapped, renamed or mangled so that the signature no longer holds; 2xx when it still does', async () => {
    await fc.assert(
      fc.asyncProperty(
        event,
        fc.array(headerMutation, { minLength: 1, maxLength: 3 }),
        async (template, mutations: HeaderMutation[]) => {
          const { token, body } = suite.freshEvent(template);
          const wire = suite.signedWire(body, { token, nowMs: Date.now() });
          // The signature headers come first in the wire: they are the mutations' targets.
          const targets = kit.signatureHeaders.length;
          const headers = mutations.reduce((h, m) => mutateHeaders(h, targets, m), wire.headers);
          const still = kit.stillSigned(serverView(headers), serverView(wire.headers));
          const signed = suite.verdictOf(body, wire);
          const verdict: Verdict =
            still === false
              ? { kind: 'refused', status: 401, why: 'signature broken' }
              : still === 'maybe' && signed.kind === 'stored'
                ? { kind: 'stored-or-401', stored: signed }
                : signed;
          await suite.deliver({ ...wire, headers }, verdict);
        },
      ),
      runs(500),
    );
  });

  it('answers 401 and stores nothing when the body changed after signing (truncated, re-encoded, compressed, a byte flipped, keys repeated or retyped, nested deeper)', async () => {
    await fc.assert(
      fc.asyncProperty(
        event,
        bodyChange(opts.identityKeys),
        async (template, change: BodyChange) => {
          const { token, event: ev, body } = suite.freshEvent(template);
          const wire = suite.signedWire(body, { token, nowMs: Date.now() });
          const changed = changeBody(structuredClone(ev), change);
          const sent = {
            ...wire,
            headers: [...wire.headers, ...changed.headers],
            body: changed.body,
          };
          const verdict = kit.signedAlike(body, changed.body)
            ? suite.verdictOf(changed.body, sent)
            : ({ kind: 'refused', status: 401, why: 'body changed' } as const);
          await suite.deliver(sent, verdict);
        },
      ),
      runs(300),
    );
  });

  it("answers a body that is not the provider's JSON with 401 when unsigned; correctly signed, with 400 and nothing stored, or 2xx storing exactly what the CONTRACT's identity rule finds (truncated, UTF-16, latin1, BOM, gzip, duplicate keys, numbers as strings, 10,000-deep nesting, garbage JSON; any Content-Type)", async () => {
    await fc.assert(
      fc.asyncProperty(
        event,
        bodyChange(opts.identityKeys),
        fc.constantFrom('unsigned', 'wrong-key', 'signed-before-change') as fc.Arbitrary<
          'unsigned' | 'wrong-key' | 'signed-before-change'
        >,
        contentType,
        async (template, change: BodyChange, forgery, type) => {
          const { token, event: ev, body: original } = suite.freshEvent(template);
          const changed = changeBody(structuredClone(ev), change);
          const ctx = { token, nowMs: Date.now() };
          const typed = (wire: Wire): Wire => ({
            ...wire,
            headers: [
              ...wire.headers.filter(([n]) => n !== 'content-type'),
              ...(type === null ? [] : [['content-type', type] as Header]),
            ],
          });
          const signed = typed(suite.signedWire(changed.body, ctx, changed.headers));

          // First without a valid signature: 401 (the signed-before-change copy may still hold).
          const forged: Wire =
            forgery === 'unsigned'
              ? {
                  ...signed,
                  headers: signed.headers.filter(([n]) => !kit.signatureHeaders.includes(n)),
                }
              : forgery === 'wrong-key'
                ? typed(suite.signedWire(changed.body, { ...ctx, wrongKey: true }, changed.headers))
                : typed({
                    ...suite.signedWire(original, ctx, changed.headers),
                    body: changed.body,
                  });
          const forgedHolds =
            forgery === 'signed-before-change' && kit.signedAlike(original, changed.body);
          if (!forgedHolds) {
            await suite.deliver(forged, { kind: 'refused', status: 401, why: forgery });
          }
          // Then correctly signed.
          await suite.deliver(signed, suite.verdictOf(changed.body, signed));
        },
      ),
      runs(350),
    );
  });

  if (kit.timestampUnit) {
    const unit = kit.timestampUnit;
    it('answers 401 and stores nothing to a signed timestamp more than 5 minutes away either way, or one that is not a number; 2xx within 5 minutes', async () => {
      await fc.assert(
        fc.asyncProperty(event, timestampShape, async (template, shape: TimestampShape) => {
          const { token, body } = suite.freshEvent(template);
          const nowMs = Date.now();
          const wire = suite.signedWire(body, {
            token,
            nowMs,
            timestamp: timestampText(shape, nowMs, unit),
          });
          const verdict = withinWindow(shape)
            ? suite.verdictOf(body, wire)
            : ({ kind: 'refused', status: 401, why: 'timestamp' } as const);
          await suite.deliver(wire, verdict);
        }),
        runs(200),
      );
    });
  }

  it("answers a head close to Node's 16 KiB limit as usual; over it Node answers 431 itself (or closes) and nothing is stored", async () => {
    await fc.assert(
      fc.asyncProperty(
        event,
        fc.integer({ min: -1500, max: 1500 }),
        fc.integer({ min: 1, max: 8 }),
        async (template, overBy, pieces) => {
          const { token, body } = suite.freshEvent(template);
          const wire = suite.signedWire(body, { token, nowMs: Date.now() });
          const { port } = suite.rig().hub;
          const padded = padHead(port, wire, NODE_MAX_HEADER_BYTES + overBy, pieces);
          const verdict: Verdict =
            countedHeadBytes(port, padded) >= NODE_MAX_HEADER_BYTES
              ? { kind: 'head-too-large' }
              : suite.verdictOf(body, padded);
          await suite.deliver(padded, verdict);
        },
      ),
      runs(40),
    );
  });

  it('answers 413 to a body over 1 MiB, signed or not, announced or chunked, and stores nothing', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 1, max: 64 * 1024 }),
        fc.boolean(),
        fc.boolean(),
        async (over, signed, chunked) => {
          const token = 'big';
          const body = Buffer.from(JSON.stringify({ pad: 'x'.repeat(MIB + over) }));
          const wire = signed
            ? suite.signedWire(body, { token, nowMs: Date.now() })
            : { path: kit.path, headers: [['content-type', 'application/json'] as Header], body };
          // Announced: the hub answers from the head, before the body is sent. Chunked: it reads
          // up to the limit, answers and closes while the rest may still be arriving.
          await suite.deliver(
            { ...wire, chunked },
            { kind: 'refused', status: 413, why: 'too large', orReset: chunked },
            { headFirst: !chunked },
          );
        },
      ),
      runs(6),
    );
  });

  it.each([
    ['arrays', 'body'],
    ['objects', 'field'],
  ] as const)(
    'answers JSON nested 10,000 deep (%s, as the %s) with 401 unsigned and 400 signed, storing nothing',
    async (kind, where) => {
      const [template] = fc.sample(event, { seed: SEED, numRuns: 1 });
      const { token, event: ev } = suite.freshEvent(template);
      const deep = changeBody(ev, {
        t: 'deep',
        depth: 10_000,
        kind: kind === 'arrays' ? 'array' : 'object',
        where,
      });
      const signed = suite.signedWire(deep.body, { token, nowMs: Date.now() });
      const unsigned = {
        ...signed,
        headers: signed.headers.filter(([n]) => !kit.signatureHeaders.includes(n)),
      };
      await suite.deliver(unsigned, { kind: 'refused', status: 401, why: 'unsigned' });
      await suite.deliver(signed, { kind: 'refused', status: 400, why: 'nested 10,000 deep' });
      expect(suite.verdictOf(deep.body, signed)).toMatchObject({ kind: 'refused', status: 400 });
    },
  );

  it('is healthy afterwards: live and ready answer 200 at once, and a normal delivery is stored', async () => {
    const { port } = suite.rig().hub;
    for (const path of ['/health/live', '/health/ready']) {
      const { status, ms } = await timedGet(port, path);
      expect({ path, status }).toEqual({ path, status: 200 });
      expect(ms).toBeLessThan(2_000); // the event loop is not wedged (a loaded CI machine included)
    }
    const [template] = fc.sample(event, { seed: SEED, numRuns: 1 });
    const { token, body } = suite.freshEvent(template);
    const wire = suite.signedWire(body, { token, nowMs: Date.now() });
    await suite.deliver(wire, suite.verdictOf(body, wire));
  });
}

/** `wire` with `pieces` padding headers bringing the bytes Node counts to `target` (as near as it goes). */
export function padHead(port: number, wire: Wire, target: number, pieces: number): Wire {
  const names = Array.from({ length: pieces }, (_, i) => `x-pad-${i}`);
  const room = Math.max(
    pieces,
    target - countedHeadBytes(port, wire) - names.reduce((n, name) => n + name.length, 0),
  );
  const each = Math.floor(room / pieces);
  const padding: Header[] = names.map((name, i) => [
    name,
    'a'.repeat(i === 0 ? room - each * (pieces - 1) : each),
  ]);
  return { ...wire, headers: [...wire.headers, ...padding] };
}
