import nock from 'nock';
import { Webhook } from 'standardwebhooks';

import { PermanentError, TransientError } from '../../common/errors';
import { loadConfig } from '../../config/app-config';
import { verifyStandardWebhook } from '../../webhooks/signatures/standard-webhooks-signature.verifier';
import { countedStatuses, loggerStub, metricsStub } from '../connector-test-utils';
import { OutboundReport, ReportWebhookClient } from './report-webhook.client';
import { nockReceiver, rejectionOf } from './standard-webhook.test-utils';

const RECEIVER = 'https://partner.example';
const PATH = '/hooks/closeloop';
const SECRET = `whsec_${Buffer.from('0123456789abcdef0123456789abcdef').toString('base64')}`;
const OTHER_SECRET = `whsec_${Buffer.from('fedcba9876543210fedcba9876543210').toString('base64')}`;

function setup(env: Record<string, string> = {}) {
  const { metrics, inc } = metricsStub();
  const config = loadConfig({
    REFERRAL_REPORT_WEBHOOK_URL: `${RECEIVER}${PATH}`,
    REFERRAL_REPORT_WEBHOOK_SECRET: SECRET,
    ...env,
  });
  return { client: new ReportWebhookClient(config, metrics, loggerStub()), inc };
}

const report: OutboundReport = {
  reportId: 'rep_01JABCDEF',
  kind: 'confirmed_amount',
  type: 'referral.report.confirmed_amount',
  data: {
    platform: 'generic',
    referralId: 'R-1',
    dealId: 'cl_deal_1',
    amountExTax: 300000,
    taxAmount: 30000,
    currency: 'jpy',
  },
};

const receiver = (status: number, body = '', headers: Record<string, string> = {}) =>
  nockReceiver(RECEIVER, PATH, status, body, headers);

const failure = (client: ReportWebhookClient): Promise<Error> => rejectionOf(client.send(report));

beforeAll(() => nock.disableNetConnect());
afterEach(() => nock.cleanAll());
afterAll(() => nock.enableNetConnect());

describe('ReportWebhookClient.send', () => {
  it('POSTs { type, data } signed per Standard Webhooks with webhook-id = reportId', async () => {
    const { client, inc } = setup();
    const { scope, captured } = receiver(200);

    await client.send(report);

    expect(scope.isDone()).toBe(true);
    const [{ headers, raw }] = captured;
    expect(headers['webhook-id']).toBe(report.reportId);
    expect(headers['content-type']).toBe('application/json');
    expect(headers['webhook-timestamp']).toMatch(/^\d+$/);
    expect(Math.abs(Number(headers['webhook-timestamp']) - Date.now() / 1000)).toBeLessThan(60);
    expect(headers['webhook-signature']).toMatch(/^v1,[A-Za-z0-9+/]+=*$/);
    expect(JSON.parse(raw)).toEqual({
      type: 'referral.report.confirmed_amount',
      data: { reportId: report.reportId, kind: 'confirmed_amount', ...report.data },
    });

    // Verifies with the hub's own verifier and with the reference library…
    expect(() => verifyStandardWebhook(Buffer.from(raw), headers, SECRET)).not.toThrow();
    expect(new Webhook(SECRET).verify(raw, headers)).toEqual(JSON.parse(raw));
    // …and not with another secret or another body.
    expect(() => verifyStandardWebhook(Buffer.from(raw), headers, OTHER_SECRET)).toThrow();
    expect(() => verifyStandardWebhook(Buffer.from(`${raw} `), headers, SECRET)).toThrow();
    expect(countedStatuses(inc)).toEqual(['200']);
  });

  it('keeps webhook-id stable across retries of the same report', async () => {
    const { client } = setup();
    const first = receiver(503);
    await expect(client.send(report)).rejects.toBeInstanceOf(TransientError);
    const second = receiver(204);
    await client.send(report);
    expect(first.captured[0].headers['webhook-id']).toBe('rep_01JABCDEF');
    expect(second.captured[0].headers['webhook-id']).toBe('rep_01JABCDEF');
  });

  it.each([200, 201, 202, 204])('%i is delivered', async (status) => {
    const { client } = setup();
    const { scope } = receiver(status);
    await expect(client.send(report)).resolves.toBeUndefined();
    expect(scope.isDone()).toBe(true);
  });

  it('500 → TransientError', async () => {
    const { client } = setup();
    receiver(500, 'internal error');
    const err = await failure(client);
    expect(err).toBeInstanceOf(TransientError);
    expect(err.message).toBe('report webhook 500: internal error');
  });

  it.each([429, 502, 503, 504])('%i → TransientError honouring Retry-After', async (status) => {
    const { client } = setup();
    receiver(status, 'slow down', { 'retry-after': '30' });
    const err = await failure(client);
    expect(err).toBeInstanceOf(TransientError);
    expect((err as TransientError).retryAfterMs).toBe(30_000);
  });

  it('410 → PermanentError: endpoint disabled', async () => {
    const { client } = setup();
    receiver(410, 'gone');
    const err = await failure(client);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toMatch(/endpoint disabled/);
  });

  it("400 → PermanentError with the receiver's body, truncated", async () => {
    const { client } = setup();
    receiver(400, `{"error":"missing field amountExTax"}${'x'.repeat(5000)}`);
    const err = await failure(client);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err).not.toBeInstanceOf(TransientError);
    expect(err.message).toMatch(/^report webhook 400: \{"error":"missing field amountExTax"\}x+…$/);
    expect(err.message.length).toBeLessThan(600);
  });

  it('a redirect is not followed and is permanent', async () => {
    const { client } = setup();
    receiver(301, '', { location: 'https://elsewhere.example/hook' });
    const err = await failure(client);
    expect(err).toBeInstanceOf(PermanentError);
    expect(err.message).toMatch(/redirects are not followed/);
  });

  it('a timeout (PROVIDER_TIMEOUT_MS) → TransientError', async () => {
    const { client, inc } = setup({ PROVIDER_TIMEOUT_MS: '100' });
    nock(RECEIVER).post(PATH).delay(600).reply(200);
    const started = Date.now();
    const err = await failure(client);
    expect(err).toBeInstanceOf(TransientError);
    expect(Date.now() - started).toBeLessThan(500);
    expect(countedStatuses(inc)).toEqual(['error']);
  });

  it('a network failure → TransientError', async () => {
    const { client } = setup();
    nock(RECEIVER).post(PATH).replyWithError({ code: 'ECONNREFUSED', message: 'refused' });
    await expect(client.send(report)).rejects.toBeInstanceOf(TransientError);
  });

  it('unconfigured → PermanentError naming the variables, without a request', async () => {
    const { metrics, inc } = metricsStub();
    const client = new ReportWebhookClient(loadConfig({}), metrics, loggerStub());
    await expect(client.send(report)).rejects.toThrow(
      new PermanentError(
        'report webhook is not configured: set REFERRAL_REPORT_WEBHOOK_URL, REFERRAL_REPORT_WEBHOOK_SECRET',
      ),
    );
    expect(inc).not.toHaveBeenCalled();
  });

  it('refuses a reportId that cannot be a webhook-id, and data contradicting the report', async () => {
    const { client, inc } = setup();
    await expect(client.send({ ...report, reportId: 'rep.1' })).rejects.toBeInstanceOf(
      PermanentError,
    );
    await expect(
      client.send({ ...report, data: { ...report.data, reportId: 'other' } }),
    ).rejects.toThrow(/data.reportId/);
    expect(inc).not.toHaveBeenCalled();
  });
});
