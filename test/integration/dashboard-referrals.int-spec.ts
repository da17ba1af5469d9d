import { Pool } from 'pg';

import { PrismaService } from '../../src/prisma/prisma.service';
import { closeTestPrisma, createDeal, createReport, openTestPrisma } from '../factories';
import { RunningHub, flushTestRedis, startHub, testDb, truncateAll } from '../support/hub';
import { TEST_SECRETS } from '../support/test-env';

/**
 * A deal's referral on the dashboard and the admin API (CONTRACT §6; docs/decisions/0013): the
 * referral's state with the platform's own (Partner Center status/substatus) and reason, the
 * answers its platform takes (accept, decline, and Partner Center's "interested" / "no thanks"),
 * admin only, CSRF-protected, audited, refused in place when the referral can no longer take them.
 */

interface Page {
  status: number;
  html: string;
  location: string | null;
  cookies: string[];
}

describe('dashboard and admin API: answering a referral', () => {
  let hub: RunningHub;
  let db: Pool;
  let prisma: PrismaService;

  async function request(
    method: string,
    path: string,
    cookies: Record<string, string> = {},
    form?: Record<string, string>,
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
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    return {
      status: res.status,
      html: await res.text(),
      location: res.headers.get('location'),
      cookies: res.headers.getSetCookie(),
    };
  }

  const cookieValue = (p: Page, name: string) =>
    p.cookies
      .find((c) => c.startsWith(`${name}=`))
      ?.split(';')[0]
      .slice(name.length + 1);
  const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1];

  async function login(token: string) {
    const form = await request('GET', '/dashboard/login');
    const loginCsrf = cookieValue(form, 'cl_login')!;
    const res = await request(
      'POST',
      '/dashboard/login',
      { cl_login: loginCsrf },
      { _csrf: loginCsrf, token },
    );
    expect(res.status).toBe(302);
    const session = cookieValue(res, 'cl_session')!;
    const overview = await request('GET', '/dashboard', { cl_session: session });
    return { session, csrf: csrfOf(overview.html)! };
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
    return (await res.json()) as { token: string };
  }

  /** A REFERRED deal with its OPEN referral on `platform`. */
  async function referralDeal(platform: string, id: string) {
    const deal = await createDeal(prisma, {
      id: `cl_deal_${id}`,
      referral: { platform, id },
      history: false,
    });
    await prisma.referral.create({
      data: {
        id: `ref_${id}`,
        platform,
        externalId: id,
        dealId: deal.id,
        title: `Referral ${id}`,
        platformStatus: platform === 'partner-center' ? 'New' : null,
        platformSubstatus: platform === 'partner-center' ? 'Pending' : null,
        respondBy: new Date(Date.now() + 72 * 3_600_000),
        clockRule: 'default-new-72h',
        snapshot: {},
      },
    });
    return deal.id;
  }

  const referralRow = (id: string) => prisma.referral.findUniqueOrThrow({ where: { id } });

  beforeAll(async () => {
    db = testDb();
    prisma = openTestPrisma();
    await truncateAll(db);
    await db.query('TRUNCATE dashboard_session');
    await flushTestRedis();
    hub = await startHub();
  });

  afterAll(async () => {
    await hub?.stop();
    await closeTestPrisma(prisma);
    await db?.end();
  });

  it("shows the platform's state and offers Partner Center's four answers to an admin, none to a viewer", async () => {
    const dealId = await referralDeal('partner-center', 'pc-dash-1');
    const { session } = await login(TEST_SECRETS.ADMIN_TOKEN);
    const page = await request('GET', `/dashboard/deals/${dealId}`, {
      cl_session: session,
      cl_lang: 'ja',
    });
    expect(page.status).toBe(200);
    // The platform's own state, in its words (Partner Center status / substatus).
    expect(page.html).toMatch(
      /data-testid="platform-status" data-code="New\/Pending"[^>]*>\(新規 \/ 保留中\)</,
    );
    for (const a of ['accept', 'decline', 'evaluate', 'skip']) {
      expect(page.html).toContain(`data-testid="form-referral-${a}"`);
    }
    expect(page.html).toContain('>興味あり<');
    expect(page.html).toContain('>興味なし<');

    const viewer = await createToken('dash-referral-viewer', 'viewer');
    const v = await login(viewer.token);
    const seen = await request('GET', `/dashboard/deals/${dealId}`, { cl_session: v.session });
    expect(seen.status).toBe(200);
    expect(seen.html).not.toContain('data-testid="referral-answers"');
    // And posting anyway is forbidden, nothing changed.
    const forbidden = await request(
      'POST',
      `/dashboard/deals/${dealId}/referral/evaluate`,
      { cl_session: v.session },
      { _csrf: v.csrf },
    );
    expect(forbidden.status).toBe(403);
    expect((await referralRow('ref_pc-dash-1')).state).toBe('OPEN');
  });

  it('evaluate from the dashboard: in evaluation with its 7-day window, audited; then skip is refused in place', async () => {
    const dealId = await referralDeal('partner-center', 'pc-dash-2');
    const { session, csrf } = await login(TEST_SECRETS.ADMIN_TOKEN);
    const noCsrf = await request(
      'POST',
      `/dashboard/deals/${dealId}/referral/evaluate`,
      { cl_session: session },
      {},
    );
    expect(noCsrf.status).toBe(403);
    expect((await referralRow('ref_pc-dash-2')).state).toBe('OPEN');

    const done = await request(
      'POST',
      `/dashboard/deals/${dealId}/referral/evaluate`,
      { cl_session: session },
      { _csrf: csrf },
    );
    expect(done.status).toBe(303);
    expect(done.location).toBe(`/dashboard/deals/${dealId}?answered=evaluate`);
    const row = await referralRow('ref_pc-dash-2');
    expect(row).toMatchObject({ state: 'IN_EVALUATION', clockRule: 'default-evaluation-7d' });
    expect(Math.abs(row.respondBy!.getTime() - (Date.now() + 7 * 24 * 3_600_000))).toBeLessThan(
      60_000,
    );
    const audit = await db.query(
      "SELECT role, details FROM audit_log WHERE action = 'referral.evaluate' AND target = $1",
      ['ref_pc-dash-2'],
    );
    expect(audit.rows).toEqual([{ role: 'admin', details: { via: 'dashboard' } }]);

    const after = await request('GET', done.location!, { cl_session: session, cl_lang: 'en' });
    expect(after.html).toContain('data-answered="evaluate"');
    expect(after.html).toContain('Referral in evaluation.');
    // In evaluation: accept or decline only.
    expect(after.html).toContain('data-testid="form-referral-accept"');
    expect(after.html).toContain('data-testid="form-referral-decline"');
    expect(after.html).not.toContain('data-testid="form-referral-skip"');

    const refused = await request(
      'POST',
      `/dashboard/deals/${dealId}/referral/skip`,
      { cl_session: session, cl_lang: 'en' },
      { _csrf: csrf, reason: 'changed our mind' },
    );
    expect(refused.status).toBe(409);
    expect(refused.html).toContain('data-code="REFERRAL_ANSWERED"');
    expect(refused.html).toContain('it can no longer be skipped');
    expect((await referralRow('ref_pc-dash-2')).state).toBe('IN_EVALUATION');

    const unknown = await request(
      'POST',
      `/dashboard/deals/${dealId}/referral/ignore`,
      { cl_session: session },
      { _csrf: csrf },
    );
    expect(unknown.status).toBe(400);
  });

  it('a PRONI アイミツ referral offers accept and decline only; the admin API refuses evaluate and skip for it', async () => {
    const dealId = await referralDeal('aimitsu', 'aim-dash-1');
    const { session } = await login(TEST_SECRETS.ADMIN_TOKEN);
    const page = await request('GET', `/dashboard/deals/${dealId}`, { cl_session: session });
    expect(page.html).toContain('data-testid="form-referral-accept"');
    expect(page.html).not.toContain('data-testid="form-referral-evaluate"');
    expect(page.html).not.toContain('data-testid="form-referral-skip"');

    const call = (path: string, token?: string) =>
      fetch(`${hub.url}${path}`, {
        method: 'POST',
        headers: token ? { authorization: `Bearer ${token}` } : {},
      });
    const evaluate = await call('/api/referrals/ref_aim-dash-1/evaluate', TEST_SECRETS.ADMIN_TOKEN);
    expect(evaluate.status).toBe(409);
    expect(await evaluate.json()).toMatchObject({
      error: { code: 'REFERRAL_ANSWER_NOT_OFFERED' },
    });
    expect((await call('/api/referrals/ref_aim-dash-1/skip')).status).toBe(401);
    const finance = await createToken('dash-referral-finance', 'finance');
    expect((await call('/api/referrals/ref_aim-dash-1/skip', finance.token)).status).toBe(403);
    expect((await call('/api/referrals/ref_nope/evaluate', TEST_SECRETS.ADMIN_TOKEN)).status).toBe(
      404,
    );
    expect((await referralRow('ref_aim-dash-1')).state).toBe('OPEN');
  });

  it("shows a held report's not-before instant on the deal page and in the reports API", async () => {
    const dealId = await referralDeal('partner-center', 'pc-dash-3');
    const notBefore = new Date('2099-01-02T03:04:05.000Z');
    const report = await createReport(prisma, {
      dealId,
      kind: 'won',
      platform: 'partner-center',
      channel: 'partner-center',
    });
    await prisma.report.update({ where: { id: report.id }, data: { notBefore } });
    const { session } = await login(TEST_SECRETS.ADMIN_TOKEN);
    const page = await request('GET', `/dashboard/deals/${dealId}`, {
      cl_session: session,
      cl_lang: 'en',
    });
    expect(page.html).toContain('data-testid="not-before"');
    expect(page.html).toContain('Not before: 2099-01-02 12:04:05');
    const res = await fetch(`${hub.url}/api/reports/${report.id}`, {
      headers: { authorization: `Bearer ${TEST_SECRETS.ADMIN_TOKEN}` },
    });
    expect(await res.json()).toMatchObject({ notBefore: notBefore.toISOString() });
  });
});
