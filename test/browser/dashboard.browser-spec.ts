import { Browser, BrowserContext, Page } from 'playwright-core';
import { Pool } from 'pg';

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
 * signed through DocuSign with its deposit invoice posted to Stripe, and a viewer token.
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

    const res = await fetch(`${hub.url}/api/tokens`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ name: 'browser-viewer', role: 'viewer' }),
    });
    expect(res.status).toBe(201);
    viewerToken = ((await res.json()) as { token: string }).token;
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

  it('logs a viewer in read-only: the viewer role is shown and no page offers an action', async () => {
    const page = await open();
    await login(page, hub.url, viewerToken);
    expect(new URL(page.url()).pathname).toBe('/dashboard');
    await page.getByText('browser-viewer (viewer)').waitFor();

    await page.goto(`${hub.url}/dashboard/deals/${dealId}`);
    await page.getByRole('heading', { name: 'Timeline' }).waitFor();
    // The only buttons a viewer gets are the search's and logging out.
    const buttons = (await page.getByRole('button').allInnerTexts()).map((b) => b.trim());
    expect(buttons).toEqual(['Log out']);
    // Admin-only pages are not in the viewer's menu.
    const menu = await nav(page).getByRole('link').allInnerTexts();
    expect(menu).toEqual(expect.arrayContaining(['Overview', 'Deals']));
    expect(menu).not.toEqual(expect.arrayContaining(['Queues']));
    expect(menu).not.toEqual(expect.arrayContaining(['Audit']));

    await screenshot(page, 'viewer-deal');
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
});
