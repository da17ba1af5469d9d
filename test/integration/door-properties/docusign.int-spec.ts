import fc from 'fast-check';

import { ID, extras, isoTicks, text, word } from '../../support/door-arbitraries';
import { DoorKit, record, sameB64, single, usedOf } from '../../support/door-oracle';
import { DoorRig, startDoorRig } from '../../support/door-harness';
import { doorSuite, registerDoorProperties } from '../../support/door-properties';
import { TEST_SECRETS } from '../../support/test-env';
import { docusignSignature } from '../../../tools/simulator/signed-delivery';

/**
 * POST /webhooks/docusign (CONTRACT §3.1, provider-facts §1.1–1.3): one X-DocuSign-Signature-N per
 * active Connect key, any may match; no timestamp; identity data.envelopeId + event +
 * generatedDateTime. Signed with the simulator's signer.
 */

const USED = [
  'envelope-sent',
  'envelope-delivered',
  'envelope-completed',
  'envelope-declined',
  'envelope-voided',
];
const KEYS = TEST_SECRETS.DOCUSIGN_CONNECT_HMAC_KEYS.split(',');
const SIGNATURE = /^x-docusign-signature-\d+$/;

export const docusignKit: DoorKit = {
  provider: 'docusign',
  path: '/webhooks/docusign',
  event: fc
    .tuple(
      fc.record({
        event: fc.oneof(
          fc.constantFrom(...USED),
          fc.constantFrom('recipient-completed', 'envelope-created', 'envelope-resent'),
          word,
        ),
        apiVersion: fc.constant('v2.1'),
        uri: fc.constant(`/restapi/v2.1/accounts/acc-1/envelopes/env-${ID}`),
        retryCount: fc.nat(10),
        configurationId: fc.nat(99_999_999),
        generatedDateTime: isoTicks,
        data: fc.record(
          {
            accountId: fc.uuid(),
            userId: fc.uuid(),
            envelopeId: fc.constant(`env-${ID}`),
            recipientId: fc.integer({ min: 1, max: 9 }).map(String),
            envelopeSummary: fc.record(
              {
                status: fc.constantFrom('sent', 'delivered', 'completed', 'declined', 'voided'),
                emailSubject: text(40),
                completedDateTime: isoTicks,
                customFields: fc.record({
                  textCustomFields: fc.array(
                    fc.record({
                      name: fc.constantFrom('closeloop_deal_id', 'closeloop_contract_id', 'po'),
                      value: fc.oneof(fc.constant(`cl_deal_${ID}`), text(16)),
                    }),
                    { maxLength: 3 },
                  ),
                }),
              },
              { requiredKeys: ['status'] },
            ),
          },
          { requiredKeys: ['accountId', 'envelopeId'] },
        ),
      }),
      extras,
    )
    .map(([event, more]) => ({ ...more, ...event })),
  plainHeaders: [
    ['x-authorization-digest', 'HMACSHA256'],
    ['user-agent', 'DocuSign Connect'],
  ],
  // One header per active Connect key [DS-VAL].
  signatureHeaders: KEYS.map((_, i) => `x-docusign-signature-${i + 1}`),
  sign: (body, ctx) =>
    KEYS.map((key, i) => [
      `x-docusign-signature-${i + 1}`,
      docusignSignature(ctx.wrongKey ? `not-${key}` : key, body),
    ]),
  stillSigned(got, signed) {
    // Any X-DocuSign-Signature-N still carrying one of the signatures (as bytes) [DS-VAL].
    const genuine = [...signed].filter(([n]) => SIGNATURE.test(n)).map(([, v]) => v);
    return [...got].some(([n, v]) => SIGNATURE.test(n) && genuine.some((g) => sameB64(v, g)));
  },
  identify(body) {
    const m = record(body);
    if (!m) return { refused: 'not an object' };
    return single(
      body,
      [record(m.data)?.envelopeId, m.event, m.generatedDateTime],
      m.event,
      usedOf(USED),
    );
  },
  signedAlike: (a, b) => a.equals(b),
};

describe('door properties: docusign', () => {
  let rig: DoorRig;
  beforeAll(async () => {
    rig = await startDoorRig();
  });
  afterAll(async () => {
    await rig?.stop();
  });

  registerDoorProperties(
    doorSuite(docusignKit, () => rig),
    { identityKeys: ['event', 'data', 'generatedDateTime', 'apiVersion'] },
  );
});
