import { AsyncLocalStorage } from 'node:async_hooks';
import { createHash } from 'node:crypto';

import { PrismaPg } from '@prisma/adapter-pg';
import { PoolClient, types } from 'pg';

import { Prisma } from '../generated/prisma/client';

/**
 * Raw SQL of a Prisma interactive transaction, run straight on the transaction's own pg
 * connection. Inside `$transaction`, each `tx.$queryRaw` costs ~380 µs of CPU on this kind of
 * machine against ~80 µs for the same statement on a pg client (README, Benchmark: the lane
 * transaction of a signed contract runs about fifteen of them). Model calls (`tx.deal.update`…)
 * still go through Prisma, on the same connection, so both see and commit the same transaction.
 *
 * How the connection is found: the driver adapter begins an interactive transaction on a connection
 * of its own (PrismaPg's transaction object keeps it as `client`); `TransactionCapturingPg` records
 * it for the `withTransactionConnection` call that opened the transaction (AsyncLocalStorage).
 */
interface Capture {
  want: boolean;
  client?: PoolClient;
}

const captures = new AsyncLocalStorage<Capture>();

/** PrismaPg, recording each transaction's connection for `withTransactionConnection`. */
export class TransactionCapturingPg extends PrismaPg {
  override async connect(): ReturnType<PrismaPg['connect']> {
    const adapter = await super.connect();
    const start = adapter.startTransaction.bind(adapter);
    adapter.startTransaction = async (isolationLevel) => {
      const tx = await start(isolationLevel);
      const capture = captures.getStore();
      const client = (tx as unknown as { client?: PoolClient }).client;
      if (capture?.want && typeof client?.query === 'function') {
        capture.want = false;
        capture.client = client;
      }
      return tx;
    };
    return adapter;
  }
}

/**
 * Runs `open` (which opens one Prisma interactive transaction through TransactionCapturingPg) with the
 * transaction's connection recorded; `wrap` turns the Prisma tx into one whose raw SQL runs on it.
 */
export function withTransactionConnection<T>(
  open: (wrap: (tx: Prisma.TransactionClient) => Prisma.TransactionClient) => Promise<T>,
): Promise<T> {
  const capture: Capture = { want: true };
  return captures.run(capture, () =>
    open((tx) => (capture.client ? directRaw(tx, capture.client) : tx)),
  );
}

/** Prisma's $queryRaw result types: BIGINT as bigint, NUMERIC as Decimal, timestamps as UTC Dates. */
const parseInt8Array = types.getTypeParser(1016 as never) as (s: string) => (string | null)[];
const PARSERS: Record<number, (value: string) => unknown> = {
  20: (v) => BigInt(v),
  1016: (v) => parseInt8Array(v).map((x) => (x === null ? null : BigInt(x))),
  1700: (v) => new Prisma.Decimal(v),
  1114: (v) => new Date(`${v.replace(' ', 'T')}Z`),
};
const PRISMA_TYPES = {
  getTypeParser: (oid: number, format?: string) =>
    (format === undefined || format === 'text') && PARSERS[oid]
      ? PARSERS[oid]
      : types.getTypeParser(oid as never, format as never),
};

function sqlOf(args: unknown[]): Prisma.Sql {
  const [first, ...values] = args;
  if (first instanceof Prisma.Sql) return first;
  return Prisma.sql(first as TemplateStringsArray, ...values);
}

const DIRECT = Symbol('closeloop.directRaw');

/**
 * Whether a transaction client runs its raw SQL on its connection (false: the connection was not
 * found, e.g. a Prisma upgrade that opens transactions differently; everything still works, only
 * through Prisma — test/integration/direct-raw.int-spec.ts watches for it).
 */
export function runsRawDirectly(tx: Prisma.TransactionClient): boolean {
  return (tx as unknown as Record<symbol, unknown>)[DIRECT] === true;
}

/**
 * Names for the statements of tagged templates (their text is code, their values parameters):
 * Postgres parses and plans a named statement once per connection. Bounded, should some text ever
 * be built from data.
 */
const NAMES = new Map<string, string>();
const MAX_NAMES = 500;
function nameOf(text: string): string | undefined {
  let name = NAMES.get(text);
  if (!name && NAMES.size < MAX_NAMES) {
    name = `cl_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    NAMES.set(text, name);
  }
  return name;
}

function directRaw(tx: Prisma.TransactionClient, client: PoolClient): Prisma.TransactionClient {
  const run = (text: string, values: unknown[], name?: string) =>
    client.query({ name, text, values, types: PRISMA_TYPES } as never) as unknown as Promise<{
      rows: unknown[];
      rowCount: number | null;
    }>;
  const raw: Record<string, (...args: unknown[]) => Promise<unknown>> = {
    $queryRaw: (...args) => {
      const sql = sqlOf(args);
      return run(sql.text, sql.values, nameOf(sql.text)).then((r) => r.rows);
    },
    $executeRaw: (...args) => {
      const sql = sqlOf(args);
      return run(sql.text, sql.values, nameOf(sql.text)).then((r) => r.rowCount ?? 0);
    },
    $queryRawUnsafe: (text, ...values) => run(text as string, values).then((r) => r.rows),
    $executeRawUnsafe: (text, ...values) =>
      run(text as string, values).then((r) => r.rowCount ?? 0),
  };
  return new Proxy(tx, {
    get(target, prop) {
      if (prop === DIRECT) return true;
      if (typeof prop === 'string' && Object.hasOwn(raw, prop)) return raw[prop];
      const value: unknown = Reflect.get(target, prop);
      return typeof value === 'function' ? (value as () => unknown).bind(target) : value;
    },
  });
}
