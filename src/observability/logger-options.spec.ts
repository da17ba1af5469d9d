import { Writable } from 'node:stream';

import pino, { LoggerOptions } from 'pino';

import { loadConfig } from '../config/app-config';
import { loggerOptions } from './logger-options';

/** A pino logger built from the hub's options, writing its JSON lines into `lines`. */
function capture(): { logger: pino.Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      done();
    },
  });
  const options = loggerOptions(loadConfig({})).pinoHttp as LoggerOptions;
  return { logger: pino(options, sink), lines };
}

describe('log redaction (CONTRACT §7): the same rule as stored headers and dead letters', () => {
  it('secret and personal keys are redacted at the top and one level down', () => {
    const { logger, lines } = capture();
    logger.info(
      { token: 'tok-1', data: { email: 'a@example.com', customer: { name: 'ACME' } } },
      'x',
    );
    expect(lines[0]).toMatchObject({
      token: '[redacted]',
      data: { email: '[redacted]', customer: '[redacted]' },
    });
  });

  it('headers logged by hand go through the allow-list', () => {
    const { logger, lines } = capture();
    logger.warn(
      {
        headers: {
          'content-type': 'application/json',
          'proxy-authorization': 'Basic dXNlcjpwYXNz',
          'x-forwarded-for': '203.0.113.9',
        },
      },
      'delivery',
    );
    expect(lines[0].headers).toEqual({
      'content-type': 'application/json',
      'proxy-authorization': '[redacted]',
      'x-forwarded-for': '[redacted]',
    });
  });

  it('messages and err texts lose secrets and e-mail addresses', () => {
    const { logger, lines } = capture();
    logger.error(
      { err: 'Bearer abcdefghijklmnop refused for x@example.com' },
      'sk_live_abcdefgh1234 leaked',
    );
    logger.error({ err: new Error('client_secret=hunter2hunter2 rejected') }, 'failed');
    expect(lines[0].err).toBe('Bearer [redacted] refused for [email]');
    expect(lines[0].msg).toBe('sk_live_[redacted] leaked');
    expect(JSON.stringify(lines[1].err)).not.toContain('hunter2');
  });
});
