import { Pool } from 'pg';

import { send, standardDelivery, stripeDelivery } from '../../tools/simulator/signed-delivery';
import { seedTestDeals } from '../support/failures';
import { RunningHub, flushTestRedis, startHub, testDb, truncateAll, waitFor } from '../support/hub';
import { TEST_SECRETS } from '../support/test-env';

/**
 * The dashboard's operations pages (issue 5): events inbox and detail, dead letters with a dry-run
 * replay preview, replay / delete / bulk replay, the audit log and Bull Board — roles and CSRF.
 */

interface Page {
  status: number;
  html: string;
  location: string | null;
}

describe('dashboard operations pages', () => {
  let hub: RunningHub;
  let db: Pool;
  const stripeIds: string[] = [];
  const milestoneIds: string[] = [];
  let admin: { session: string; csrf: string };
  let viewer: { session: string; csrf: string };

  async function request(
    method: string,
    path: string,
    session?: string,
    form?: Record<string, string>,
  ): Promise<Page> {
    const cookies = [session ? `cl_session=${session}` : '', 'cl_lang=en']
      .filter(Boolean)
      .join('; ');
    const res = await fetch(`${hub.url}${path}`, {
      method,
      redirect: 'manual',
      headers: {
        cookie: cookies,
        ...(form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      body: form ? new URLSearchParams(form).toString() : undefined,
    });
    return { status: res.status, html: await res.text(), location: res.headers.get('location') };
  }
  const get = (path: string, session?: string) => request('GET', path, session);
  const post = (path: string, who: { session: string; csrf: string }, form = {}) =>
    request('POST', path, who.session, { _csrf: who.csrf, ...form });
  const csrfOf = (html: string) => /name="_csrf" value="([^"]+)"/.exec(html)?.[1];
  /** HTML-escaped, as Eta writes text. */
  const esc = (s: string) => s.replace(/"/g, '&quot;');

  async function login(token: string) {
    const form = await fetch(`${hub.url}/dashboard/login`);
    const loginCsrf = form.headers
      .getSetCookie()
      .find((c) => c.startsWith('cl_login='))!
      .split(';')[0]
      .slice('cl_login='.length);
    const res = await fetch(`${hub.url}/dashboard/login`, {
      method: 'POST',
      redirect: 'manual',
      headers: {
        cookie: `cl_login=${loginCsrf}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ _csrf: loginCsrf, token }).toString(),
    });
    expect(res.status).toBe(302);
    const session = res.headers
      .getSetCookie()
      .find((c) => c.startsWith('cl_session='))!
      .split(';')[0]
      .slice('cl_session='.length);
    const overview = await get('/dashboard', session);
    expect(overview.status).toBe(200);
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
    return (await res.json()) as { id: string; token: string };
  }

  const deadLetters = async (status = 'OPEN') =>
    (
      await db.query<{ id: string; event_id: string | null; job_name: string }>(
        `SELECT id, event_id, job_name FROM dead_letter WHERE status = $1 ORDER BY id`,
        [status],
      )
    ).rows;
  const dlRow = async (id: string) =>
    (await db.query(`SELECT * FROM dead_letter WHERE id = $1`, [id])).rows[0];
  /** Everything a replay or delete would change. */
  const snapshot = async () =>
    (
      await db.query(
        `SELECT (SELECT json_agg(json_build_object('id', id, 'status', status) ORDER BY id) FROM dead_letter) AS dls,
                (SELECT json_agg(json_build_object('id', id, 'status', status, 'replays', replay_count) ORDER BY id) FROM webhook_event) AS events,
                (SELECT count(*)::int FROM outbox) AS outbox,
                (SELECT count(*)::int FROM audit_log) AS audit,
                (SELECT count(*)::int FROM invoice) AS invoices,
                (SELECT count(*)::int FROM report) AS reports`,
      )
    ).rows[0];

  /** Waits until no job is queued or running, so a snapshot is not raced by an earlier replay. */
  const settle = () =>
    waitFor(
      async () => {
        const { rows } = await db.query(
          `SELECT (SELECT count(*) FROM outbox)::int + (SELECT count(*) FROM webhook_event
                   WHERE status IN ('RECEIVED', 'FAILED'))::int AS busy`,
        );
        return rows[0].busy === 0;
      },
      { timeoutMs: 20_000, what: 'the hub to settle' },
    );

  beforeEach(() => settle());

  beforeAll(async () => {
    db = testDb();
    await truncateAll(db);
    await db.query('TRUNCATE dashboard_session');
    await seedTestDeals(db, ['cl_deal_ops_A', 'cl_deal_ops_B']);
    await flushTestRedis();
    hub = await startHub();

    for (const [n, dealId] of ['cl_deal_ops_A', 'cl_deal_ops_B'].entries()) {
      const event = {
        id: `evt_ops_${n}`,
        object: 'event',
        type: 'invoice.paid',
        created: 1795400000 + n,
        data: {
          object: {
            id: `in_ops_${n}`,
            object: 'invoice',
            metadata: { closeloop_deal_id: dealId },
          },
        },
      };
      const res = await send(hub.url, stripeDelivery(event, TEST_SECRETS.STRIPE_WEBHOOK_SECRET));
      expect(res.status).toBe(200);
      stripeIds.push((res.body as { eventIds: string[] }).eventIds[0]);
    }
    for (const n of [1, 2, 3, 4]) {
      const res = await send(
        hub.url,
        standardDelivery(
          '/webhooks/milestones',
          { type: 'milestone.accepted', data: { dealId: 'cl_deal_ops_A' } }, // no itemKey: dead at once
          { secret: TEST_SECRETS.MILESTONE_WEBHOOK_SECRET, id: `msg_ops_${n}` },
        ),
      );
      expect(res.status).toBe(200);
      milestoneIds.push((res.body as { eventIds: string[] }).eventIds[0]);
    }
    await waitFor(async () => (await deadLetters()).length === 4, {
      timeoutMs: 20_000,
      what: 'the invalid milestone events to be dead-lettered',
    });
    // A dead letter of another job (its report is gone): bulk replay by job name leaves it alone.
    await db.query(
      `INSERT INTO dead_letter (id, queue, job_name, job_id, data, reason, error, attempts)
       VALUES ('dl_ops_report', 'connectors', 'ReportDeliver', 'report-rep_ops_gone',
               '{"reportId":"rep_ops_gone"}', 'EXHAUSTED', 'platform answered 503', 5)`,
    );

    admin = await login((await createToken('ops-admin', 'admin')).token);
    viewer = await login((await createToken('ops-viewer', 'viewer')).token);
  });

  afterAll(async () => {
    await hub?.stop();
    await db?.end();
  });

  describe('events inbox', () => {
    it('lists events newest first with a read-at line, and filters by provider, status and deal', async () => {
      const all = await get('/dashboard/events', viewer.session);
      expect(all.status).toBe(200);
      expect(all.html).toContain('data-testid="read-at"');
      const ids = [...all.html.matchAll(/data-event-id="([^"]+)"/g)].map((m) => m[1]);
      expect(ids).toEqual([...stripeIds, ...milestoneIds].sort().reverse());

      const dead = await get('/dashboard/events?provider=milestones&status=DEAD', viewer.session);
      expect([...dead.html.matchAll(/data-event-id="([^"]+)"/g)].map((m) => m[1]).sort()).toEqual(
        [...milestoneIds].sort(),
      );
      const byDeal = await get('/dashboard/events?dealId=cl_deal_ops_B&status=', viewer.session);
      expect([...byDeal.html.matchAll(/data-event-id="([^"]+)"/g)].map((m) => m[1])).toEqual([
        stripeIds[1],
      ]);
      const paged = await get('/dashboard/events?limit=2', viewer.session);
      const next = /href="\/dashboard\/events\?([^"]+)" data-testid="next-page"/.exec(paged.html);
      expect(next?.[1]).toContain('cursor=');
      expect((await get('/dashboard/events?status=NOPE', viewer.session)).status).toBe(400);
    });

    it('shows an event: payload, stored headers with secrets redacted, attempts; no replay for a viewer', async () => {
      const res = await get(`/dashboard/events/${stripeIds[0]}`, viewer.session);
      expect(res.status).toBe(200);
      expect(res.html).toContain('data-testid="payload"');
      expect(res.html).toContain(esc('"id": "in_ops_0"'));
      expect(res.html).toContain(esc('"stripe-signature": "[redacted]"'));
      expect(res.html).not.toMatch(/v1=[0-9a-f]{20}/);
      expect(res.html).toContain('data-testid="job-attempts"');
      expect(res.html).not.toContain('data-testid="preview-replay"');
      expect(
        (await get(`/dashboard/events/${stripeIds[0]}/replay-preview`, viewer.session)).status,
      ).toBe(403);
      const before = await snapshot();
      const refused = await post(`/dashboard/events/${stripeIds[0]}/replay`, viewer);
      expect(refused.status).toBe(403);
      expect(await snapshot()).toEqual(before);
      expect((await get('/dashboard/events/evt_nope', viewer.session)).status).toBe(404);
    });

    it('lets an admin preview an event replay (nothing changes), then replay it with a notice', async () => {
      const page = await get(`/dashboard/events/${stripeIds[0]}`, admin.session);
      expect(page.html).toContain('data-testid="preview-replay"');
      const before = await snapshot();
      const preview = await get(`/dashboard/events/${stripeIds[0]}/replay-preview`, admin.session);
      expect(preview.status).toBe(200);
      expect(preview.html).toContain('data-testid="summary"');
      expect(preview.html).toContain('data-testid="replay-now"');
      expect(await snapshot()).toEqual(before);

      const replay = await post(`/dashboard/events/${stripeIds[0]}/replay`, admin);
      expect(replay.status).toBe(303);
      expect(replay.location).toMatch(
        new RegExp(`^/dashboard/events/${stripeIds[0]}\\?notice=eventReplayed&`),
      );
      const after = await get(replay.location!, admin.session);
      expect(after.html).toContain('data-testid="notice"');
      expect(after.html).toContain(`Replay queued (job ${stripeIds[0]}-replay-1`);
    });
  });

  describe('dead letters', () => {
    it('lists open dead letters with error, attempts and event link; a viewer gets no buttons and 403 on every action', async () => {
      const res = await get('/dashboard/dead-letters', viewer.session);
      expect(res.status).toBe(200);
      expect(res.html).toContain('data-testid="read-at"');
      const ids = [...res.html.matchAll(/data-dead-letter-id="([^"]+)"/g)].map((m) => m[1]);
      expect(ids.sort()).toEqual((await deadLetters()).map((d) => d.id).sort());
      expect(res.html).toContain(`href="/dashboard/events/${milestoneIds[0]}"`);
      expect(res.html).toContain('platform answered 503');
      for (const testid of ['preview-replay', 'delete', 'bulk-replay']) {
        expect(res.html).not.toContain(`data-testid="${testid}"`);
      }
      const before = await snapshot();
      const [dl] = await deadLetters();
      for (const path of [
        `/dashboard/dead-letters/${dl.id}/replay`,
        `/dashboard/dead-letters/${dl.id}/delete`,
        '/dashboard/dead-letters/replay',
      ]) {
        expect((await post(path, viewer)).status).toBe(403);
      }
      expect(
        (await get(`/dashboard/dead-letters/${dl.id}/replay-preview`, viewer.session)).status,
      ).toBe(403);
      expect(await snapshot()).toEqual(before);
    });

    it('previews a dead letter replay: the dry run says it would fail again, and changes nothing', async () => {
      const dl = (await deadLetters()).find((d) => d.event_id === milestoneIds[0])!;
      const before = await snapshot();
      const res = await get(`/dashboard/dead-letters/${dl.id}/replay-preview`, admin.session);
      expect(res.status).toBe(200);
      expect(res.html).toContain('data-basis="event"');
      expect(res.html).toContain('data-testid="would-fail"');
      expect(res.html).toContain('data-testid="summary"');
      expect(res.html).toContain('Nothing would be billed.');
      expect(res.html).toContain(`action="/dashboard/dead-letters/${dl.id}/replay"`);
      const other = await get(
        '/dashboard/dead-letters/dl_ops_report/replay-preview',
        admin.session,
      );
      expect(other.html).toContain('data-basis="job"');
      expect(other.html).toContain('report rep_ops_gone no longer exists');
      expect(await snapshot()).toEqual(before);
    });

    it('refuses a POST without the CSRF token (403) and changes nothing', async () => {
      const [dl] = await deadLetters();
      const before = await snapshot();
      const res = await request(
        'POST',
        `/dashboard/dead-letters/${dl.id}/replay`,
        admin.session,
        {},
      );
      expect(res.status).toBe(403);
      const wrong = await request(
        'POST',
        `/dashboard/dead-letters/${dl.id}/delete`,
        admin.session,
        {
          _csrf: 'x'.repeat(43),
        },
      );
      expect(wrong.status).toBe(403);
      expect(await snapshot()).toEqual(before);
    });

    it('replays a dead letter once through the page; a second POST says so and queues nothing', async () => {
      const dl = (await deadLetters()).find((d) => d.event_id === milestoneIds[1])!;
      const res = await post(`/dashboard/dead-letters/${dl.id}/replay`, admin);
      expect(res.status).toBe(303);
      expect(res.location).toContain('notice=dlReplayed');
      expect(await dlRow(dl.id)).toMatchObject({
        status: 'REPLAYED',
        replay_job_id: `${dl.id}-replay`,
        resolved_by: 'ops-admin',
      });
      const listed = await get(res.location!, admin.session);
      expect(listed.html).toContain(`Dead letter ${dl.id} replayed (job ${dl.id}-replay)`);
      const replays = async () =>
        (
          await db.query(
            `SELECT count(*)::int AS n FROM audit_log WHERE action = 'dead_letter.replay' AND target = $1`,
            [dl.id],
          )
        ).rows[0].n;
      expect(await replays()).toBe(1);

      const again = await post(`/dashboard/dead-letters/${dl.id}/replay`, admin);
      expect(again.status).toBe(303);
      const said = await get(again.location!, admin.session);
      expect(said.html).toContain(
        `Dead letter ${dl.id} is already REPLAYED: nothing was done (no job was queued).`,
      );
      expect(await replays()).toBe(1);
      const { rows } = await db.query(`SELECT replay_count FROM webhook_event WHERE id = $1`, [
        milestoneIds[1],
      ]);
      expect(rows[0].replay_count).toBe(1);
      // The preview of a resolved one shows no replay button.
      const preview = await get(`/dashboard/dead-letters/${dl.id}/replay-preview`, admin.session);
      expect(preview.html).toContain('data-testid="not-open"');
      expect(preview.html).not.toContain('data-testid="replay-now"');
    });

    it('deletes (discards) a dead letter', async () => {
      const dl = (await deadLetters()).find((d) => d.event_id === milestoneIds[2])!;
      const res = await post(`/dashboard/dead-letters/${dl.id}/delete`, admin);
      expect(res.status).toBe(303);
      expect(res.location).toContain('notice=dlDiscarded');
      expect(await dlRow(dl.id)).toMatchObject({ status: 'DISCARDED', resolved_by: 'ops-admin' });
      const discarded = await get('/dashboard/dead-letters?status=DISCARDED', viewer.session);
      expect(discarded.html).toContain(`data-dead-letter-id="${dl.id}"`);
      expect((await post('/dashboard/dead-letters/dl_nope/delete', admin)).status).toBe(404);
    });

    it('bulk-replays the open dead letters of the current filter, each once, and says how many', async () => {
      const page = await get('/dashboard/dead-letters?jobName=WebhookEventProcess', admin.session);
      expect(page.html).toContain('data-testid="bulk-replay"');
      const before = /name="before" value="([^"]+)"/.exec(page.html)![1];
      const target = (await deadLetters()).filter((d) => d.job_name === 'WebhookEventProcess');
      expect(target.length).toBeGreaterThan(0);

      const res = await post('/dashboard/dead-letters/replay', admin, {
        jobName: 'WebhookEventProcess',
        before,
        limit: '500',
      });
      expect(res.status).toBe(303);
      expect(res.location).toMatch(
        /^\/dashboard\/dead-letters\?jobName=WebhookEventProcess&notice=bulk&/,
      );
      const said = await get(res.location!, admin.session);
      expect(said.html).toContain(`Replayed ${target.length}; skipped 0`);
      for (const d of target) expect((await dlRow(d.id)).status).toBe('REPLAYED');
      expect((await dlRow('dl_ops_report')).status).toBe('OPEN');
    });
  });

  describe('audit log', () => {
    it('lists the replays with the acting token name and role, newest first; admins only', async () => {
      const res = await get('/dashboard/audit', admin.session);
      expect(res.status).toBe(200);
      expect(res.html).toContain('data-testid="read-at"');
      const rows = [
        ...res.html.matchAll(
          /data-audit-id="(\d+)" data-action="([^"]+)">\s*<td[^>]*>[^<]*<\/td>\s*<td data-testid="audit-actor">([^<]*)<\/td>\s*<td data-testid="audit-role">([^<]*)<\/td>/g,
        ),
      ].map((m) => ({ id: Number(m[1]), action: m[2], actor: m[3], role: m[4] }));
      expect(rows.map((r) => r.id)).toEqual(rows.map((r) => r.id).sort((a, b) => b - a));
      expect(rows).toContainEqual(
        expect.objectContaining({
          action: 'dead_letter.replay',
          actor: 'ops-admin',
          role: 'admin',
        }),
      );
      expect(rows).toContainEqual(
        expect.objectContaining({ action: 'event.replay', actor: 'ops-admin', role: 'admin' }),
      );
      const filtered = await get('/dashboard/audit?action=dead_letter.discard', admin.session);
      const actions = [...filtered.html.matchAll(/data-action="([^"]+)"/g)].map((m) => m[1]);
      expect(actions).toEqual(['dead_letter.discard']);
      expect((await get('/dashboard/audit', viewer.session)).status).toBe(403);
    });
  });

  describe('navigation', () => {
    it('links events and dead letters for everyone, audit and queues for admins only', async () => {
      const v = (await get('/dashboard', viewer.session)).html;
      const a = (await get('/dashboard', admin.session)).html;
      for (const href of ['/dashboard/events', '/dashboard/dead-letters']) {
        expect(v).toContain(`href="${href}"`);
        expect(a).toContain(`href="${href}"`);
      }
      for (const href of ['/dashboard/audit', '/dashboard/queues']) {
        expect(v).not.toContain(`href="${href}"`);
        expect(a).toContain(`href="${href}"`);
      }
    });
  });

  describe('Bull Board', () => {
    it('is for admin sessions only: admin 200, viewer 403, no session → the login form', async () => {
      const board = await get('/dashboard/queues', admin.session);
      expect(board.status).toBe(200);
      expect(board.html).toContain('closeloop queues');
      const api = await get('/dashboard/queues/api/queues', admin.session);
      expect(api.status).toBe(200);
      const names = (JSON.parse(api.html) as { queues: { name: string }[] }).queues.map(
        (q) => q.name,
      );
      expect(names.sort()).toEqual(['billing', 'connectors', 'webhooks']);

      for (const path of ['/dashboard/queues', '/dashboard/queues/api/queues']) {
        const refused = await get(path, viewer.session);
        expect(refused.status).toBe(403);
        expect(refused.html).toContain('admin role only');
        const anonymous = await get(path);
        expect(anonymous.status).toBe(302);
        expect(anonymous.location).toBe('/dashboard/login?next=%2Fdashboard%2Fqueues');
      }
      const forged = await request('PUT', '/dashboard/queues/api/queues/webhooks/pause', 'forged');
      expect(forged.status).toBe(303);
      const viewerPause = await request(
        'PUT',
        '/dashboard/queues/api/queues/webhooks/pause',
        viewer.session,
      );
      expect(viewerPause.status).toBe(403);
    });
  });
});
