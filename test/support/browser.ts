import { existsSync, mkdirSync } from 'node:fs';
import path from 'node:path';

import { Browser, BrowserContext, Page, chromium } from 'playwright-core';

/**
 * Browser tests drive Debian's Chromium with playwright-core (`npx playwright install` cannot
 * download browsers here; see the environment notes and .ci/run). CHROMIUM_PATH overrides it.
 */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

/** Where screenshots go; CI keeps this folder as an artifact. */
export const SCREENSHOT_DIR = path.resolve(__dirname, '../../test-artifacts/screenshots');

const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

export async function launchBrowser(): Promise<Browser> {
  if (!existsSync(CHROMIUM_PATH)) {
    throw new Error(
      `browser tests need Chromium at ${CHROMIUM_PATH}: install Debian's chromium ` +
        `(apt-get install -y chromium fonts-noto-cjk, see .ci/run) or set CHROMIUM_PATH`,
    );
  }
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS });
}

export type Lang = 'en' | 'ja';

/**
 * A fresh context (own cookies, own storage) for one test. `lang: 'ja'` sets the browser locale,
 * Accept-Language and time zone a Japanese user has.
 */
export async function newContext(browser: Browser, lang: Lang = 'en'): Promise<BrowserContext> {
  const context = await browser.newContext({
    locale: lang === 'ja' ? 'ja-JP' : 'en-US',
    timezoneId: lang === 'ja' ? 'Asia/Tokyo' : 'UTC',
    viewport: { width: 1280, height: 800 },
  });
  context.setDefaultTimeout(10_000);
  return context;
}

let announced = false;

/** Saves a full-page PNG as test-artifacts/screenshots/<name>.png and returns its path. */
export async function screenshot(page: Page, name: string): Promise<string> {
  mkdirSync(SCREENSHOT_DIR, { recursive: true });
  if (!announced) {
    announced = true;
    console.log(`browser tests: screenshots in ${SCREENSHOT_DIR}`);
  }
  const file = path.join(SCREENSHOT_DIR, `${name.replace(/[^\w.-]+/g, '-')}.png`);
  await page.screenshot({ path: file, fullPage: true });
  return file;
}

/**
 * Logs in through the dashboard's login form (GET /dashboard/login: a `token` field and a submit
 * button) and waits for the page the form leads to.
 */
export async function login(page: Page, hubUrl: string, token: string): Promise<void> {
  await page.goto(`${hubUrl}/dashboard/login`);
  const field = page.locator('input[name="token"]');
  await field.fill(token);
  const form = page.locator('form', { has: field });
  await Promise.all([
    page.waitForNavigation(),
    form.locator('button[type="submit"], button:not([type]), input[type="submit"]').first().click(),
  ]);
}
