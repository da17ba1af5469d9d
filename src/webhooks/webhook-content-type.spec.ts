import Fastify from 'fastify';

import { ignoreWebhookContentType } from './webhook-content-type';

/** A bare Fastify with the hub's catch-all raw parser (app.factory.ts) and the hook under test. */
async function app() {
  const fastify = Fastify();
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', { parseAs: 'buffer' }, (_req, body, done) => done(null, body));
  ignoreWebhookContentType(fastify);
  const echo = async (req: { body: unknown; headers: Record<string, unknown> }) => ({
    bytes: Buffer.isBuffer(req.body) ? req.body.length : null,
    contentType: req.headers['content-type'] ?? null,
  });
  fastify.post('/webhooks/stripe', echo);
  fastify.post('/api/things', echo);
  await fastify.ready();
  return fastify;
}

describe('ignoreWebhookContentType', () => {
  it.each(['', 'garbage', '/', 'a/b/c', 'application/json, text/plain'])(
    'a delivery with Content-Type %j reaches the door with its raw bytes and its header',
    async (type) => {
      const fastify = await app();
      const res = await fastify.inject({
        method: 'POST',
        url: '/webhooks/stripe',
        headers: { 'content-type': type },
        payload: '{"id":"evt_1"}',
      });
      expect({ status: res.statusCode, body: res.json() }).toEqual({
        status: 200,
        body: { bytes: 14, contentType: type },
      });
      await fastify.close();
    },
  );

  it('other routes keep Fastify’s answer to a Content-Type that is no media type (415)', async () => {
    const fastify = await app();
    const res = await fastify.inject({
      method: 'POST',
      url: '/api/things',
      headers: { 'content-type': 'garbage' },
      payload: '{}',
    });
    expect(res.statusCode).toBe(415);
    await fastify.close();
  });
});
