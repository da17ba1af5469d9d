import fc from 'fast-check';

import { ID, extras, isoMinute, text, word } from '../../support/door-arbitraries';
import { record, usedOf } from '../../support/door-oracle';
import { DoorRig, startDoorRig } from '../../support/door-harness';
import { doorSuite, registerDoorProperties, runs } from '../../support/door-properties';
import { standardWebhooksKit } from '../../support/standard-webhooks-kit';
import { TEST_SECRETS } from '../../support/test-env';

/**
 * POST /webhooks/referrals/generic (CONTRACT §3.5): Standard Webhooks, identity webhook-id,
 * referral.created / referral.updated. The built-in platform name partner-center is refused there
 * (400, nothing stored), in any spelling: no generic sender speaks for Partner Center.
 */

const USED = ['referral.created', 'referral.updated'];
/** partner-center as a sender might spell it (case, separators, full-width, spaces around). */
const PARTNER_CENTER_SPELLINGS = [
  'partner-center',
  'Partner-Center',
  'PARTNER-CENTER',
  'partner_center',
  'Partner Center',
  'partnercenter',
  'partner.center',
  ' partner-center ',
  'ｐａｒｔｎｅｒ－ｃｅｎｔｅｒ',
];
/** Near misses that are other platforms' names. */
const OTHER_PLATFORMS = [
  'aimitsu',
  'proni',
  'imitsu',
  'partner',
  'center',
  'partner-centre',
  'acme-partners',
];

const referral = (platform: fc.Arbitrary<string>) =>
  fc.record(
    {
      referralId: fc.constant(`ref-${ID}`),
      platform,
      customer: fc.record({ name: text(30), email: fc.emailAddress() }, { requiredKeys: ['name'] }),
      title: text(40),
      estimatedValue: fc.integer({ min: 0, max: 999_999_999_999 }),
      currency: fc.constantFrom('jpy', 'usd', 'eur'),
      respondBy: isoMinute,
    },
    { requiredKeys: ['referralId', 'platform', 'customer', 'title'] },
  );

const event = (platform: fc.Arbitrary<string>) =>
  fc
    .tuple(
      fc.record(
        {
          type: fc.oneof(fc.constantFrom(...USED), fc.constantFrom('referral.deleted'), word),
          timestamp: isoMinute,
          data: referral(platform),
        },
        { requiredKeys: ['type', 'data'] },
      ),
      extras,
    )
    .map(([e, more]) => ({ ...more, ...e }));

export const genericReferralKit = standardWebhooksKit({
  provider: 'generic',
  path: '/webhooks/referrals/generic',
  secret: TEST_SECRETS.REFERRAL_WEBHOOK_SECRET,
  event: event(fc.oneof(fc.constantFrom(...OTHER_PLATFORMS), word)),
  used: usedOf(USED),
  refuses(body) {
    const platform = record(body.data)?.platform;
    return typeof platform === 'string' && PARTNER_CENTER_SPELLINGS.includes(platform)
      ? 'speaks for partner-center'
      : undefined;
  },
});

describe('door properties: referrals/generic', () => {
  let rig: DoorRig;
  beforeAll(async () => {
    rig = await startDoorRig();
  });
  afterAll(async () => {
    await rig?.stop();
  });

  const suite = doorSuite(genericReferralKit, () => rig);
  registerDoorProperties(suite, { identityKeys: ['type', 'data', 'timestamp'] });

  it('refuses a correctly signed referral naming partner-center in any spelling with 400 and stores nothing; a near miss is stored', async () => {
    await fc.assert(
      fc.asyncProperty(
        event(fc.constantFrom(...PARTNER_CENTER_SPELLINGS, ...OTHER_PLATFORMS)),
        async (template) => {
          const { token, body } = suite.freshEvent(template);
          const wire = suite.signedWire(body, { token, nowMs: Date.now() });
          await suite.deliver(wire, suite.verdictOf(body, wire));
        },
      ),
      runs(150),
    );
  });
});
