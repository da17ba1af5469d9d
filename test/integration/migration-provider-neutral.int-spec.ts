import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

import { Client } from 'pg';

import { TEST_DATABASE_URL } from '../support/test-env';

/**
 * Migration 20261207114421_provider_neutral_columns renames the invoicing system's and the CRM's
 * columns: every row keeps its values (a rename, not the drop + add `db:diff` proposes), the unique
 * invoice id stays unique, and the Stripe-only `stripe_customer` table is untouched.
 */
const MIGRATIONS = path.join(__dirname, '../../prisma/migrations');
const TARGET = '20261207114421_provider_neutral_columns';

function migrationsUpTo(name: string): { before: string[]; target: string } {
  const dirs = readdirSync(MIGRATIONS, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
  const sql = (dir: string) => readFileSync(path.join(MIGRATIONS, dir, 'migration.sql'), 'utf8');
  const at = dirs.indexOf(name);
  if (at < 0) throw new Error(`no migration ${name}`);
  return { before: dirs.slice(0, at).map(sql), target: sql(name) };
}

describe('migration: provider-neutral columns', () => {
  const dbName = `closeloop_migration_${process.pid}_${Date.now()}`;
  const admin = new Client({ connectionString: TEST_DATABASE_URL });
  let db: Client;

  beforeAll(async () => {
    await admin.connect();
    await admin.query(`CREATE DATABASE ${dbName}`);
    const url = new URL(TEST_DATABASE_URL);
    url.pathname = `/${dbName}`;
    db = new Client({ connectionString: url.toString() });
    await db.connect();
  });

  afterAll(async () => {
    await db?.end();
    await admin.query(`DROP DATABASE IF EXISTS ${dbName}`);
    await admin.end();
  });

  it('keeps every value under its new name', async () => {
    const { before, target } = migrationsUpTo(TARGET);
    for (const sql of before) await db.query(sql);
    await db.query(
      `INSERT INTO deal (id, name, stage, source, currency, stripe_customer_id, updated_at)
       VALUES ('cl_deal_m', 'Migrated', 'WON', 'admin', 'jpy', 'cus_kept', now())`,
    );
    await db.query(
      `INSERT INTO invoice (id, billing_key, deal_id, item_key, amount, tax_rate_percent, tax_amount,
                            currency, description, state, stripe_attempts, stripe_customer_id,
                            stripe_invoice_id, stripe_number, updated_at)
       VALUES ('inv_m', 'cl_deal_m|deposit', 'cl_deal_m', 'deposit', 300000, 10, 30000, 'jpy',
               'deposit', 'POSTED', 2, 'cus_kept', 'in_kept', 'KEPT-0001', now())`,
    );
    await db.query(
      `INSERT INTO crm_note (key, deal_id, hubspot_note_id) VALUES ('won|cl_deal_m', 'cl_deal_m', 'note_kept')`,
    );
    await db.query(
      `INSERT INTO stripe_customer (key, stripe_customer_id) VALUES ('email:a@example.jp', 'cus_kept')`,
    );

    await db.query(target);

    const deal = await db.query('SELECT billing_customer_id FROM deal');
    expect(deal.rows).toEqual([{ billing_customer_id: 'cus_kept' }]);
    const invoice = await db.query(
      `SELECT issue_attempts, billing_customer_id, provider_invoice_id, invoice_number FROM invoice`,
    );
    expect(invoice.rows).toEqual([
      {
        issue_attempts: 2,
        billing_customer_id: 'cus_kept',
        provider_invoice_id: 'in_kept',
        invoice_number: 'KEPT-0001',
      },
    ]);
    const note = await db.query('SELECT crm_note_id FROM crm_note');
    expect(note.rows).toEqual([{ crm_note_id: 'note_kept' }]);
    const customers = await db.query('SELECT key, stripe_customer_id FROM stripe_customer');
    expect(customers.rows).toEqual([{ key: 'email:a@example.jp', stripe_customer_id: 'cus_kept' }]);

    // No column still names a provider outside stripe_customer.
    const left = await db.query(
      `SELECT table_name, column_name FROM information_schema.columns
        WHERE table_schema = 'public' AND table_name <> 'stripe_customer'
          AND (column_name LIKE 'stripe%' OR column_name LIKE 'hubspot%')`,
    );
    expect(left.rows).toEqual([]);
    // The invoicing system's invoice id is still unique.
    await expect(
      db.query(
        `INSERT INTO invoice (id, billing_key, deal_id, item_key, amount, tax_rate_percent,
                              tax_amount, currency, description, provider_invoice_id, updated_at)
         VALUES ('inv_m2', 'cl_deal_m|design', 'cl_deal_m', 'design', 1, 0, 0, 'jpy', 'design',
                 'in_kept', now())`,
      ),
    ).rejects.toThrow(/invoice_provider_invoice_id_key/);
  });
});
