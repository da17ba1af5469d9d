import { Pool } from 'pg';

import { reportFields } from '../../src/reporting/report-fields';
import { ReportData, ReportKind } from '../../src/domain/report';
import { ProviderSimulator } from '../../tools/simulator/provider-sim/simulator';
import { RunningHub, flushTestRedis, startHub, testDb, truncateAll } from '../support/hub';
import { TEST_SECRETS } from '../support/test-env';

/**
 * The dashboard's finance pages (issue 5) over HTTP against the built hub (ROLE=api), real
 * Postgres and Stripe played by the provider simulator: the reports queue (Japanese labels,
 * overdue, copy-ready fields, mark reported / postpone / status with CSRF and roles) and
 * reconciliation (mismatches named, CSV download, finance only).
 */

interface Page {
  status: number;
  html: string;
  location: string | null;
  cookies: string[];
  headers: Headers;
}

const ZONE = 'Asia/Tokyo';
let seq = 0;
/** Time-ordered ids like the hub's: a fixed prefix and an increasing counter. */
const nextId = (prefix: string) =>
  `${prefix}_0199${String(++seq).padStart(4, '0')}-0000-7000-8000-000000000000`;

/** A local date (YYYY-MM-DD) `days` from now. */
const dateIn = (days: number) =>
  new Date(Date.now() + days * 86_400_000).toISOString().slice(0, 10);

describe('dashboard: finance pages', () => {
  let hub: RunningHub;
  let sim: ProviderSimulator;
  let db: Pool;
  const sessions: Record<'viewer' | 'finance' | 'admin', { session: string; csrf: string }> =
    {} as never;

  async function request(
    method: string,
    path: string,
    cookies: Record<string, string> = {},
    form?: Record<string, string>,
    base = hub.url,
  ): Promise<Page> {
    const cookie = Object.entries(cookies)
      .map(([k, v]) => `${k}=${v}`)
      .join('; ');
    const res = await fetch(`${base}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        ...(cookie ? { cookie } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    return {
      status: res.status,
      html: await res.text(),
      location: res.headers.get('location'),
      cookies: res.headers.getSetCookie(),
      headers: res.headers,
    };
  }

  const cookieValue = (p: Page, name: string) =>
    p.cookies
      .find((c) => c.startsWith(`${name}=`))
      ?.split(';')[0]
      .slice(name.length + 1);
  const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1];

  async function login(token: string, base = hub.url) {
    const form = await request('GET', '/dashboard/login', {}, undefined, base);
    const loginCsrf = cookieValue(form, 'cl_login')!;
    const res = await request(
      'POST',
      '/dashboard/login',
      { cl_login: loginCsrf },
      { _csrf: loginCsrf, token },
      base,
    );
    expect(res.status).toBe(302);
    const session = cookieValue(res, 'cl_session')!;
    const overview = await request('GET', '/dashboard', { cl_session: session }, undefined, base);
    expect(overview.status).toBe(200);
    return { session, csrf: csrfOf(overview.html)! };
  }

  const as = (role: keyof typeof sessions) => ({ cl_session: sessions[role].session });
  const get = (role: keyof typeof sessions, path: string) => request('GET', path, as(role));
  const post = (role: keyof typeof sessions, path: string, form: Record<string, string>) =>
    request('POST', path, as(role), { _csrf: sessions[role].csrf, ...form });

  async function createToken(name: string, role: string) {
    const res = await fetch(`${hub.url}/api/tokens`, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}`,
        'content-type': 'application/json',
      },
      body: JSON.stringify({ name, role }),
    });
    expect(res.status).toBe(201);
    return ((await res.json()) as { token: string }).token;
  }

  // ---- seeding ---------------------------------------------------------------------------------

  async function seedDeal(name: string, platform: string | null) {
    const id = nextId('cl_deal');
    const customer = sim.stripe.createCustomer({ email: `${seq}@example.jp`, name });
    await db.query(
      `INSERT INTO deal (id, name, stage, source, referral_platform, referral_id, currency, amount,
                         time_zone, billing_customer_id)
       VALUES ($1, $2, 'WON', $3, $4, $5, 'jpy', 1000000, $6, $7)`,
      [
        id,
        name,
        platform ? 'referral' : 'admin',
        platform,
        platform ? `R-${seq}` : null,
        ZONE,
        customer.id,
      ],
    );
    return { id, customer: customer.id };
  }

  /** A hub invoice and its Stripe twin, made without webhooks (amounts may differ on purpose). */
  async function seedInvoice(
    deal: { id: string; customer: string },
    itemKey: string,
    amount: number,
    hubState: string,
    stripeStatus: 'open' | 'paid' | 'void',
    stripeAmount = amount,
  ) {
    const billingKey = `${deal.id}|${itemKey}`;
    const inv = sim.stripe.createInvoiceOutsideHub({
      customer: deal.customer,
      amount: stripeAmount,
      currency: 'jpy',
      description: itemKey,
      status: stripeStatus,
      emit: false,
      metadata: {
        closeloop_deal_id: deal.id,
        closeloop_item_key: itemKey,
        closeloop_billing_key: billingKey,
      },
    });
    await db.query(
      `INSERT INTO invoice (id, billing_key, deal_id, item_key, amount, tax_rate_percent, tax_amount,
                            currency, description, state, billing_customer_id, provider_invoice_id,
                            invoice_number, posted_at)
       VALUES ($1, $2, $3, $4, $5, 0, 0, 'jpy', $4, $6::"InvoiceState", $7, $8, $9, now())`,
      [
        `inv_${billingKey}`,
        billingKey,
        deal.id,
        itemKey,
        amount,
        hubState,
        deal.customer,
        inv.id,
        inv.number,
      ],
    );
    return { billingKey, stripeInvoiceId: inv.id };
  }

  async function seedReport(r: {
    dealId: string;
    kind?: ReportKind;
    status?: string;
    dueAt?: Date | null;
    billingKey?: string;
    amountExTax?: number;
  }): Promise<string> {
    const id = nextId('rpt');
    const kind = r.kind ?? 'confirmed_amount';
    const amountExTax = r.amountExTax ?? 300_000;
    const data: ReportData = {
      reportId: id,
      kind,
      platform: 'aimitsu',
      dealId: r.dealId,
      occurredAt: '2026-11-23T01:00:00.000Z',
      ...(kind === 'confirmed_amount'
        ? {
            amountExTax,
            currency: 'jpy',
            billingCount: 'one_time',
            itemKey: r.billingKey?.split('|')[1] ?? 'design',
            orderDescription: 'Design — Website renewal',
            issueDate: '2026-11-23',
            invoicePdfUrl: 'https://pay.example/inv/pdf',
          }
        : {}),
    };
    await db.query(
      `INSERT INTO report (id, fact_key, deal_id, kind, platform, referral_id, channel, status, data,
                           fields, occurred_at, due_at, billing_key, amount_ex_tax, updated_at)
       VALUES ($1, $2, $3, $4, 'aimitsu', 'R-1', 'manual', $5::"ReportStatus", $6, $7, $8, $9, $10,
               $11, now())`,
      [
        id,
        `${r.dealId}|${kind}|${r.billingKey ?? id}`,
        r.dealId,
        kind,
        r.status ?? 'PENDING',
        JSON.stringify(data),
        JSON.stringify(reportFields(data, ZONE)),
        data.occurredAt,
        r.dueAt === undefined ? new Date(Date.now() + 20 * 86_400_000) : r.dueAt,
        r.billingKey ?? null,
        kind === 'confirmed_amount' ? amountExTax : null,
      ],
    );
    return id;
  }

  const reportRow = async (id: string) =>
    (
      await db.query(
        'SELECT status, due_at, delivered_at, reported_amount, postpone_reason, note FROM report WHERE id = $1',
        [id],
      )
    ).rows[0];

  /** The table row of one report on the queue page. */
  const rowOf = (html: string, id: string) =>
    new RegExp(`<tr data-report-id="${id}"[\\s\\S]*?</tr>`).exec(html)?.[0] ?? '';

  let reportDeal: { id: string; customer: string };
  let overdueId: string;
  let pendingId: string;
  let wonId: string;

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await db.query('TRUNCATE report, alert, referral, audit_log, dashboard_session CASCADE');
    await flushTestRedis();
    sim = await ProviderSimulator.start({ port: 0 });
    hub = await startHub({
      ROLE: 'api',
      STRIPE_SECRET_KEY: 'sk_test_closeloop_dashboard_finance',
      STRIPE_API_BASE: sim.url,
    });
    sessions.admin = await login(TEST_SECRETS.ADMIN_TOKEN);
    sessions.finance = await login(await createToken('fin-kato', 'finance'));
    sessions.viewer = await login(await createToken('view-sato', 'viewer'));

    reportDeal = await seedDeal('Website renewal', 'aimitsu');
    overdueId = await seedReport({
      dealId: reportDeal.id,
      status: 'OVERDUE',
      dueAt: new Date(Date.now() - 2 * 86_400_000),
    });
    pendingId = await seedReport({ dealId: reportDeal.id });
    wonId = await seedReport({
      dealId: reportDeal.id,
      kind: 'won',
      status: 'REPORTED',
      dueAt: null,
    });
  });

  afterAll(async () => {
    await hub?.stop();
    await sim?.close();
    await db?.end();
  });

  describe('reports queue', () => {
    it('lists the manual tasks with the platform’s Japanese names, overdue marked, and filters', async () => {
      const res = await get('viewer', '/dashboard/reports');
      expect(res.status).toBe(200);
      expect(res.html).toContain('data-testid="read-at"');
      expect(res.html).toContain('href="/dashboard/reports"'); // nav entry
      expect(res.html).not.toContain('href="/dashboard/reconciliation"'); // finance only

      const overdue = rowOf(res.html, overdueId);
      expect(overdue).toContain('data-overdue="true"');
      expect(overdue).toContain('確定報告');
      expect(overdue).toContain('confirmed amount');
      expect(overdue).toContain('報告期限超過');
      expect(overdue).toContain('aimitsu');
      expect(overdue).toContain('manual');
      expect(overdue).toContain(`/dashboard/deals/${reportDeal.id}`);
      const pending = rowOf(res.html, pendingId);
      expect(pending).toContain('報告期限前');
      expect(pending).not.toContain('data-overdue');
      expect(rowOf(res.html, wonId)).toContain('成約報告');
      expect(rowOf(res.html, wonId)).toContain('報告済み');

      const filtered = await get('viewer', '/dashboard/reports?status=OVERDUE&kind=&platform=');
      expect(filtered.status).toBe(200);
      expect(rowOf(filtered.html, overdueId)).not.toBe('');
      expect(rowOf(filtered.html, pendingId)).toBe('');

      const byDeal = await get('viewer', `/dashboard/reports?dealId=${reportDeal.id}&kind=won`);
      expect(byDeal.html).toContain('data-testid="deal-filter"');
      expect(rowOf(byDeal.html, wonId)).not.toBe('');
      expect(rowOf(byDeal.html, overdueId)).toBe('');

      const none = await get('viewer', '/dashboard/reports?dealId=cl_deal_nothing');
      expect(none.html).toContain('data-testid="no-reports"');
    });

    it('shows the copy-ready fields (Japanese label, English label, value, copy button) and no forms to a viewer', async () => {
      const res = await get('viewer', `/dashboard/reports/${overdueId}`);
      expect(res.status).toBe(200);
      for (const label of [
        '請求回数',
        '受注内容',
        '請求金額',
        '初回の請求書発行日',
        '請求書添付',
      ]) {
        expect(res.html).toContain(label);
      }
      expect(res.html).toContain('Invoice amount (excl. tax)');
      expect(res.html).toMatch(/<tr data-field="amountExTax">[\s\S]*?data-copy="300000"/);
      expect(res.html).toContain('data-copy="1回"');
      expect(res.html).toContain('data-copy="2026-11-23"');
      // The copy buttons' code is served (CSP: no inline script); the browser test clicks one.
      expect(res.html).toContain('<script src="/dashboard/assets/dashboard.js" defer></script>');
      expect(res.html).toContain('data-status="OVERDUE"');
      expect(res.html).not.toContain('data-testid="report-actions"');
      expect(res.html).not.toContain('/mark-reported');

      const english = await request('GET', `/dashboard/reports/${overdueId}`, {
        ...as('viewer'),
        cl_lang: 'en',
      });
      expect(english.html).toContain('Fields to enter');
      expect(english.html).toContain('初回の請求書発行日'); // the platform's own label, in English too

      const missing = await get('viewer', '/dashboard/reports/rpt_nope');
      expect(missing.status).toBe(404);
    });

    it('refuses a viewer’s action (403) and a post without CSRF (403); nothing changes', async () => {
      const before = await reportRow(overdueId);
      const viewer = await post('viewer', `/dashboard/reports/${overdueId}/mark-reported`, {});
      expect(viewer.status).toBe(403);
      expect(viewer.html).toContain('data-testid="error"');
      const noCsrf = await request(
        'POST',
        `/dashboard/reports/${overdueId}/mark-reported`,
        as('finance'),
        { note: 'x' },
      );
      expect(noCsrf.status).toBe(403);
      const wrongCsrf = await request(
        'POST',
        `/dashboard/reports/${overdueId}/postpone`,
        as('finance'),
        { _csrf: sessions.admin.csrf, reason: 'lost' },
      );
      expect(wrongCsrf.status).toBe(403);
      expect(await reportRow(overdueId)).toEqual(before);
      const audits = await db.query('SELECT 1 FROM audit_log WHERE target = $1', [overdueId]);
      expect(audits.rowCount).toBe(0);
    });

    it('finance sees the allowed actions only, postpones with a reason and a new date', async () => {
      const detail = await get('finance', `/dashboard/reports/${pendingId}`);
      expect(detail.html).toContain('data-testid="form-mark-reported"');
      expect(detail.html).toContain('data-testid="form-postpone"');
      expect(detail.html).toContain('value="date_changed"');
      expect(detail.html).toContain('日程変更');
      expect(detail.html).toContain('未着手・保留');
      expect(detail.html).toContain('失注');
      // PENDING: UNDER_REVIEW and REPORTED may be set; CORRECTION_REQUESTED and FEE_ONGOING not.
      expect(detail.html).toContain('name="status" value="UNDER_REVIEW"');
      expect(detail.html).toContain('name="status" value="REPORTED"');
      expect(detail.html).not.toContain('name="status" value="CORRECTION_REQUESTED"');
      expect(detail.html).not.toContain('name="status" value="FEE_ONGOING"');

      // Refused: date_changed without a date → the reason, shown on the report, nothing changed.
      const refused = await post('finance', `/dashboard/reports/${pendingId}/postpone`, {
        reason: 'date_changed',
        newDueAt: '',
      });
      expect(refused.status).toBe(400);
      expect(refused.html).toContain('data-testid="refused"');
      expect(refused.html).toContain('needs newDueAt');

      const due = dateIn(40);
      const res = await post('finance', `/dashboard/reports/${pendingId}/postpone`, {
        reason: 'date_changed',
        newDueAt: due,
        note: '先方の都合で延期',
      });
      expect(res.status).toBe(303);
      expect(res.location).toBe(`/dashboard/reports/${pendingId}?done=postpone`);
      const row = await reportRow(pendingId);
      expect(row).toMatchObject({ status: 'PENDING', postpone_reason: 'date_changed' });
      // Due when that local day is over in Asia/Tokyo: 15:00Z of the same date.
      expect((row.due_at as Date).toISOString()).toBe(`${due}T15:00:00.000Z`);

      const after = await get('finance', res.location!);
      expect(after.html).toContain('data-testid="notice"');
      expect(after.html).toContain('data-done="postpone"');
      expect(after.html).toMatch(/data-testid="report-history"[\s\S]*report\.postpone/);
    });

    it('finance marks an overdue task reported with the amount entered: REPORTED, audited as finance', async () => {
      const res = await post('finance', `/dashboard/reports/${overdueId}/mark-reported`, {
        amountExTax: '290000',
        note: 'entered on アイミツ',
      });
      expect(res.status).toBe(303);
      expect(res.location).toBe(`/dashboard/reports/${overdueId}?done=mark_reported`);
      const row = await reportRow(overdueId);
      // BIGINT column: pg returns int8 as text.
      expect(row).toMatchObject({ status: 'REPORTED', reported_amount: '290000' });
      expect(row.delivered_at).not.toBeNull();
      const audit = await db.query(
        'SELECT actor, role, action, details FROM audit_log WHERE target = $1',
        [overdueId],
      );
      expect(audit.rows).toEqual([
        expect.objectContaining({
          actor: 'fin-kato',
          role: 'finance',
          action: 'report.mark_reported',
          details: expect.objectContaining({ from: 'OVERDUE', to: 'REPORTED' }),
        }),
      ]);

      const after = await get('finance', res.location!);
      expect(after.html).toContain('data-done="mark_reported"');
      expect(after.html).toContain('data-status="REPORTED"');
      expect(after.html).not.toContain('data-testid="form-mark-reported"'); // already reported
      expect(after.html).not.toContain('data-testid="form-postpone"');

      // Again: refused with the reason (409), nothing changed.
      const again = await post('finance', `/dashboard/reports/${overdueId}/mark-reported`, {});
      expect(again.status).toBe(409);
      expect(again.html).toContain('the report is already REPORTED');
      expect((await reportRow(overdueId)).status).toBe('REPORTED');
    });

    it('finance corrects the fields of a task under 修正依頼 from its page: only the changed ones, in its history', async () => {
      const id = await seedReport({ dealId: reportDeal.id, status: 'CORRECTION_REQUESTED' });
      const viewerPage = await get('viewer', `/dashboard/reports/${id}`);
      expect(viewerPage.html).not.toContain('data-testid="form-correct"');
      const viewer = await post('viewer', `/dashboard/reports/${id}/correct`, {
        'field.amountExTax': '1',
      });
      expect(viewer.status).toBe(403);

      const page = await get('finance', `/dashboard/reports/${id}`);
      expect(page.html).toContain('data-testid="form-correct"');
      expect(page.html).toContain(`action="/dashboard/reports/${id}/correct"`);
      expect(page.html).toMatch(/name="field\.billingCount" value="1回"/);
      expect(page.html).toMatch(/name="field\.amountExTax" value="300000"/);

      // The whole form comes back; only the changed fields are corrections.
      const res = await post('finance', `/dashboard/reports/${id}/correct`, {
        'field.billingCount': '複数回(毎月変動)',
        'field.orderDescription': 'Design — Website renewal',
        'field.amountExTax': '290000',
        'field.issueDate': '2026-11-23',
        'field.attachment': 'https://pay.example/inv/pdf',
        note: '事務局の修正依頼',
      });
      expect(res.status).toBe(303);
      expect(res.location).toBe(`/dashboard/reports/${id}?done=correct`);
      expect(await reportRow(id)).toMatchObject({
        status: 'CORRECTION_REQUESTED',
        reported_amount: '290000',
        note: '事務局の修正依頼',
      });
      const audit = await db.query(
        'SELECT role, action, details FROM audit_log WHERE target = $1',
        [id],
      );
      expect(audit.rows).toEqual([
        expect.objectContaining({
          role: 'finance',
          action: 'report.correct',
          details: expect.objectContaining({
            changes: [
              { key: 'billingCount', label: '請求回数', before: '1回', after: '複数回(毎月変動)' },
              { key: 'amountExTax', label: '請求金額', before: '300000', after: '290000' },
            ],
          }),
        }),
      ]);
      const after = await get('finance', res.location!);
      expect(after.html).toContain('data-done="correct"');
      expect(after.html).toMatch(/data-copy="複数回\(毎月変動\)"/);
      expect(after.html).toContain('data-testid="history-change" data-key="amountExTax"');
      expect(after.html).toContain('請求金額: 300000 → 290000');

      // An unreadable value: the reason on the page (400), nothing changed.
      const bad = await post('finance', `/dashboard/reports/${id}/correct`, {
        'field.issueDate': '23/11/2026',
      });
      expect(bad.status).toBe(400);
      expect(bad.html).toContain('data-testid="refused"');
      expect(bad.html).toContain('issueDate: must be a date YYYY-MM-DD');
      expect((await db.query('SELECT 1 FROM audit_log WHERE target = $1', [id])).rowCount).toBe(1);
      // Without CSRF: 403.
      const noCsrf = await request('POST', `/dashboard/reports/${id}/correct`, as('finance'), {
        'field.amountExTax': '1',
      });
      expect(noCsrf.status).toBe(403);
    });

    it('sets the status the platform shows (報告済み → 修正依頼)', async () => {
      const review = await post('admin', `/dashboard/reports/${wonId}/status`, {
        status: 'CORRECTION_REQUESTED',
      });
      expect(review.status).toBe(303);
      expect((await reportRow(wonId)).status).toBe('CORRECTION_REQUESTED');
      const page = await get('finance', `/dashboard/reports/${wonId}`);
      expect(page.html).toContain('修正依頼');
    });
  });

  describe('a loss proposed from まだ未定 (失注) on the deal page', () => {
    it('shows the proposal; finance dismisses or confirms it (CSRF, role), a viewer may not', async () => {
      const deal = await seedDeal('Lost K.K.', 'aimitsu');
      await db.query(
        `INSERT INTO stage_trigger (deal_id, at, type, target, cause)
         VALUES ($1, now() - interval '1 day', 'crm.stage', 'WON', 'test')`,
        [deal.id],
      );
      const task = await seedReport({ dealId: deal.id });
      const proposed = await post('finance', `/dashboard/reports/${task}/postpone`, {
        reason: 'lost',
        note: '先方が計画を中止',
      });
      expect(proposed.status).toBe(303);

      const forViewer = await get('viewer', `/dashboard/deals/${deal.id}`);
      expect(forViewer.html).toMatch(/data-testid="loss-proposal"[\s\S]*先方が計画を中止/);
      expect(forViewer.html).toContain('失注の提案');
      expect(forViewer.html).not.toContain('data-testid="form-loss-confirm"');
      const forbidden = await post('viewer', `/dashboard/deals/${deal.id}/loss/confirm`, {});
      expect(forbidden.status).toBe(403);
      const noCsrf = await request(
        'POST',
        `/dashboard/deals/${deal.id}/loss/confirm`,
        as('finance'),
        {},
      );
      expect(noCsrf.status).toBe(403);
      const page = await get('finance', `/dashboard/deals/${deal.id}`);
      expect(page.html).toContain('data-testid="form-loss-confirm"');
      expect(page.html).toContain('data-testid="form-loss-dismiss"');

      const dismissed = await post('finance', `/dashboard/deals/${deal.id}/loss/dismiss`, {});
      expect(dismissed.status).toBe(303);
      expect(dismissed.location).toBe(`/dashboard/deals/${deal.id}`);
      expect((await get('finance', dismissed.location!)).html).not.toContain(
        'data-testid="loss-proposal"',
      );

      await post('finance', `/dashboard/reports/${task}/postpone`, { reason: 'lost' });
      const confirmed = await post('finance', `/dashboard/deals/${deal.id}/loss/confirm`, {});
      expect(confirmed.status).toBe(303);
      const after = await get('finance', `/dashboard/deals/${deal.id}`);
      expect(after.html).toContain('data-testid="stage" data-code="LOST"');
      expect(after.html).not.toContain('data-testid="loss-proposal"');
      const audit = await db.query(
        'SELECT actor, action FROM audit_log WHERE target = $1 ORDER BY id',
        [deal.id],
      );
      expect(audit.rows).toEqual([
        { actor: 'fin-kato', action: 'deal.loss.dismiss' },
        { actor: 'fin-kato', action: 'deal.loss.confirm' },
      ]);
      // Nothing proposed any more: the refusal's page.
      const again = await post('finance', `/dashboard/deals/${deal.id}/loss/confirm`, {});
      expect(again.status).toBe(409);
      expect(again.html).toContain('has no proposed loss to confirm');
    });
  });

  describe('reconciliation', () => {
    it('names each mismatch kind, mismatches first, clean deals collapsed', async () => {
      const clean = await seedDeal('Clean K.K.', 'aimitsu');
      const cleanInv = await seedInvoice(clean, 'deposit', 300_000, 'POSTED', 'open');
      await seedReport({
        dealId: clean.id,
        status: 'REPORTED',
        billingKey: cleanInv.billingKey,
        dueAt: null,
      });
      const messy = await seedDeal('Messy K.K.', 'aimitsu');
      await seedInvoice(messy, 'deposit', 300_000, 'POSTED', 'open', 310_000); // amount_differs
      await seedInvoice(messy, 'design', 200_000, 'POSTED', 'paid'); // status_differs
      sim.stripe.createInvoiceOutsideHub({
        customer: messy.customer,
        amount: 50_000,
        currency: 'jpy',
        description: 'made by hand',
        status: 'open',
        emit: false,
      }); // unknown_invoice

      const res = await get('finance', '/dashboard/reconciliation');
      expect(res.status).toBe(200);
      expect(res.html).toContain('data-testid="read-at"');
      const mismatches = /data-testid="recon-mismatches"[\s\S]*?<\/table>/.exec(res.html)?.[0];
      expect(mismatches).toContain(messy.id);
      expect(mismatches).not.toContain(clean.id);
      for (const [kind, label] of [
        ['amount_differs', '金額の不一致'],
        ['status_differs', '状態の不一致'],
        ['unknown_invoice', 'ハブが作っていない請求書'],
        ['invoiced_not_reported', '請求済み・未報告'],
      ]) {
        expect(mismatches).toContain(`data-kind="${kind}"`);
        expect(mismatches).toContain(label);
      }
      expect(mismatches).toContain('is for ¥310,000 excl. tax, the hub billed ¥300,000');
      expect(res.html).toMatch(/<details data-testid="recon-clean">[\s\S]*?cl_deal/);
      expect(/data-testid="recon-clean"[\s\S]*<\/details>/.exec(res.html)?.[0]).toContain(clean.id);
      expect(res.html).toContain('href="/dashboard/reconciliation.csv"');

      const one = await get('finance', `/dashboard/reconciliation?dealId=${clean.id}`);
      expect(one.html).not.toContain(messy.id);
      expect(one.html).toContain(`/dashboard/reconciliation.csv?dealId=${clean.id}`);
      expect(one.html).toContain('data-testid="recon-all-clean"');
    });

    it('shows a page at a time, its mismatches first, with a link to the next page', async () => {
      // The newest deal agrees; the one before it (Messy K.K., above) does not.
      const newer = await seedDeal('Newer K.K.', null);
      await seedInvoice(newer, 'deposit', 100_000, 'POSTED', 'open');
      const first = await get('finance', '/dashboard/reconciliation?limit=2');
      expect(first.status).toBe(200);
      expect(first.html).toContain('このページ: 案件 2 件 · 不一致のある案件 1 件');
      const rows = [...first.html.matchAll(/<tr data-deal-id="([^"]+)"/g)].map((m) => m[1]);
      expect(rows).toHaveLength(2);
      expect(rows[1]).toBe(newer.id); // the older deal with mismatches comes first
      const mismatches = /data-testid="recon-mismatches"[\s\S]*?<\/table>/.exec(first.html)?.[0];
      expect(mismatches).toContain(rows[0]);
      expect(mismatches).not.toContain(newer.id);
      expect(first.html).not.toContain('data-testid="recon-first"');

      // Follow "next" to the last page: every reconciled deal once, newest first.
      const expected = (
        await db.query<{ id: string }>(
          `SELECT id FROM deal d WHERE billing_plan IS NOT NULL
              OR EXISTS (SELECT 1 FROM invoice i WHERE i.deal_id = d.id) ORDER BY id DESC`,
        )
      ).rows.map((r) => r.id);
      expect(expected.length).toBeGreaterThan(2);
      const seen: string[] = [];
      let html = first.html;
      for (let pages = 1; ; pages++) {
        const onPage = [...html.matchAll(/<tr data-deal-id="([^"]+)"/g)].map((m) => m[1]);
        seen.push(...[...onPage].sort().reverse());
        const next = /<a href="([^"]+)" rel="next" data-testid="next-page">/.exec(html)?.[1];
        if (!next) break;
        const href = next.replace(/&amp;/g, '&');
        expect(href).toMatch(/^\/dashboard\/reconciliation\?limit=2&cursor=cl_deal_/);
        const res = await get('finance', href);
        expect(res.status).toBe(200);
        expect(res.html).toContain('href="/dashboard/reconciliation" data-testid="recon-first"');
        html = res.html;
        expect(pages).toBeLessThan(50);
      }
      expect(seen).toEqual(expected);
      // The download is still the whole reconciliation, every page.
      expect(first.html).toContain('href="/dashboard/reconciliation.csv"');
    });

    it('downloads the same CSV as the API (text/csv, attachment, header row)', async () => {
      const res = await get('finance', '/dashboard/reconciliation.csv');
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('text/csv; charset=utf-8');
      expect(res.headers.get('content-disposition')).toMatch(
        /^attachment; filename="reconciliation-.+\.csv"$/,
      );
      const header = res.html.split('\r\n')[0];
      expect(header).toMatch(/^deal_id,deal_name,crm_deal_id,currency,contracted,invoiced_hub/);
      // Every reconciled deal, not just the page the dashboard shows (limit 1 here).
      const shown = await get('finance', '/dashboard/reconciliation?limit=1');
      expect(shown.html).toContain('data-testid="next-page"');
      expect(res.html.split('\r\n').length).toBeGreaterThan(4);
      const api = await fetch(`${hub.url}/api/reconciliation?format=csv`, {
        headers: { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` },
      });
      expect((await api.text()).split('\r\n').slice(1)).toEqual(res.html.split('\r\n').slice(1));
    });

    it('is finance only: a viewer gets 403 on the page and the CSV', async () => {
      expect((await get('viewer', '/dashboard/reconciliation')).status).toBe(403);
      const csv = await get('viewer', '/dashboard/reconciliation.csv');
      expect(csv.status).toBe(403);
      expect(csv.headers.get('content-type')).toMatch(/^text\/html/);
      const admin = await get('admin', '/dashboard/reconciliation');
      expect(admin.status).toBe(200);
    });

    it('says so when Stripe is not configured', async () => {
      const bare = await startHub({ ROLE: 'api', STRIPE_SECRET_KEY: undefined });
      try {
        const { session } = await login(TEST_SECRETS.ADMIN_TOKEN, bare.url);
        const res = await request(
          'GET',
          '/dashboard/reconciliation',
          { cl_session: session },
          undefined,
          bare.url,
        );
        expect(res.status).toBe(503);
        expect(res.html).toContain('data-code="STRIPE_NOT_CONFIGURED"');
        expect(res.html).toContain('reconciliation reads Stripe: set STRIPE_SECRET_KEY');
      } finally {
        await bare.stop();
      }
    });
  });
});
