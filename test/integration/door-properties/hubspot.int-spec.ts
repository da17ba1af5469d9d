import fc from 'fast-check';

import { hubspotSignatureV3 } from '../../../src/connectors/hubspot/hubspot-signature.verifier';
import { COPY, NUM, epochMs, extras, text, word } from '../../support/door-arbitraries';
import { DoorKit, ExpectedEvent, part, record, sameB64 } from '../../support/door-oracle';
import { DoorRig, startDoorRig } from '../../support/door-harness';
import { doorSuite, registerDoorProperties, runs } from '../../support/door-properties';
import { TEST_SECRETS, hubEnv } from '../../support/test-env';

/**
 * POST /webhooks/hubspot (CONTRACT §3.2, provider-facts §2.1–2.2): v3 signature over method +
 * PUBLIC_BASE_URL-based URI + body + timestamp (ms, 5 minutes both ways); a batch of up to 100
 * elements, each stored or skipped on its own (identity portalId + subscriptionId + eventId +
 * occurredAt + objectId; type in subscriptionType or eventType), the batch answering 2xx. Signed
 * with the hub's own hubspotSignatureV3 (what the simulator uses).
 */

const PUBLIC_BASE_URL = hubEnv().PUBLIC_BASE_URL;
const OBJECT_TYPES = ['deal.creation', 'deal.propertyChange', 'deal.deletion'];

/** Used (CONTRACT §3.2): deal.creation, deal.deletion, deal.propertyChange of dealstage. */
const used = (type: string, e: Record<string, unknown>): ExpectedEvent['status'] =>
  type === 'deal.creation' ||
  type === 'deal.deletion' ||
  (type === 'deal.propertyChange' && e.propertyName === 'dealstage')
    ? 'RECEIVED'
    : 'IGNORED';

const element = fc
  .tuple(
    fc.record(
      {
        eventId: fc.integer({ min: 1, max: 2 ** 31 }),
        subscriptionId: fc.integer({ min: 1, max: 999_999 }),
        portalId: fc.integer({ min: 1, max: 99_999_999 }),
        appId: fc.integer({ min: 1, max: 9_999_999 }),
        occurredAt: epochMs,
        type: fc.oneof(
          fc.constantFrom(...OBJECT_TYPES),
          fc.constantFrom('contact.creation', 'company.propertyChange', 'deal.associationChange'),
          fc.constantFrom('deal.merge', 'deal.restore'),
        ),
        typeField: fc.constantFrom('subscriptionType', 'subscriptionType', 'eventType'),
        attemptNumber: fc.nat(9),
        propertyName: fc.constantFrom('dealstage', 'amount', 'closedate'),
        propertyValue: fc.oneof(
          fc.constantFrom('closedwon', 'closedlost', 'contractsent', 'appointmentscheduled'),
          text(12),
        ),
        changeSource: fc.constantFrom('CRM_UI', 'IMPORT', 'API', 'WORKFLOW', 'INTEGRATION'),
        sourceId: word,
      },
      {
        requiredKeys: ['eventId', 'subscriptionId', 'portalId', 'occurredAt', 'type', 'typeField'],
      },
    ),
    extras,
  )
  .map(([{ type, typeField, ...e }, more]) => ({
    ...more,
    ...e,
    [typeField]: type,
    objectId: NUM,
  }));

/** A batch: 1–10 elements (sometimes up to 100), and sometimes a copy of one of them (a redelivery). */
const batch = fc
  .tuple(
    fc.oneof(
      { weight: 9, arbitrary: fc.array(element, { minLength: 1, maxLength: 10 }) },
      { weight: 1, arbitrary: fc.array(element, { minLength: 11, maxLength: 100 }) },
    ),
    fc.option(fc.nat(), { nil: undefined }),
  )
  .map(([elements, copy]) =>
    copy === undefined || elements.length >= 100 ? elements : [...elements, { [COPY]: copy }],
  );

export const hubspotKit: DoorKit = {
  provider: 'hubspot',
  path: '/webhooks/hubspot',
  event: batch,
  plainHeaders: [['user-agent', 'HubSpot Connect 2.0 (http://dev.hubspot.com/)']],
  signatureHeaders: ['x-hubspot-signature-v3', 'x-hubspot-request-timestamp'],
  sign(body, ctx) {
    const timestamp = ctx.timestamp ?? String(ctx.nowMs);
    const signature = hubspotSignatureV3({
      method: 'POST',
      publicBaseUrl: PUBLIC_BASE_URL,
      requestUrl: ctx.url ?? '/webhooks/hubspot',
      rawBody: body,
      timestamp,
      clientSecret: ctx.wrongKey ? 'not-the-client-secret' : TEST_SECRETS.HUBSPOT_CLIENT_SECRET,
    });
    return [
      ['x-hubspot-signature-v3', signature],
      ['x-hubspot-request-timestamp', timestamp],
    ];
  },
  stillSigned: (got, signed) =>
    sameB64(got.get('x-hubspot-signature-v3'), signed.get('x-hubspot-signature-v3')) &&
    got.get('x-hubspot-request-timestamp') === signed.get('x-hubspot-request-timestamp'),
  timestampUnit: 'ms',
  identify(body) {
    if (!Array.isArray(body)) return { refused: 'not an array' };
    if (body.length > 100) return { refused: 'more than 100 elements' };
    const events: ExpectedEvent[] = [];
    let skipped = 0;
    let duplicates = 0;
    for (const element of body) {
      const e = record(element) ?? {};
      const type = part(e.subscriptionType) ?? part(e.eventType);
      const ids = [e.portalId, e.subscriptionId, e.eventId, e.occurredAt, e.objectId].map(part);
      if (!type || ids.some((p) => p === undefined)) {
        skipped++; // stored or skipped on its own: an element the hub cannot identify is skipped
        continue;
      }
      const identity = ids.join('|');
      if (events.some((x) => x.identity === identity)) duplicates++;
      else events.push({ identity, type, status: used(type, e), payload: element });
    }
    return { events, duplicates, skipped };
  },
  signedAlike: (a, b) => a.equals(b),
};

describe('door properties: hubspot', () => {
  let rig: DoorRig;
  beforeAll(async () => {
    rig = await startDoorRig();
  });
  afterAll(async () => {
    await rig?.stop();
  });

  // HubSpot elements are stored re-serialised (one row each), not as the received text.
  const suite = doorSuite(hubspotKit, () => rig, true);
  registerDoorProperties(suite, {
    identityKeys: [
      'eventId',
      'objectId',
      'portalId',
      'subscriptionId',
      'occurredAt',
      'subscriptionType',
    ],
  });

  it('stores the first occurrence of an identity a batch repeats (the later ones are duplicates, as redeliveries are)', async () => {
    const first = {
      eventId: 7,
      subscriptionId: 25,
      portalId: 33,
      occurredAt: 1_795_400_000_000,
      subscriptionType: 'deal.propertyChange',
      propertyName: 'dealstage',
      propertyValue: 'closedwon',
      objectId: NUM,
    };
    const { token, event } = suite.freshEvent([first]);
    const [stored] = event as Record<string, unknown>[];
    const later = { ...stored, propertyName: 'amount', propertyValue: '1' }; // same identity
    const batch = Buffer.from(JSON.stringify([stored, later]));
    const wire = suite.signedWire(batch, { token, nowMs: Date.now() });
    const verdict = suite.verdictOf(batch, wire);
    expect(verdict).toMatchObject({
      kind: 'stored',
      duplicates: 1,
      events: [{ type: 'deal.propertyChange', status: 'RECEIVED', payload: stored }],
    });
    await suite.deliver(wire, verdict);
  });

  it('stores or skips each element of a batch on its own (elements that are not objects, lack an identity field or a type are skipped), answers 2xx up to 100 elements and 400 over 100', async () => {
    const broken = fc.oneof(
      fc.record({
        drop: fc.constantFrom(
          'portalId',
          'subscriptionId',
          'eventId',
          'occurredAt',
          'objectId',
          'type',
        ),
      }),
      fc.record({ replaceBy: fc.jsonValue({ maxDepth: 1 }) }),
    );
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(element, fc.option(broken, { nil: undefined })), {
          minLength: 0,
          maxLength: 110,
        }),
        async (elements) => {
          const template = elements.map(([e, how]) => {
            if (how === undefined) return e;
            if ('replaceBy' in how) return how.replaceBy;
            const drop = how.drop === 'type' ? ['subscriptionType', 'eventType'] : [how.drop];
            return Object.fromEntries(Object.entries(e).filter(([k]) => !drop.includes(k)));
          });
          const { token, body } = suite.freshEvent(template);
          const wire = suite.signedWire(body, { token, nowMs: Date.now() });
          await suite.deliver(wire, suite.verdictOf(body, wire));
        },
      ),
      runs(150),
    );
  });
});
