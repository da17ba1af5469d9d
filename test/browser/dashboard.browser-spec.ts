import { readFileSync } from 'node:fs';

import { Browser, BrowserContext, Page } from 'playwright-core';
import { Pool } from 'pg';

import { CSV_HEADER } from '../../src/admin/reconciliation.service';
import { closeTestPrisma, createReport, openTestPrisma } from '../factories';
import { launchBrowser, login, newContext, screenshot } from '../support/browser';
import {
  CONTRACT_PLAN,
  E2E,
  admin,
  dealIdForCrm,
  getDeal,
  startE2EHub,
  startProviders,
} from '../support/e2e';
import { RunningHub, flushTestRedis, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_SECRETS } from '../support/test-env';

/**
 * The web dashboard in a real browser (issue 5): a hub with the provider simulator, one deal
 * signed through DocuSign with its deposit invoice posted to Stripe, two deals whose invoice
 * Stripe refused (dead letters), and viewer and finance tokens.
 */
describe('the web dashboard in Chromium', () => {
  let e2e: E2E;
  let hub: RunningHub;
  let db: Pool;
  let browser: Browser;
  let context: BrowserContext | undefined;
  let dealId: string;
  let stripeInvoiceId: string;
  let viewerToken: string;
  let financeToken: string;
  /** Two deals whose deposit invoice Stripe refused (400): one dead letter to replay, one left open. */
  let toReplay: { dealId: string; deadLetterId: string };
  let leftOpen: { dealId: string; deadLetterId: string };

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await flushTestRedis();
    e2e = await startProviders();
    [hub, browser] = await Promise.all([startE2EHub(e2e, { ROLE: 'all' }), launchBrowser()]);

    const { dealId: crmDealId } = e2e.hubspot.createDeal({
      properties: {
        dealname: 'Website renewal',
        amount: '400000',
        deal_currency_code: 'JPY',
        pipeline: 'default',
        dealstage: 'appointmentscheduled',
        closeloop_billing_plan: JSON.stringify(CONTRACT_PLAN),
      },
      contact: { email: 'tanaka@example.co.jp', firstname: 'Taro', lastname: 'Tanaka' },
      company: { name: 'Example K.K.' },
    });
    dealId = await dealIdForCrm(db, crmDealId);
    await waitFor(async () => (await getDeal(hub.url, dealId)).stage === 'APPOINTMENT', {
      what: 'APPOINTMENT',
    });
    e2e.hubspot.setStage(crmDealId, 'contractsent');
    const envelope = await waitFor(() => e2e.docusign.envelopes()[0], { what: 'envelope' });
    e2e.docusign.complete(envelope.envelopeId);
    stripeInvoiceId = (await waitFor(
      async () =>
        (await getDeal(hub.url, dealId)).items.find((i) => i.key === 'deposit')?.invoices[0]
          ?.stripeInvoiceId,
      { what: 'the deposit invoice posted to Stripe', timeoutMs: 20_000 },
    ))!;

    viewerToken = await createToken('browser-viewer', 'viewer');
    financeToken = await createToken('browser-finance', 'finance');

    const refused = e2e.sim.faults.add({
      provider: 'stripe',
      method: 'POST',
      path: { regex: '^/v1/invoices$' },
      responses: Array.from({ length: 20 }, () => ({
        status: 400,
        body: { error: { type: 'invalid_request_error', message: 'No such tax rate' } },
      })),
    });
    toReplay = await deadLetteredDeal('Replay me');
    leftOpen = await deadLetteredDeal('Left open');
    e2e.sim.faults.remove(refused);
  }, 90_000);

  afterEach(async () => {
    await context?.close();
    context = undefined;
  });

  afterAll(async () => {
    await browser?.close();
    await hub?.stop();
    await e2e?.close();
    await db?.end();
  });

  async function api(method: 'GET' | 'POST', path: string, body?: unknown) {
    const res = await fetch(`${hub.url}${path}`, {
      method,
      headers: { ...admin, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    if (!res.ok) throw new Error(`${method} ${path}: ${res.status} ${await res.text()}`);
    return (await res.json()) as Record<string, unknown>;
  }

  async function createToken(name: string, role: 'viewer' | 'finance'): Promise<string> {
    return (await api('POST', '/api/tokens', { name, role })).token as string;
  }

  /** A WON deal whose deposit invoice cannot be created: its billing job is dead-lettered. */
  async function deadLetteredDeal(name: string) {
    const deal = await api('POST', '/api/deals', {
      name,
      customer: { company: `${name} K.K.`, contactName: 'Taro Tanaka', email: 'tanaka@example.jp' },
      currency: 'jpy',
      amount: 300000,
      stage: 'WON',
      billingPlan: {
        currency: 'jpy',
        taxRatePercent: 10,
        billingCount: 'one_time',
        items: [{ key: 'deposit', label: '着手金', amount: 300000, trigger: 'contract.signed' }],
      },
    });
    const dealId = deal.id as string;
    const dl = await waitFor(
      async () => {
        const { items } = (await api('GET', '/api/dead-letters')) as {
          items: { id: string; data?: { billingKey?: string } }[];
        };
        return items.find((d) => d.data?.billingKey === `${dealId}|deposit`);
      },
      { what: `the dead letter of ${name}`, timeoutMs: 20_000 },
    );
    return { dealId, deadLetterId: dl!.id };
  }

  async function open(lang: 'en' | 'ja' = 'en'): Promise<Page> {
    context = await newContext(browser, lang);
    return context.newPage();
  }

  const nav = (page: Page) => page.getByRole('banner').getByRole('navigation');

  it('logs an admin in to the overview with the connectors and the time it was read', async () => {
    const page = await open();
    await page.goto(`${hub.url}/dashboard`);
    await page.waitForURL(/\/dashboard\/login/);

    await login(page, hub.url, TEST_SECRETS.ADMIN_TOKEN);
    expect(new URL(page.url()).pathname).toBe('/dashboard');
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    await page.getByText('ADMIN_TOKEN (admin)').waitFor();

    const connectors = page.getByRole('table').filter({
      has: page.getByRole('columnheader', { name: 'Connector' }),
    });
    for (const name of ['Stripe (invoices)', 'HubSpot (CRM)', 'DocuSign (contracts)']) {
      await connectors.getByRole('cell', { name, exact: true }).waitFor();
    }
    // Stripe answered for the deposit invoice: its row names a last success, not "never".
    const stripe = connectors.getByRole('row').filter({ hasText: 'Stripe (invoices)' });
    expect(await stripe.getByRole('cell', { name: 'never', exact: true }).count()).toBe(0);
    await page.getByText(/Read at .+ \(Asia\/Tokyo\) \/ .+ \(UTC\)/).waitFor();

    await screenshot(page, 'overview');
  });

  it('keeps a bad token on the login page with an error', async () => {
    const page = await open();
    await login(page, hub.url, 'not-a-token-of-this-hub');

    expect(new URL(page.url()).pathname).toBe('/dashboard/login');
    expect(await page.getByRole('alert').innerText()).toBe('That token is unknown or revoked.');
    await page.getByLabel('API token').waitFor();
    expect((await context!.cookies()).map((c) => c.name)).not.toContain('cl_session');

    await page.goto(`${hub.url}/dashboard/deals`);
    await page.waitForURL(/\/dashboard\/login/);
    await screenshot(page, 'login-bad-token');
  });

  it('finds a deal by its Stripe invoice id and shows its timeline', async () => {
    const page = await open();
    await login(page, hub.url, TEST_SECRETS.ADMIN_TOKEN);
    await nav(page).getByRole('link', { name: 'Deals' }).click();
    await page.getByRole('heading', { name: 'Deals', level: 1 }).waitFor();

    const search = page.getByRole('search');
    await search.getByRole('searchbox').fill(stripeInvoiceId);
    await search.getByRole('button', { name: 'Filter' }).click();
    await page.waitForURL(new RegExp(`[?&]q=${stripeInvoiceId}`));

    const rows = page.getByRole('table').getByRole('row').filter({ hasText: 'Website renewal' });
    expect(await rows.count()).toBe(1);
    await rows.getByRole('link', { name: dealId }).click();
    await page.waitForURL(new RegExp(`/dashboard/deals/${dealId}$`));

    await page.getByRole('heading', { name: 'Timeline' }).waitFor();
    const timeline = page.getByRole('table').filter({
      has: page.getByRole('columnheader', { name: 'Cause' }),
    });
    await timeline.getByText('APPOINTMENT → CONTRACT_SENT', { exact: false }).first().waitFor();
    await timeline.getByText('CONTRACT_SENT → WON', { exact: false }).first().waitFor();
    await page.getByText(stripeInvoiceId).first().waitFor();

    await screenshot(page, 'deal-timeline');
  });

  /** What a role is offered: its menu, and on the dead letters page the replay previews. */
  async function offered(page: Page) {
    await nav(page).getByRole('link', { name: 'Dead letters' }).click();
    await page.getByRole('heading', { name: 'Dead letters', level: 1 }).waitFor();
    const row = page.getByRole('row').filter({ hasText: leftOpen.deadLetterId });
    await row.waitFor();
    return {
      menu: (await nav(page).getByRole('link').allInnerTexts()).map((l) => l.trim()),
      previews: await row.getByRole('link', { name: 'Preview replay' }).count(),
      deletes: await row.getByRole('button', { name: 'Delete' }).count(),
    };
  }

  it('shows a viewer none of the admin-only actions the admin sees (queues, audit, replay)', async () => {
    const adminPage = await open();
    await login(adminPage, hub.url, TEST_SECRETS.ADMIN_TOKEN);
    const asAdmin = await offered(adminPage);
    expect(asAdmin.menu).toEqual(expect.arrayContaining(['Queues', 'Audit', 'Reconciliation']));
    expect(asAdmin).toMatchObject({ previews: 1, deletes: 1 });
    await context!.close();

    const page = await open();
    await login(page, hub.url, viewerToken);
    await page.getByText('browser-viewer (viewer)').waitFor();
    const asViewer = await offered(page);
    expect(asViewer.menu).toEqual(expect.arrayContaining(['Overview', 'Deals', 'Dead letters']));
    for (const adminOnly of ['Queues', 'Audit', 'Reconciliation']) {
      expect(asViewer.menu).not.toContain(adminOnly);
    }
    expect(asViewer).toMatchObject({ previews: 0, deletes: 0 });
    await screenshot(page, 'viewer-dead-letters');

    // Typed in by hand, the replay preview is refused (no replay button) and Bull Board stays shut.
    const preview = await page.goto(
      `${hub.url}/dashboard/dead-letters/${leftOpen.deadLetterId}/replay-preview`,
    );
    expect(preview?.status()).toBe(403);
    await page.getByText('This needs the admin role.').waitFor();
    expect(await page.getByRole('button', { name: 'Replay now' }).count()).toBe(0);
    const queues = await page.goto(`${hub.url}/dashboard/queues`);
    expect(queues?.status()).toBe(403);
    await page.getByText('The queue internals are for the admin role only.').waitFor();
  });

  it('replays a dead letter from its preview and the invoice is then posted', async () => {
    const page = await open();
    await login(page, hub.url, TEST_SECRETS.ADMIN_TOKEN);
    await nav(page).getByRole('link', { name: 'Dead letters' }).click();
    const row = page.getByRole('row').filter({ hasText: toReplay.deadLetterId });
    await row.getByText('No such tax rate', { exact: false }).waitFor();
    await row.getByRole('link', { name: 'Preview replay' }).click();

    await page
      .getByRole('heading', { name: `Replay preview: dead letter ${toReplay.deadLetterId}` })
      .waitFor();
    await page.getByRole('heading', { name: 'What the replay would do' }).waitFor();
    await screenshot(page, 'dead-letter-preview');
    await page.getByRole('button', { name: 'Replay now' }).click();

    await page
      .getByText(`Dead letter ${toReplay.deadLetterId} replayed`, { exact: false })
      .waitFor();
    expect(new URL(page.url()).pathname).toBe('/dashboard/dead-letters');
    expect(await page.getByRole('row').filter({ hasText: toReplay.deadLetterId }).count()).toBe(0);
    await page.getByRole('row').filter({ hasText: leftOpen.deadLetterId }).waitFor();

    // The replayed job bills the deposit: the deal page shows the posted invoice.
    await page.goto(`${hub.url}/dashboard/deals/${toReplay.dealId}`);
    const deposit = page.getByRole('table').getByRole('row').filter({ hasText: 'deposit' });
    await waitFor(
      async () => {
        // The billing status in words ("Invoice sent"), its code kept in data-code.
        const status = deposit.locator('.status[data-code="INVOICE_POSTED"]');
        if ((await status.count()) > 0 && (await status.innerText()) === 'Invoice sent')
          return true;
        await page.reload();
        return false;
      },
      {
        what: 'the replayed deposit invoice posted on the deal page',
        timeoutMs: 20_000,
        intervalMs: 500,
      },
    );
    await screenshot(page, 'dead-letter-replayed-deal');

    await page.goto(`${hub.url}/dashboard/dead-letters?status=REPLAYED`);
    await page.getByRole('row').filter({ hasText: toReplay.deadLetterId }).waitFor();
  });

  it('exports the reconciliation as CSV for a finance user', async () => {
    const page = await open();
    await login(page, hub.url, financeToken);
    await page.getByText('browser-finance (finance)').waitFor();
    await nav(page).getByRole('link', { name: 'Reconciliation' }).click();
    await page.getByRole('heading', { name: 'Reconciliation', level: 1 }).waitFor();
    await page.getByText(/\d+ deals · \d+ with mismatches · \d+ mismatches/).waitFor();
    await screenshot(page, 'reconciliation');

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('link', { name: 'Download CSV' }).click(),
    ]);
    expect(download.suggestedFilename()).toMatch(/^reconciliation-.*\.csv$/);
    const csv = readFileSync((await download.path())!, 'utf8');
    const [header, ...lines] = csv.trim().split(/\r?\n/);
    expect(header.split(',')).toEqual([...CSV_HEADER]);
    const signed = lines.find((l) => l.startsWith(`${dealId},`));
    expect(signed).toContain('Website renewal');
    // The deal whose invoice Stripe refused is named as a mismatch, on the page and in the file.
    await page
      .getByRole('row')
      .filter({ hasText: leftOpen.dealId })
      .getByText('Missing in Stripe')
      .waitFor();
    expect(lines.find((l) => l.startsWith(`${leftOpen.dealId},`))).toContain('missing_invoice');
  });

  it('switches the language between Japanese and English', async () => {
    const page = await open('ja');
    await login(page, hub.url, TEST_SECRETS.ADMIN_TOKEN);
    await nav(page).getByRole('link', { name: '案件' }).waitFor();
    await page.getByText('ADMIN_TOKEN（管理者）').waitFor();
    await screenshot(page, 'overview-ja');

    await page.getByRole('link', { name: 'English' }).click();
    await nav(page).getByRole('link', { name: 'Deals' }).waitFor();
    expect(await nav(page).getByRole('link', { name: '案件' }).count()).toBe(0);
    expect(await page.locator('html').getAttribute('lang')).toBe('en');
    expect(new URL(page.url()).pathname).toBe('/dashboard');

    await page.getByRole('link', { name: '日本語' }).click();
    await nav(page).getByRole('link', { name: '案件' }).waitFor();
    expect(await page.locator('html').getAttribute('lang')).toBe('ja');
  });

  /**
   * Issue 12 (docs/decisions/0012): every page works under its Content-Security-Policy with not one
   * violation reported, by the page (securitypolicyviolation) or in the console, and the headers are
   * there. The overview's htmx refresh, the dead letters' confirmation and a report's copy button
   * are exercised: their code is now served (/dashboard/assets/dashboard.js), never inline.
   */
  it('works under the Content-Security-Policy with zero violations, and the security headers are present', async () => {
    const prisma = openTestPrisma();
    const report = await createReport(prisma, { dealId }).finally(() => closeTestPrisma(prisma));

    context = await newContext(browser, 'en');
    await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: hub.url });
    // Test code runs in Node (no DOM types): what runs in the page is given as source text.
    await context.addInitScript({
      content:
        'window.__csp = []; document.addEventListener("securitypolicyviolation", (e) => ' +
        'window.__csp.push(`${e.violatedDirective} ${e.blockedURI} ${e.sample}`));',
    });
    const page = await context.newPage();
    const consoleCsp: string[] = [];
    page.on('console', (m) => {
      if (/Content.Security.Policy/i.test(m.text())) consoleCsp.push(m.text());
    });
    const violations = async () => [
      ...consoleCsp,
      ...((await page.evaluate('window.__csp')) as string[]),
    ];

    const loginPage = await page.goto(`${hub.url}/dashboard/login`);
    const headers = loginPage!.headers();
    expect(headers['content-security-policy']).toBe(
      "default-src 'none';script-src 'self';style-src 'self';img-src 'self';connect-src 'self';" +
        "form-action 'self';frame-ancestors 'none';base-uri 'none'",
    );
    expect(headers['x-content-type-options']).toBe('nosniff');
    expect(headers['x-frame-options']).toBe('DENY');
    expect(headers['referrer-policy']).toBe('same-origin');
    await login(page, hub.url, TEST_SECRETS.ADMIN_TOKEN);

    // The overview: htmx loaded, its indicator <style> not injected, the panel's refresh works.
    await page.getByRole('heading', { name: 'Overview', level: 1 }).waitFor();
    await page.waitForFunction('"htmx" in window');
    expect(await page.locator('style').count()).toBe(0);
    const [refresh] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/dashboard/overview/panel')),
      page.evaluate(
        `htmx.ajax('GET', '/dashboard/overview/panel', { target: '#overview-panel', swap: 'outerHTML' })`,
      ),
    ]);
    expect(refresh.status()).toBe(200);
    await page.getByTestId('overview-panel').waitFor();

    const pages = [
      '/dashboard/deals',
      `/dashboard/deals/${dealId}`,
      '/dashboard/events',
      '/dashboard/reconciliation',
      '/dashboard/reports',
      '/dashboard/audit',
      '/dashboard/deals/cl_deal_no_such_deal', // the dashboard's 404 page
    ];
    for (const path of pages) {
      const res = await page.goto(`${hub.url}${path}`);
      expect({ path, csp: res!.headers()['content-security-policy'] }).toEqual({
        path,
        csp: expect.stringContaining("script-src 'self';style-src 'self'"),
      });
      await page.getByRole('heading', { level: 1 }).waitFor();
    }
    // An event's page (its payload in <pre class="raw">, once an inline style).
    await page.goto(`${hub.url}/dashboard/events`);
    await page.getByRole('table').getByRole('link').first().click();
    await page.getByTestId('payload').waitFor();

    // A dead letter's Delete asks first (dashboard.js); dismissed, nothing is deleted.
    await page.goto(`${hub.url}/dashboard/dead-letters`);
    const row = page.getByRole('row').filter({ hasText: leftOpen.deadLetterId });
    const asked: string[] = [];
    page.once('dialog', (dialog) => {
      asked.push(dialog.message());
      void dialog.dismiss();
    });
    await row.getByRole('button', { name: 'Delete' }).click();
    expect(asked).toEqual(['Delete (discard) this dead letter? Its job will not run again.']);
    expect(new URL(page.url()).pathname).toBe('/dashboard/dead-letters');
    await row.waitFor();

    // A report's copy button (dashboard.js) copies the value and says so.
    await page.goto(`${hub.url}/dashboard/reports/${report.id}`);
    const copy = page.getByTestId('report-fields').getByRole('button', { name: 'Copy' }).first();
    await copy.click();
    await page.getByRole('button', { name: 'Copied' }).first().waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).not.toBe('');

    // Bull Board under its own policy: the app renders (its scripts and styles allowed).
    const queues = await page.goto(`${hub.url}/dashboard/queues`);
    expect(queues!.headers()['content-security-policy']).toContain(
      "style-src 'self' 'unsafe-inline' https://fonts.googleapis.com",
    );
    await page.getByText('webhooks', { exact: false }).first().waitFor();
    await screenshot(page, 'queues-under-csp');

    // The API docs under theirs.
    const docs = await page.goto(`${hub.url}/docs`);
    expect(docs!.headers()['content-security-policy']).toContain("script-src 'self'");
    await page.getByText('closeloop admin API').first().waitFor();

    expect(await violations()).toEqual([]);

    // The policy is enforced, not decoration: an injected inline script does not run, and is reported.
    await page.goto(`${hub.url}/dashboard`);
    const ran = await page.evaluate(`(() => {
      const script = document.createElement('script');
      script.textContent = 'window.__injected = true';
      document.body.append(script);
      return window.__injected === true;
    })()`);
    expect(ran).toBe(false);
    await waitFor(async () => (await violations()).some((v) => v.startsWith('script-src')), {
      what: 'the injected script reported as a violation',
    });
  });
});
