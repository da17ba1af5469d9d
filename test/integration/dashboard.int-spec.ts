import { Pool } from 'pg';

import { PrismaService } from '../../src/prisma/prisma.service';
import {
  closeTestPrisma,
  createBillingItem,
  createContract,
  createDeal,
  createInvoice,
  createReport,
  createTimelineEntry,
  openTestPrisma,
} from '../factories';
import { RunningHub, flushTestRedis, startHub, testDb, truncateAll } from '../support/hub';
import { TEST_SECRETS } from '../support/test-env';

/**
 * The web dashboard (CONTRACT §6, docs/decisions/0006) over HTTP: login with the admin API's
 * tokens, the session cookie, CSRF on state-changing posts, revocation, and the first pages.
 */

interface Page {
  status: number;
  html: string;
  location: string | null;
  cookies: string[];
  headers: Headers;
}

const PAID_INVOICE = 'in_dash_paid_0001';

describe('dashboard', () => {
  let hub: RunningHub;
  let db: Pool;
  let prisma: PrismaService;

  async function get(path: string, cookies: Record<string, string> = {}, headers = {}) {
    return request('GET', path, cookies, undefined, headers);
  }

  async function request(
    method: string,
    path: string,
    cookies: Record<string, string> = {},
    form?: Record<string, string>,
    headers: Record<string, string> = {},
  ): Promise<Page> {
    const cookie = Object.entries(cookies)
      .map(([k, v]) => `${k}=${v}`)
      .join('; ');
    const res = await fetch(`${hub.url}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        ...(cookie ? { cookie } : {}),
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
        ...headers,
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

  /** Logs in through the form; returns the session cookie and the page's CSRF token. */
  async function login(token: string) {
    const form = await get('/dashboard/login');
    const loginCsrf = cookieValue(form, 'cl_login')!;
    expect(csrfOf(form.html)).toBe(loginCsrf);
    const res = await request(
      'POST',
      '/dashboard/login',
      { cl_login: loginCsrf },
      {
        _csrf: loginCsrf,
        token,
      },
    );
    expect(res.status).toBe(302);
    const session = cookieValue(res, 'cl_session')!;
    const overview = await get('/dashboard', { cl_session: session });
    expect(overview.status).toBe(200);
    return { session, csrf: csrfOf(overview.html)!, res };
  }

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
    return (await res.json()) as { id: string; token: string };
  }

  async function seed() {
    const now = new Date();
    const won = { id: 'cl_deal_dash_won', bare: true, history: false } as const;
    const open = { id: 'cl_deal_dash_open', bare: true, history: false } as const;
    await createDeal(prisma, {
      ...won,
      name: 'Kintone rollout',
      stage: 'WON',
      amount: 300_000,
      crmDealId: 'crm-991',
      wonAt: now,
    });
    await createDeal(prisma, {
      ...open,
      name: 'Website renewal',
      stage: 'NEGOTIATING',
      amount: 500_000,
    });
    const setup = { key: 'setup', label: 'Setup fee', trigger: 'contract.signed', position: 0 };
    await createBillingItem(prisma, { ...setup, id: 'bi_dash_1', dealId: won.id, amount: 300_000 });
    await createBillingItem(prisma, {
      ...setup,
      id: 'bi_dash_2',
      dealId: open.id,
      amount: 500_000,
    });
    await createInvoice(prisma, {
      id: 'inv_dash_1',
      dealId: won.id,
      itemKey: 'setup',
      amount: 300_000,
      taxRatePercent: 10,
      description: 'Setup fee — Kintone rollout',
      state: 'PAID',
      providerInvoiceId: PAID_INVOICE,
      invoiceNumber: 'INV-DASH-0001',
      hostedInvoiceUrl: 'https://invoice.stripe.com/i/acct_test/dash',
      total: 330_000,
      amountPaid: 330_000,
      paidAt: now,
      bare: true,
    });
    const cause = 'hubspot deal.propertyChange (evt_dash_1)';
    await createTimelineEntry(prisma, {
      dealId: won.id,
      kind: 'transition',
      message: 'stage NEGOTIATING → WON',
      cause,
      fromStage: 'NEGOTIATING',
      toStage: 'WON',
    });
    await createTimelineEntry(prisma, {
      dealId: won.id,
      kind: 'billing',
      message: 'invoice due for Setup fee (setup): ¥300,000 + tax 10% — the contract is signed',
      cause,
    });
  }

  beforeAll(async () => {
    db = testDb();
    prisma = openTestPrisma();
    await truncateAll(db);
    await db.query('TRUNCATE dashboard_session');
    await flushTestRedis();
    await seed();
    hub = await startHub();
  });

  afterAll(async () => {
    await hub?.stop();
    await closeTestPrisma(prisma);
    await db?.end();
  });

  describe('login and session', () => {
    it('refuses a bad token with 401 and sets no cookie', async () => {
      const form = await get('/dashboard/login');
      const loginCsrf = cookieValue(form, 'cl_login')!;
      const res = await request(
        'POST',
        '/dashboard/login',
        { cl_login: loginCsrf },
        {
          _csrf: loginCsrf,
          token: 'not-a-token',
        },
      );
      expect(res.status).toBe(401);
      expect(res.cookies).toEqual([]);
      expect(res.html).toContain('data-testid="login-error"');
    });

    it('refuses a login post whose form token does not match its cookie (login CSRF)', async () => {
      const res = await request(
        'POST',
        '/dashboard/login',
        { cl_login: 'a'.repeat(43) },
        {
          _csrf: 'b'.repeat(43),
          token: TEST_SECRETS.ADMIN_TOKEN,
        },
      );
      expect(res.status).toBe(403);
      expect(cookieValue(res, 'cl_session')).toBeUndefined();
    });

    it('starts a session on a good token: 302 and an HttpOnly, SameSite=Strict cookie on /dashboard', async () => {
      const { res } = await login(TEST_SECRETS.ADMIN_TOKEN);
      expect(res.location).toBe('/dashboard');
      const cookie = res.cookies.find((c) => c.startsWith('cl_session='))!;
      expect(cookie).toMatch(/; HttpOnly/i);
      expect(cookie).toMatch(/; SameSite=Strict/i);
      expect(cookie).toMatch(/; Path=\/dashboard(;|$)/);
      expect(cookie).toMatch(/; Secure/i); // PUBLIC_BASE_URL is https in the test env
      const rows = await db.query('SELECT id, token_id, role FROM dashboard_session');
      expect(rows.rows).toContainEqual(expect.objectContaining({ token_id: null, role: 'admin' }));
      // Only a digest of the cookie is stored.
      expect(rows.rows.map((r: { id: string }) => r.id)).not.toContain(cookieValueOf(cookie));
    });

    it('sends pages without a session to the login form, and htmx requests get 401 + HX-Redirect', async () => {
      for (const path of ['/dashboard', '/dashboard/deals', '/dashboard/deals/cl_deal_dash_won']) {
        const res = await get(path);
        expect(res.status).toBe(302);
        expect(res.location).toMatch(/^\/dashboard\/login\?next=/);
      }
      const bogus = await get('/dashboard', { cl_session: 'forged' });
      expect(bogus.status).toBe(302);
      const panel = await get('/dashboard/overview/panel', {}, { 'hx-request': 'true' });
      expect(panel.status).toBe(401);
      expect(panel.headers.get('hx-redirect')).toBe('/dashboard/login');
    });

    it('refuses a POST without or with a wrong CSRF token (403, nothing changed), accepts the right one', async () => {
      const { session, csrf } = await login(TEST_SECRETS.ADMIN_TOKEN);
      const none = await request('POST', '/dashboard/logout', { cl_session: session }, {});
      expect(none.status).toBe(403);
      expect(none.html).toContain('data-testid="error"');
      const wrong = await request(
        'POST',
        '/dashboard/logout',
        { cl_session: session },
        {
          _csrf: 'x'.repeat(csrf.length),
        },
      );
      expect(wrong.status).toBe(403);
      const header = await request(
        'POST',
        '/dashboard/logout',
        { cl_session: session },
        undefined,
        {
          'x-csrf-token': 'nope',
        },
      );
      expect(header.status).toBe(403);
      expect((await get('/dashboard', { cl_session: session })).status).toBe(200); // still logged in

      const ok = await request('POST', '/dashboard/logout', { cl_session: session }, undefined, {
        'x-csrf-token': csrf,
      });
      expect(ok.status).toBe(303);
      expect(ok.location).toBe('/dashboard/login');
      expect(cookieValue(ok, 'cl_session')).toBe('');
      expect((await get('/dashboard', { cl_session: session })).status).toBe(302);
    });

    it('ends the session of a token that is revoked', async () => {
      const token = await createToken('dash-viewer', 'viewer');
      const { session, csrf } = await login(token.token);
      const page = await get('/dashboard', { cl_session: session });
      expect(page.html).toContain('dash-viewer');
      expect(csrf).toBeTruthy();
      const del = await fetch(`${hub.url}/api/tokens/${token.id}`, {
        method: 'DELETE',
        headers: { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` },
      });
      expect(del.status).toBe(204);
      const after = await get('/dashboard', { cl_session: session });
      expect(after.status).toBe(302);
      expect(after.location).toMatch(/^\/dashboard\/login/);
    });
  });

  describe('pages', () => {
    let session: string;
    beforeAll(async () => {
      ({ session } = await login(TEST_SECRETS.ADMIN_TOKEN));
    });
    const as = (lang: 'ja' | 'en') => ({ cl_session: session, cl_lang: lang });

    it('overview shows every connector, the queues and when it was read, and refreshes itself', async () => {
      const res = await get('/dashboard', as('en'));
      expect(res.status).toBe(200);
      for (const key of [
        'stripe',
        'hubspot',
        'docusign',
        'partner-center',
        'report-webhook',
        'alert-webhook',
      ]) {
        expect(res.html).toContain(`data-connector="${key}"`);
      }
      expect(res.html).toMatch(
        /data-testid="read-at"[^>]*>Read at \d{4}-\d\d-\d\d \d\d:\d\d:\d\d \(Asia\/Tokyo\)/,
      );
      expect(res.html).toContain('data-testid="queues"');
      expect(res.html).toContain('hx-trigger="every 15s"');
      const panel = await get('/dashboard/overview/panel', as('en'), { 'hx-request': 'true' });
      expect(panel.status).toBe(200);
      expect(panel.html.trimStart()).toMatch(/^<section id="overview-panel"/);
    });

    it('serves htmx and the stylesheet to the login page', async () => {
      const js = await get('/dashboard/assets/htmx.min.js');
      expect(js.status).toBe(200);
      expect(js.headers.get('content-type')).toMatch(/javascript/);
      expect((await get('/dashboard/assets/dashboard.css')).status).toBe(200);
    });

    it('finds a deal by its Stripe invoice id (and by its CRM id), and filters by stage', async () => {
      const byInvoice = await get(`/dashboard/deals?q=${PAID_INVOICE}&stage=`, as('en'));
      expect(byInvoice.status).toBe(200);
      expect(byInvoice.html).toContain('data-deal-id="cl_deal_dash_won"');
      expect(byInvoice.html).not.toContain('data-deal-id="cl_deal_dash_open"');
      const byCrm = await get('/dashboard/deals?q=crm-991', as('en'));
      expect(byCrm.html).toContain('data-deal-id="cl_deal_dash_won"');
      const byStage = await get('/dashboard/deals?stage=NEGOTIATING', as('en'));
      expect(byStage.html).toContain('data-deal-id="cl_deal_dash_open"');
      expect(byStage.html).not.toContain('data-deal-id="cl_deal_dash_won"');
      const none = await get('/dashboard/deals?q=in_unknown', as('en'));
      expect(none.html).toContain('data-testid="no-deals"');
    });

    it('deal detail shows the billing-status box, the items with the Stripe link and the timeline', async () => {
      const res = await get('/dashboard/deals/cl_deal_dash_won', as('en'));
      expect(res.status).toBe(200);
      expect(res.html).toMatch(/data-testid="billing-status" data-tone="ok"/);
      expect(res.html).toContain('“Setup fee” is invoiced and paid (invoice INV-DASH-0001).');
      expect(res.html).toContain('href="https://invoice.stripe.com/i/acct_test/dash"');
      expect(res.html).toContain('data-testid="timeline"');
      expect(res.html).toContain('stage NEGOTIATING → WON');
      expect(res.html).toContain('hubspot deal.propertyChange (evt_dash_1)');

      const open = await get('/dashboard/deals/cl_deal_dash_open', as('en'));
      expect(open.html).toMatch(/data-testid="billing-status" data-tone="waiting"/);
      expect(open.html).toContain('The deal is not won yet (stage Negotiating)');

      const missing = await get('/dashboard/deals/cl_deal_nope', as('en'));
      expect(missing.status).toBe(404);
    });

    it('speaks Japanese for stages, billing statuses, report statuses and platform states, keeping each code', async () => {
      const pc = await createDeal(prisma, {
        id: 'cl_deal_dash_pc',
        bare: true,
        history: false,
        name: 'Azure migration',
        stage: 'CONTRACT_SENT',
        amount: 800_000,
        referral: { platform: 'partner-center', id: 'pc-ref-1' },
      });
      await prisma.referral.create({
        data: {
          id: 'ref_dash_pc',
          platform: 'partner-center',
          externalId: 'pc-ref-1',
          dealId: pc.id,
          state: 'IN_EVALUATION',
          title: 'Azure migration',
          platformStatus: 'Active',
          platformSubstatus: 'Accepted',
          snapshot: {},
        },
      });
      await createContract(prisma, { dealId: pc.id, status: 'SENT' });
      await createBillingItem(prisma, {
        id: 'bi_dash_pc',
        dealId: pc.id,
        key: 'setup',
        label: 'Setup fee',
        trigger: 'contract.signed',
        position: 0,
        amount: 800_000,
      });
      await createTimelineEntry(prisma, {
        dealId: pc.id,
        kind: 'transition',
        message: 'stage NEGOTIATING → CONTRACT_SENT',
        cause: 'test',
        fromStage: 'NEGOTIATING',
        toStage: 'CONTRACT_SENT',
      });
      const pcReport = await createReport(prisma, {
        dealId: pc.id,
        kind: 'appointment',
        platform: 'partner-center',
        channel: 'partner-center',
        referralId: 'pc-ref-1',
        status: 'PENDING',
      });
      const aimitsuPending = await createReport(prisma, { dealId: pc.id, status: 'PENDING' });
      const aimitsuReview = await createReport(prisma, { dealId: pc.id, status: 'UNDER_REVIEW' });

      const ja = await get(`/dashboard/deals/${pc.id}`, as('ja'));
      expect(ja.status).toBe(200);
      const codeWord = (code: string, word: string) =>
        new RegExp(`data-code="${code}" title="${code}">${word}<`);
      expect(ja.html).toMatch(
        /data-testid="stage" data-code="CONTRACT_SENT" title="CONTRACT_SENT">契約書送付済み</,
      );
      expect(ja.html).toMatch(
        /data-testid="contract-status" data-code="SENT" title="SENT">送付済み</,
      );
      expect(ja.html).toMatch(
        /data-testid="referral-state" data-code="IN_EVALUATION" title="IN_EVALUATION">評価中</,
      );
      // Partner Center's own status words, from its platform profile.
      expect(ja.html).toMatch(
        /data-testid="platform-status" data-code="Active\/Accepted"[^>]*>\(アクティブ \/ 承認済み\)</,
      );
      expect(ja.html).toMatch(codeWord('NOT_READY', '請求前'));
      expect(ja.html).toMatch(
        /data-code="NEGOTIATING→CONTRACT_SENT"[^>]*>商談中 → 契約書送付済み</,
      );
      expect(ja.html).toContain('案件はまだ成約していません（ステージ 契約書送付済み）');
      // Report statuses: PRONI アイミツ's words for its tasks, the hub's for Partner Center.
      const reportRow = (html: string, id: string) =>
        new RegExp(`<tr data-report="${id}">[\\s\\S]*?</tr>`).exec(html)?.[0] ?? '';
      expect(reportRow(ja.html, aimitsuPending.id)).toMatch(codeWord('PENDING', '報告期限前'));
      expect(reportRow(ja.html, aimitsuReview.id)).toMatch(
        codeWord('UNDER_REVIEW', '事務局確認中'),
      );
      expect(reportRow(ja.html, pcReport.id)).toMatch(codeWord('PENDING', '未報告'));
      // No code is left as the visible word.
      for (const code of [
        'CONTRACT_SENT',
        'SENT',
        'IN_EVALUATION',
        'NOT_READY',
        'PENDING',
        'UNDER_REVIEW',
      ]) {
        expect(ja.html).not.toContain(`>${code}<`);
      }

      const en = await get(`/dashboard/deals/${pc.id}`, as('en'));
      expect(en.html).toMatch(codeWord('CONTRACT_SENT', 'Contract sent'));
      expect(en.html).toMatch(codeWord('IN_EVALUATION', 'In evaluation'));
      expect(en.html).toContain('>(Active / Accepted)<');
      expect(en.html).toMatch(codeWord('NOT_READY', 'Not ready'));
      expect(reportRow(en.html, aimitsuReview.id)).toMatch(
        codeWord('UNDER_REVIEW', 'Under review by the secretariat'),
      );
      expect(en.html).not.toContain('契約書送付済み');

      const won = await get('/dashboard/deals/cl_deal_dash_won', as('ja'));
      expect(won.html).toMatch(/data-testid="stage" data-code="WON" title="WON">成約</);
      expect(won.html).toMatch(codeWord('PAID', '入金済み')); // the item and its invoice

      const list = await get('/dashboard/deals', as('ja'));
      expect(list.html).toMatch(/<option value="NEGOTIATING">商談中<\/option>/);
      expect(list.html).toMatch(
        /<tr data-deal-id="cl_deal_dash_won">[\s\S]*?data-code="WON" title="WON">成約</,
      );

      const queue = await get(`/dashboard/reports?dealId=${pc.id}`, as('ja'));
      const queueRow = (id: string) =>
        new RegExp(`<tr data-report-id="${id}"[\\s\\S]*?</tr>`).exec(queue.html)?.[0] ?? '';
      expect(queueRow(aimitsuPending.id)).toMatch(codeWord('PENDING', '報告期限前'));
      expect(queueRow(aimitsuReview.id)).toMatch(codeWord('UNDER_REVIEW', '事務局確認中'));
      expect(queueRow(pcReport.id)).toMatch(codeWord('PENDING', '未報告'));
      const filtered = await get('/dashboard/reports?platform=aimitsu', as('ja'));
      expect(filtered.html).toMatch(/<option value="FEE_ONGOING">成約手数料発生中<\/option>/);
    });

    it('escapes what it shows', async () => {
      await createTimelineEntry(prisma, {
        dealId: 'cl_deal_dash_open',
        kind: 'admin',
        message: '<script>alert(1)</script>',
        cause: 'test',
      });
      const res = await get('/dashboard/deals/cl_deal_dash_open', as('en'));
      expect(res.html).not.toContain('<script>alert(1)</script>');
      expect(res.html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    });

    it('switches the language (ja ↔ en) with a cookie, defaulting to Accept-Language, else Japanese', async () => {
      const toEn = await get('/dashboard/lang?to=en&back=%2Fdashboard%2Fdeals', {
        cl_session: session,
      });
      expect(toEn.status).toBe(303);
      expect(toEn.location).toBe('/dashboard/deals');
      expect(cookieValue(toEn, 'cl_lang')).toBe('en');
      const evil = await get('/dashboard/lang?to=ja&back=https%3A%2F%2Fevil.example', {
        cl_session: session,
      });
      expect(evil.location).toBe('/dashboard');

      const en = await get('/dashboard/deals', as('en'));
      expect(en.html).toContain('<html lang="en">');
      expect(en.html).toContain('>Deals<');
      const ja = await get('/dashboard/deals', as('ja'));
      expect(ja.html).toContain('<html lang="ja">');
      expect(ja.html).toContain('>案件<');
      const fromHeader = await get(
        '/dashboard/deals',
        { cl_session: session },
        { 'accept-language': 'en-US,en;q=0.9' },
      );
      expect(fromHeader.html).toContain('<html lang="en">');
      const fallback = await get('/dashboard/deals', { cl_session: session });
      expect(fallback.html).toContain('<html lang="ja">');
      const detail = await get('/dashboard/deals/cl_deal_dash_won', as('ja'));
      expect(detail.html).toContain('「Setup fee」は請求・入金済みです（請求書 INV-DASH-0001）。');
    });
  });
});

function cookieValueOf(setCookie: string): string {
  return setCookie.split(';')[0].split('=')[1];
}
