import { Pool } from 'pg';

import { send, stripeDelivery } from '../../src/simulator/signed-delivery';
import { RunningHub, startHub, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_SECRETS } from '../support/test-env';

describe('webhook door', () => {
  let hub: RunningHub;
  let db: Pool;

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    hub = await startHub();
  });
  afterAll(async () => {
    await hub?.stop();
    await db?.end();
  });

  it('stores a signed Stripe event, answers 2xx, and the worker processes it', async () => {
    const event = {
      id: 'evt_door_1',
      type: 'invoice.paid',
      created: 1795400000,
      data: {
        object: { id: 'in_1', object: 'invoice', metadata: { closeloop_deal_id: 'cl_deal_9' } },
      },
    };
    const res = await send(hub.url, stripeDelivery(event, TEST_SECRETS.STRIPE_WEBHOOK_SECRET));
    expect(res.status).toBe(200);
    const row = await waitFor(async () => {
      const { rows } = await db.query(
        `SELECT status, deal_id FROM webhook_event WHERE provider_event_id = 'evt_door_1'`,
      );
      return rows[0]?.status === 'PROCESSED' ? rows[0] : undefined;
    });
    expect(row.deal_id).toBe('cl_deal_9');
  });
});
