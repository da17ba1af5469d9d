import nock from 'nock';
import { Webhook } from 'standardwebhooks';

import { PermanentError, TransientError } from '../../common/errors';
import { loadConfig } from '../../config/app-config';
import { verifyStandardWebhook } from '../../webhooks/signatures/standard-webhooks-signature.verifier';
import { countedStatuses, loggerStub, metricsStub } from '../connector-test-utils';
import { nockReceiver, rejectionOf } from '../report-webhook/standard-webhook.test-utils';
import { OutboundAlert } from '../../ports/alert-channel.port';
import { AlertWebhookClient } from './alert-webhook.client';

const ORIGIN = 'https://ops.example';
const PATH = '/alerts';
const SECRET = `whsec_${Buffer.from('alert-secret-0123456789abcdef').toString('base64')}`;
const REPORT_SECRET = `whsec_${Buffer.from('report-secret-0123456789abcdef').toString('base64')}`;

function setup() {
  const { metrics, inc } = metricsStub();
  const config = loadConfig({
    ALERT_WEBHOOK_URL: `${ORIGIN}${PATH}`,
    ALERT_WEBHOOK_SECRET: SECRET,
    // Another signed webhook configured alongside must not be mixed up with the alerts'.
    REFERRAL_REPORT_WEBHOOK_URL: 'https://partner.example/hooks',
    REFERRAL_REPORT_WEBHOOK_SECRET: REPORT_SECRET,
  });
  return { client: new AlertWebhookClient(config, metrics, loggerStub()), inc };
}

const alert: OutboundAlert = {
  alertId: 'alr_0193a1b2-c3d4-7e5f-8a9b-0c1d2e3f4a5b',
  kind: 'provider.failing',
  cause: 'provider.failing|stripe|2026-11-23T08',
  message: 'stripe is failing: 6 failed BillingInvoiceIssue attempts in the last 10 minutes',
  dealId: 'cl_deal_1',
  details: { provider: 'stripe', failures: 6 },
  raisedAt: new Date('2026-11-23T08:15:00.000Z'),
};

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

describe('AlertWebhookClient.send', () => {
  it('POSTs alert.<kind> signed with ALERT_WEBHOOK_SECRET, webhook-id = alert id', async () => {
    const { client, inc } = setup();
    const { scope, captured } = nockReceiver(ORIGIN, PATH, 204);

    await client.send(alert);

    expect(scope.isDone()).toBe(true);
    const [{ headers, raw }] = captured;
    expect(headers['webhook-id']).toBe(alert.alertId);
    expect(JSON.parse(raw)).toEqual({
      type: 'alert.provider.failing',
      data: {
        alertId: alert.alertId,
        kind: 'provider.failing',
        cause: 'provider.failing|stripe|2026-11-23T08',
        message: alert.message,
        dealId: 'cl_deal_1',
        details: { provider: 'stripe', failures: 6 },
        raisedAt: '2026-11-23T08:15:00.000Z',
      },
    });
    expect(new Webhook(SECRET).verify(raw, headers)).toEqual(JSON.parse(raw));
    expect(() => verifyStandardWebhook(Buffer.from(raw), headers, REPORT_SECRET)).toThrow();
    expect(inc).toHaveBeenCalledWith({ provider: 'alert-webhook', status: '204' });
    expect(countedStatuses(inc)).toEqual(['204']);
  });

  it('omits dealId and details when the alert has none', async () => {
    const { client } = setup();
    const { captured } = nockReceiver(ORIGIN, PATH, 200);
    await client.send({ ...alert, kind: 'dead_letters.growing', dealId: null, details: null });
    const body = JSON.parse(captured[0].raw) as { type: string; data: Record<string, unknown> };
    expect(body.type).toBe('alert.dead_letters.growing');
    expect(Object.keys(body.data).sort()).toEqual(
      ['alertId', 'cause', 'kind', 'message', 'raisedAt'].sort(),
    );
  });

  it('503 → TransientError honouring Retry-After, the same webhook-id on the retry', async () => {
    const { client } = setup();
    const first = nockReceiver(ORIGIN, PATH, 503, 'busy', { 'retry-after': '7' });
    const err = await rejectionOf(client.send(alert));
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryAfterMs).toBe(7_000);
    expect(err.message).toBe('alert webhook 503: busy');

    const second = nockReceiver(ORIGIN, PATH, 200);
    await client.send(alert);
    expect(second.captured[0].headers['webhook-id']).toBe(first.captured[0].headers['webhook-id']);
  });

  it('400 → PermanentError with the receiver body; 410 names ALERT_WEBHOOK_URL', async () => {
    const { client } = setup();
    nockReceiver(ORIGIN, PATH, 400, '{"error":"unknown type"}');
    const bad = await rejectionOf(client.send(alert));
    expect(bad).toBeInstanceOf(PermanentError);
    expect(bad.message).toBe('alert webhook 400: {"error":"unknown type"}');

    nockReceiver(ORIGIN, PATH, 410, 'gone');
    const gone = await rejectionOf(client.send(alert));
    expect(gone).toBeInstanceOf(PermanentError);
    expect(gone.message).toMatch(/^alert webhook 410: endpoint disabled .*fix ALERT_WEBHOOK_URL/);
  });

  it('a network failure → TransientError counted as an error call', async () => {
    const { client, inc } = setup();
    nock(ORIGIN).post(PATH).replyWithError({ code: 'ECONNRESET', message: 'reset' });
    await expect(client.send(alert)).rejects.toBeInstanceOf(TransientError);
    expect(inc).toHaveBeenCalledWith({ provider: 'alert-webhook', status: 'error' });
  });

  it('unconfigured → PermanentError naming the variables, without a request', async () => {
    const { metrics, inc } = metricsStub();
    const client = new AlertWebhookClient(
      loadConfig({
        REFERRAL_REPORT_WEBHOOK_URL: 'https://partner.example/hooks',
        REFERRAL_REPORT_WEBHOOK_SECRET: REPORT_SECRET,
      }),
      metrics,
      loggerStub(),
    );
    await expect(client.send(alert)).rejects.toThrow(
      new PermanentError(
        'alert webhook is not configured: set ALERT_WEBHOOK_URL, ALERT_WEBHOOK_SECRET',
      ),
    );
    expect(inc).not.toHaveBeenCalled();
  });
});
