import { loadConfig } from '../../config/app-config';
import { MalformedDeliveryError, WebhookProvider } from '../../ports/webhook-door.port';
import { DocusignWebhook } from './docusign.webhook';

const docusign: WebhookProvider = new DocusignWebhook(
  loadConfig({ DOCUSIGN_CONNECT_HMAC_KEYS: 'k' }),
);
const req = { rawBody: Buffer.alloc(0), headers: {}, method: 'POST', url: '/webhooks/docusign' };

const completed = {
  event: 'envelope-completed',
  apiVersion: 'v2.1',
  uri: '/restapi/v2.1/accounts/acc-1/envelopes/env-1',
  retryCount: 0,
  configurationId: 22028153,
  generatedDateTime: '2026-01-13T07:09:58.9584687Z',
  data: {
    accountId: 'acc-1',
    userId: 'user-1',
    envelopeId: 'env-1',
    envelopeSummary: {
      status: 'completed',
      completedDateTime: '2026-01-13T07:09:55.123Z',
      customFields: {
        textCustomFields: [
          { name: 'other', value: 'x' },
          { name: 'closeloop_deal_id', value: 'cl_deal_42' },
        ],
      },
    },
  },
};

describe('DocusignWebhook.normalize', () => {
  it('maps envelope-completed, taking the deal from custom field closeloop_deal_id', () => {
    expect(docusign.normalize('envelope-completed', completed)).toEqual({
      source: 'docusign',
      kind: 'envelope.completed',
      occurredAt: '2026-01-13T07:09:58.958Z',
      subject: { envelopeId: 'env-1', dealId: 'cl_deal_42' },
      data: {
        envelopeId: 'env-1',
        accountId: 'acc-1',
        status: 'completed',
        completedAt: '2026-01-13T07:09:55.123Z',
      },
    });
  });

  it('without the custom field the envelope id alone names the subject', () => {
    const bare = { ...completed, data: { ...completed.data, envelopeSummary: undefined } };
    const n = docusign.normalize('envelope-sent', bare);
    expect(n?.kind).toBe('envelope.sent');
    expect(n?.subject).toEqual({ envelopeId: 'env-1', dealId: undefined });
  });

  it.each(['envelope-sent', 'envelope-delivered', 'envelope-declined', 'envelope-voided'])(
    'maps %s',
    (type) => {
      expect(docusign.normalize(type, completed)?.kind).toBe(`envelope.${type.slice(9)}`);
    },
  );

  it('ignores events the hub does not use', () => {
    expect(docusign.normalize('recipient-completed', completed)).toBeNull();
    expect(docusign.normalize('envelope-created', completed)).toBeNull();
  });
});

describe('DocusignWebhook.identify', () => {
  it('identity is envelopeId|event|generatedDateTime (retryCount left out)', () => {
    const [a] = docusign.identify(completed, req);
    const [b] = docusign.identify({ ...completed, retryCount: 3 }, req);
    expect(a.providerEventId).toBe('env-1|envelope-completed|2026-01-13T07:09:58.9584687Z');
    expect(b.providerEventId).toBe(a.providerEventId);
    expect(a.type).toBe('envelope-completed');
  });

  it('refuses a message without event, envelopeId or generatedDateTime', () => {
    expect(() => docusign.identify({ ...completed, event: undefined }, req)).toThrow(
      MalformedDeliveryError,
    );
    expect(() => docusign.identify({ ...completed, generatedDateTime: undefined }, req)).toThrow(
      MalformedDeliveryError,
    );
    expect(() => docusign.identify({ ...completed, data: {} }, req)).toThrow(
      MalformedDeliveryError,
    );
  });
});
