import { existsSync, statSync } from 'node:fs';

import { Browser } from 'playwright-core';

import { launchBrowser, newContext, screenshot } from '../support/browser';
import { RunningHub, startHub } from '../support/hub';

describe('the browser harness', () => {
  let hub: RunningHub;
  let browser: Browser;

  beforeAll(async () => {
    [hub, browser] = await Promise.all([startHub({ ROLE: 'api' }), launchBrowser()]);
  });

  afterAll(async () => {
    await browser?.close();
    await hub?.stop();
  });

  it('opens a hub page in Chromium and saves a full-page screenshot of it', async () => {
    const context = await newContext(browser);
    const page = await context.newPage();
    await page.goto(`${hub.url}/docs`);
    await page.getByText('/api/deals', { exact: false }).first().waitFor();

    const file = await screenshot(page, 'harness-swagger');
    expect(existsSync(file)).toBe(true);
    expect(statSync(file).size).toBeGreaterThan(10_000);
    await context.close();
  });
});
