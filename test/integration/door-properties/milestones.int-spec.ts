import fc from 'fast-check';

import { ID, NUM, extras, isoMinute, text, word } from '../../support/door-arbitraries';
import { usedOf } from '../../support/door-oracle';
import { DoorRig, startDoorRig } from '../../support/door-harness';
import { doorSuite, registerDoorProperties } from '../../support/door-properties';
import { standardWebhooksKit } from '../../support/standard-webhooks-kit';
import { TEST_SECRETS } from '../../support/test-env';

/**
 * POST /webhooks/milestones (CONTRACT §3.4): Standard Webhooks, identity webhook-id. A used type
 * with data the hub cannot use is still stored (RECEIVED): the worker refuses it with its reason, as
 * a dead letter (docs/decisions/0007); a type the hub does not use is stored IGNORED.
 */

const USED = [
  'milestone.accepted',
  'milestone.rejected',
  'milestone.progress',
  'order.additional',
  'delivery.completed',
];

const data = fc.record(
  {
    dealId: fc.constant(`cl_deal_${ID}`),
    crmDealId: fc.constant(NUM),
    itemKey: word,
    acceptedAt: isoMinute,
    acceptedBy: fc.emailAddress(),
    rejectedAt: isoMinute,
    reason: text(40),
    progressPercent: fc.integer({ min: 0, max: 100 }),
    description: text(40),
    items: fc.array(
      fc.record({
        key: word,
        label: text(16),
        amount: fc.integer({ min: 1, max: 99_999_999 }),
        trigger: fc.constantFrom('manual', 'milestone.accepted'),
      }),
      { maxLength: 3 },
    ),
    deliveredOn: isoMinute.map((iso) => iso.slice(0, 10)),
  },
  { requiredKeys: ['itemKey'] },
);

export const milestonesKit = standardWebhooksKit({
  provider: 'milestones',
  path: '/webhooks/milestones',
  secret: TEST_SECRETS.MILESTONE_WEBHOOK_SECRET,
  event: fc
    .tuple(
      fc.record(
        {
          type: fc.oneof(
            fc.constantFrom(...USED),
            fc.constantFrom('milestone.created', 'ping'),
            word,
          ),
          timestamp: isoMinute,
          data,
        },
        { requiredKeys: ['type', 'data'] },
      ),
      extras,
    )
    .map(([event, more]) => ({ ...more, ...event })),
  used: usedOf(USED),
});

describe('door properties: milestones', () => {
  let rig: DoorRig;
  beforeAll(async () => {
    rig = await startDoorRig();
  });
  afterAll(async () => {
    await rig?.stop();
  });

  registerDoorProperties(
    doorSuite(milestonesKit, () => rig),
    { identityKeys: ['type', 'data', 'timestamp'] },
  );
});
