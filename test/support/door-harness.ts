import { Socket, connect } from 'node:net';

import { Pool } from 'pg';

import { RunningHub, startHub, testDb, truncateAll } from './hub';

/**
 * What the door properties (test/integration/door-properties) need around the hub: a raw HTTP/1.1
 * client that puts exactly the given bytes on the wire (header names in any case, in any order,
 * repeated, any Content-Type or none, heads over Node's limit), and the row counts of the tables a
 * delivery may write.
 */

export type Header = [name: string, value: string];

/** One request as it goes on the wire. */
export interface Wire {
  path: string;
  headers: Header[];
  body: Buffer;
  /** Send the body with Transfer-Encoding: chunked instead of Content-Length. */
  chunked?: boolean;
}

export interface HttpAnswer {
  status: number;
  headers: Record<string, string>;
  text: string;
}

/** The connection closed before a complete answer arrived (EPIPE, ECONNRESET, a close). */
export interface Reset {
  status: 'reset';
  error: string;
  /** Bytes of an answer received before the close. */
  received: number;
}

const CRLF = '\r\n';

/** The headers {@link RawHttp} sends for `wire`: Host first, the framing header last. */
export function requestHeaders(port: number, wire: Wire): Header[] {
  const names = new Set(wire.headers.map(([n]) => n.toLowerCase()));
  const headers: Header[] = [];
  if (!names.has('host')) headers.push(['host', `127.0.0.1:${port}`]);
  headers.push(...wire.headers);
  if (wire.chunked) headers.push(['transfer-encoding', 'chunked']);
  else if (!names.has('content-length') && !names.has('transfer-encoding'))
    headers.push(['content-length', String(wire.body.length)]);
  return headers;
}

/** The request head exactly as {@link RawHttp} sends it. */
export function requestHead(port: number, wire: Wire, method = 'POST'): Buffer {
  const lines = requestHeaders(port, wire)
    .map(([n, v]) => `${n}: ${v}${CRLF}`)
    .join('');
  return Buffer.from(`${method} ${wire.path} HTTP/1.1${CRLF}${lines}${CRLF}`, 'latin1');
}

/**
 * The bytes Node counts against its header limit (`--max-http-header-size`, 16 KiB by default):
 * the URL and every header name and value. Measured on Node 20: the method, the separators and the
 * line ends are not counted, and a head counting 16,384 bytes or more is answered 431 by Node
 * itself (the request never reaches the hub).
 */
export function countedHeadBytes(port: number, wire: Wire): number {
  return requestHeaders(port, wire).reduce(
    (n, [name, value]) =>
      n + Buffer.byteLength(name, 'latin1') + Buffer.byteLength(value, 'latin1'),
    Buffer.byteLength(wire.path, 'latin1'),
  );
}

function frameBody(wire: Wire): Buffer {
  if (!wire.chunked) return wire.body;
  const parts: Buffer[] = [];
  for (let i = 0; i < wire.body.length; i += 64 * 1024) {
    const chunk = wire.body.subarray(i, i + 64 * 1024);
    parts.push(Buffer.from(`${chunk.length.toString(16)}${CRLF}`), chunk, Buffer.from(CRLF));
  }
  parts.push(Buffer.from(`0${CRLF}${CRLF}`));
  return Buffer.concat(parts);
}

/** Parses one complete HTTP/1.1 response at the start of `buf`; undefined while incomplete. */
function parseResponse(buf: Buffer, closed: boolean): HttpAnswer | undefined {
  const end = buf.indexOf('\r\n\r\n');
  if (end < 0) return undefined;
  const [statusLine, ...lines] = buf.subarray(0, end).toString('latin1').split(CRLF);
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1]);
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const i = line.indexOf(':');
    headers[line.slice(0, i).trim().toLowerCase()] = line.slice(i + 1).trim();
  }
  const rest = buf.subarray(end + 4);
  if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (rest.length < length) return undefined;
    return { status, headers, text: rest.subarray(0, length).toString('utf8') };
  }
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const chunks: Buffer[] = [];
    let at = 0;
    for (;;) {
      const eol = rest.indexOf(CRLF, at);
      if (eol < 0) return undefined;
      const size = parseInt(rest.subarray(at, eol).toString('latin1'), 16);
      if (size === 0) return { status, headers, text: Buffer.concat(chunks).toString('utf8') };
      if (rest.length < eol + 2 + size + 2) return undefined;
      chunks.push(rest.subarray(eol + 2, eol + 2 + size));
      at = eol + 2 + size + 2;
    }
  }
  return closed ? { status, headers, text: rest.toString('utf8') } : undefined;
}

/**
 * A keep-alive HTTP/1.1 client over one socket at a time, one request at a time. A request that
 * finds its reused connection closed by the server (nothing received) is sent once more on a new
 * one; any other close before a complete answer is a {@link Reset}. A request unanswered after
 * `timeoutMs` fails the test: the hub hung.
 */
export class RawHttp {
  private socket?: Socket;

  constructor(
    readonly port: number,
    private readonly timeoutMs = 15_000,
  ) {}

  /**
   * `headFirst`: send the head, and the body only if no answer came within 500 ms (a server that
   * refuses an announced body answers before reading it, then closes: a client still writing the
   * body could see the reset instead of the answer).
   */
  async send(
    wire: Wire,
    opts: { fresh?: boolean; method?: string; headFirst?: boolean } = {},
  ): Promise<HttpAnswer | Reset> {
    if (opts.fresh) this.close();
    const method = opts.method ?? 'POST';
    const reused = this.socket !== undefined;
    const answer = await this.exchange(wire, method, opts.headFirst ?? false);
    // A kept-alive connection the server has closed meanwhile (idle, or after an answer that
    // ended it): nothing of this request was read, so it goes again on a new connection.
    if (reused && answer.status === 'reset' && answer.received === 0) {
      return this.exchange(wire, method, opts.headFirst ?? false);
    }
    return answer;
  }

  close(): void {
    this.socket?.destroy();
    this.socket = undefined;
  }

  private connection(): Socket {
    if (!this.socket || this.socket.destroyed) {
      this.socket = connect({ host: '127.0.0.1', port: this.port });
      this.socket.setNoDelay(true);
      this.socket.on('error', () => undefined); // reported through the exchange
    }
    return this.socket;
  }

  private exchange(wire: Wire, method: string, headFirst: boolean): Promise<HttpAnswer | Reset> {
    const socket = this.connection();
    return new Promise((resolve, reject) => {
      let buf = Buffer.alloc(0);
      let error = '';
      let answered = false;
      const timer = setTimeout(() => {
        finish();
        this.close();
        reject(new Error(`no answer to ${method} ${wire.path} within ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      const finish = () => {
        answered = true;
        clearTimeout(timer);
        socket.off('data', onData);
        socket.off('close', onClose);
        socket.off('error', onError);
      };
      const done = (answer: HttpAnswer) => {
        finish();
        // Node closes after a 431 (and Fastify after a refused body) whatever the headers say.
        const ends = /close/i.test(answer.headers.connection ?? '') || answer.status === 431;
        if (ends || socket.readableEnded) this.close();
        resolve(answer);
      };
      const onData = (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        const answer = parseResponse(buf, false);
        if (answer) done(answer);
      };
      const onError = (err: Error) => (error = (err as NodeJS.ErrnoException).code ?? err.message);
      const onClose = () => {
        const answer = parseResponse(buf, true);
        if (answer) return done(answer);
        finish();
        this.socket = undefined;
        resolve({ status: 'reset', error: error || 'closed', received: buf.length });
      };
      socket.on('data', onData);
      socket.on('close', onClose);
      socket.on('error', onError);
      const head = requestHead(this.port, wire, method);
      if (!headFirst) {
        socket.write(Buffer.concat([head, frameBody(wire)]));
        return;
      }
      socket.write(head);
      const body = setTimeout(() => {
        if (!answered && !socket.destroyed) socket.write(frameBody(wire));
      }, 500);
      socket.once('close', () => clearTimeout(body));
    });
  }
}

export interface RowCounts {
  events: number;
  outbox: number;
}

export interface StoredEvent {
  id: string;
  provider: string;
  provider_event_id: string;
  type: string;
  status: string;
  payload: unknown;
}

/** The rows a delivery may write: webhook_event and outbox (an api-only hub never drains the outbox). */
export class DoorDb {
  readonly pool: Pool = testDb();

  async counts(): Promise<RowCounts> {
    const { rows } = await this.pool.query<RowCounts>(
      `SELECT (SELECT count(*) FROM webhook_event)::int AS events,
              (SELECT count(*) FROM outbox)::int AS outbox`,
    );
    return rows[0];
  }

  async events(ids: string[]): Promise<StoredEvent[]> {
    const { rows } = await this.pool.query<StoredEvent>(
      `SELECT id, provider, provider_event_id, type, status, payload
         FROM webhook_event WHERE id = ANY($1::text[])`,
      [ids],
    );
    return rows;
  }

  end(): Promise<void> {
    return this.pool.end();
  }
}

/**
 * An api-only hub (it stores and never processes, so every row a delivery writes stays countable),
 * a client and the database, for one spec file.
 */
export interface DoorRig {
  hub: RunningHub;
  http: RawHttp;
  db: DoorDb;
  stop(): Promise<void>;
}

export async function startDoorRig(env: Record<string, string | undefined> = {}): Promise<DoorRig> {
  const db = new DoorDb();
  await truncateAll(db.pool); // counting rows stays cheap
  const hub = await startHub({
    ROLE: 'api',
    // No worker drains the outbox here: every accepted delivery's job stays counted in it.
    OUTBOX_BACKLOG_READY_LIMIT: '10000000',
    ...env,
  });
  const http = new RawHttp(hub.port);
  return {
    hub,
    http,
    db,
    async stop() {
      http.close();
      await hub.stop();
      await db.end();
    },
  };
}

/** A GET on a connection of its own; resolves with the status and how long the answer took. */
export async function timedGet(
  port: number,
  path: string,
): Promise<{ status: number | 'reset'; ms: number }> {
  const http = new RawHttp(port, 5_000);
  const started = performance.now();
  try {
    const answer = await http.send({ path, headers: [], body: Buffer.alloc(0) }, { method: 'GET' });
    return { status: answer.status, ms: performance.now() - started };
  } finally {
    http.close();
  }
}
