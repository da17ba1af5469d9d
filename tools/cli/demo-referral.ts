/**
 * The referral part of `npm run demo` (issue 4): referrals that arrive, are worked, billed and
 * reported back, driven through the provider simulator as the platforms and the user's tools would.
 *
 * 1. Partner Center, its whole life: the referral is created on the simulator (signed
 *    `referral-created` webhook; the hub reads it from the Partner Center API) → deal REFERRED with
 *    its response deadline → accepted through the admin API → PATCH Active/Accepted → a HubSpot deal
 *    carrying `closeloop_referral_platform` / `closeloop_referral_id` is linked to it → contract sent,
 *    signed → WON and PATCH Closed/Won with the deal value → invoices → milestones → DELIVERED →
 *    paid → CLOSED; then the deal's reports and every PATCH Partner Center received.
 * 2. PRONI アイミツ (generic Standard Webhooks referral, no API): accepted and won; its reports are
 *    manual tasks with deadlines and copy-ready fields.
 * 3. partner-network (generic): accepted and won; its reports arrive signed at the simulator's
 *    report receiver (REFERRAL_REPORT_WEBHOOK_URL), `webhook-id` = the hub's reportId.
 *
 * Every run uses new referral ids (randomUUID), so reruns on the same database just add deals. A
 * demo aid, never a code path of the hub; the demo's printing and waiting helpers come in `kit`.
 */
import { randomUUID } from 'node:crypto';

import type { SimPartnerCenterPatch } from '../simulator/provider-sim/partner-center.sim';
import { send, standardDelivery } from '../simulator/signed-delivery';
import { CliError, sleep } from './cli-support';
import type { AdminClient, DealView, ReportView } from './demo-admin-client';
import { addDaysInZone, localDate } from '../../src/domain/calendar';
import { RunningSim, SAMPLE_PLAN } from './sim-support';

/** What the demo lends this part: its admin client, simulator, secrets and printing helpers. */
export interface ReferralDemoKit {
  hubUrl: string;
  admin: AdminClient;
  sim: RunningSim;
  /** REFERRAL_WEBHOOK_SECRET: signs the generic referral deliveries. */
  referralWebhookSecret: string;
  /** Zone the deadlines are printed in (BILLING_TIMEZONE). */
  timeZone: string;
  say(line: string): void;
  hubSays(line: string): void;
  hubView(d: DealView): string;
  table(headers: string[], rows: string[][]): string;
  yen(n: number): string;
  waitUntil<T>(check: () => T | undefined, what: string, timeoutMs?: number): Promise<T>;
  printInvoice(deal: DealView, key: string): void;
  sendMilestone(
    itemKey: string,
    by: { dealId: string } | { crmDealId: string },
    id: string,
    acceptedBy: string,
  ): Promise<{ status: number; body: unknown }>;
}

export interface ReferralDemo {
  partnerCenterDealId: string;
  aimitsuDealId: string;
  partnerNetworkDealId: string;
}

interface Party {
  contact: { email: string; firstname: string; lastname: string };
  company: { name: string; domain: string };
}

const PC_REFERRAL = {
  name: 'Azure 移行と Web サイト刷新 — コントソ株式会社',
  value: 400_000,
  party: {
    contact: { email: 'hanako.yamada@contoso.example', firstname: '花子', lastname: '山田' },
    company: { name: 'コントソ株式会社', domain: 'contoso.example' },
  },
};
const AIMITSU_REFERRAL = {
  title: 'コーポレートサイト制作 — 株式会社みらい商事',
  value: 600_000,
  party: {
    contact: { email: 'sato@mirai-shoji.example', firstname: '一郎', lastname: '佐藤' },
    company: { name: '株式会社みらい商事', domain: 'mirai-shoji.example' },
  },
};
const PARTNER_NETWORK_REFERRAL = {
  title: 'EC サイト構築 — 株式会社ひかり物産',
  value: 500_000,
  party: {
    contact: { email: 'suzuki@hikari-bussan.example', firstname: '花', lastname: '鈴木' },
    company: { name: '株式会社ひかり物産', domain: 'hikari-bussan.example' },
  },
};

/** Report statuses an automatic channel leaves behind once it is done with a report. */
const SETTLED = ['REPORTED', 'NOT_APPLICABLE', 'DEAD'];

export async function runReferralDemo(kit: ReferralDemoKit): Promise<ReferralDemo> {
  console.log(
    `\nReferrals: each arrives from its platform, is worked, billed and reported back ` +
      `(times in ${kit.timeZone}).\n\n` +
      `1. A Microsoft Partner Center referral, its whole life:\n`,
  );
  const partnerCenterDealId = await partnerCenterReferral(kit);

  console.log(
    `\n2. A PRONI アイミツ referral (no API: REFERRAL_MANUAL_PLATFORMS, its reports are manual tasks):\n`,
  );
  const aimitsuDealId = await aimitsuReferral(kit);

  console.log(
    `\n3. A partner-network referral (its reports are signed webhooks to REFERRAL_REPORT_WEBHOOK_URL):\n`,
  );
  const partnerNetworkDealId = await partnerNetworkReferral(kit);
  return { partnerCenterDealId, aimitsuDealId, partnerNetworkDealId };
}

// ---------------------------------------------------------------------------------------------
// 1. Partner Center

async function partnerCenterReferral(kit: ReferralDemoKit): Promise<string> {
  const { admin, say, hubSays, hubView, yen } = kit;
  const { partnerCenter, hubspot, docusign, sim } = kit.sim;
  const { contact, company } = PC_REFERRAL.party;

  const pc = partnerCenter.createReferral({
    name: PC_REFERRAL.name,
    customerProfile: {
      name: company.name,
      team: [
        {
          firstName: contact.firstname,
          lastName: contact.lastname,
          email: contact.email,
          phoneNumber: '+81-3-0000-0000',
        },
      ],
    },
    details: {
      dealValue: PC_REFERRAL.value,
      currency: 'JPY',
      notes: 'オンプレミスの業務システムを Azure へ移行し、コーポレートサイトも刷新したい。',
    },
  });
  say(
    `Partner Center: referral ${pc.id} "${pc.name}" from ${pc.referralSource ?? 'Microsoft'} ` +
      `(${pc.status}/${pc.substatus}, est. ${yen(PC_REFERRAL.value)}); signed referral-created webhook sent to the hub`,
  );
  const dealId = await dealOfReferral(kit, 'partner-center', pc.id);
  let deal = await admin.waitDeal(dealId, 'the referral on its deal', (d) =>
    Boolean(d.referral?.referralId),
  );
  say(`the hub read referral ${pc.id} from the Partner Center API and opened deal ${dealId}`);
  hubSays(referralLine(kit, deal));
  const hubReferralId = deal.referral?.referralId as string;

  // The vendor accepts in the hub; the report service tells Partner Center.
  const accepted = await admin.post<{ state: string }>(
    `/api/referrals/${encodeURIComponent(hubReferralId)}/accept`,
  );
  say(`admin: POST /api/referrals/${hubReferralId}/accept → ${accepted.state}`);
  deal = await admin.waitDeal(dealId, 'APPOINTMENT', (d) => d.stage === 'APPOINTMENT');
  hubSays(`${hubView(deal)}; appointment report queued for Partner Center`);
  const activePatch = await kit.waitUntil(
    () => appliedPatch(kit, pc.id, 'Active'),
    'the Active/Accepted PATCH on Partner Center',
  );
  say(`Partner Center received ${patchText(activePatch)}`);

  // The vendor's HubSpot deal for it: linked to the referral's hub deal, not a new deal.
  const { dealId: crmDealId } = hubspot.createDeal({
    properties: {
      dealname: PC_REFERRAL.name,
      amount: String(PC_REFERRAL.value),
      deal_currency_code: 'JPY',
      pipeline: 'default',
      dealstage: 'appointmentscheduled',
      closeloop_billing_plan: JSON.stringify(SAMPLE_PLAN),
      closeloop_referral_platform: 'partner-center',
      closeloop_referral_id: pc.id,
    },
    contact,
    company,
  });
  say(
    `HubSpot deal ${crmDealId} created: closeloop_referral_platform = partner-center, ` +
      `closeloop_referral_id = ${pc.id}, ${yen(PC_REFERRAL.value)}, the sample plan`,
  );
  deal = await admin.waitDeal(dealId, `the link to HubSpot deal ${crmDealId}`, (d) =>
    Boolean(d.crmDealId === crmDealId && d.items.length),
  );
  hubSays(`HubSpot deal ${crmDealId} linked to ${dealId} (no new deal): ${hubView(deal)}`);

  // Contract sent → envelope → signed: WON, the deposit invoice and Closed/Won on Partner Center.
  hubspot.setStage(crmDealId, 'contractsent');
  say(`HubSpot: deal ${crmDealId} moved to contractsent`);
  const envelope = await kit.waitUntil(
    () =>
      docusign
        .envelopes()
        .find((e) =>
          e.customFields.some((f) => f.name === 'closeloop_deal_id' && f.value === dealId),
        ),
    'the DocuSign envelope',
  );
  say(`DocuSign: envelope ${envelope.envelopeId} sent to ${envelope.roles[0]?.email ?? '?'}`);
  docusign.complete(envelope.envelopeId);
  say(`DocuSign: envelope ${envelope.envelopeId} completed (signed by ${contact.email})`);
  deal = await admin.waitDeal(
    dealId,
    'WON and the deposit invoice',
    (d) => itemStatus(d, 'deposit') === 'INVOICE_POSTED',
  );
  kit.printInvoice(deal, 'deposit');
  hubSays(`${hubView(deal)}; won report queued for Partner Center`);
  const wonPatch = await kit.waitUntil(
    () => appliedPatch(kit, pc.id, 'Closed'),
    'the Closed/Won PATCH on Partner Center',
  );
  say(`Partner Center received ${patchText(wonPatch)}`);

  // Milestones accepted by the customer → invoices, DELIVERED.
  const run = randomUUID().slice(0, 8);
  for (const [key, by] of [
    ['design', { dealId }],
    ['balance', { crmDealId }],
  ] as const) {
    const res = await kit.sendMilestone(key, by, `msg_demo_pc_${run}_${key}`, contact.email);
    say(`milestone.accepted for ${key} sent → HTTP ${res.status}`);
    deal = await admin.waitDeal(dealId, `the ${key} invoice`, (d) =>
      ['INVOICE_POSTED', 'PAID'].includes(itemStatus(d, key) ?? ''),
    );
    kit.printInvoice(deal, key);
  }
  deal = await admin.waitDeal(dealId, 'DELIVERED', (d) => d.stage === 'DELIVERED');
  hubSays(hubView(deal));

  // The customer pays every invoice: CLOSED.
  for (const item of deal.items) {
    for (const inv of item.invoices.filter((i) => i.stripeInvoiceId && i.state === 'POSTED')) {
      sim.stripe.payInvoice(inv.stripeInvoiceId as string);
      say(`Stripe: invoice ${inv.stripeNumber} (${item.key}) paid, ${yen(inv.total)}`);
    }
  }
  deal = await admin.waitDeal(dealId, 'CLOSED', (d) => d.stage === 'CLOSED');
  hubSays(hubView(deal));

  // What the platform was told.
  const reports = await waitReports(kit, dealId, 'every Partner Center report delivered', (rs) =>
    Boolean(
      rs.some((r) => r.kind === 'delivered') &&
      rs.filter((r) => r.kind === 'confirmed_amount').length >= 3 &&
      rs.every((r) => SETTLED.includes(r.status)),
    ),
  );
  console.log(`\nReports of ${dealId} (${reports.source}):`);
  console.log(
    kit.table(
      ['kind', 'channel', 'status', 'amount ex. tax', 'delivered at / why not applicable'],
      reports.items.map((r) => [
        r.kind,
        r.channel,
        r.status,
        r.amountExTax === null ? '—' : yen(r.amountExTax),
        r.deliveredAt ? localTime(kit, r.deliveredAt) : (r.lastError ?? '—'),
      ]),
    ),
  );
  console.log(`\nPATCHes Partner Center received for referral ${pc.id}:`);
  console.log(
    kit.table(
      ['#', 'If-Match', 'answer', 'JSON Patch (replace)'],
      partnerCenter
        .patchesFor(pc.id)
        .map((p) => [
          String(p.seq),
          p.ifMatch ?? '—',
          `${p.status}${p.error ? ` ${p.error}` : ''}`,
          opsText(p),
        ]),
    ),
  );
  const now = partnerCenter.referral(pc.id);
  console.log(
    `  the referral on Partner Center now: ${now?.status}/${now?.substatus}, ` +
      `dealValue ${now?.details.dealValue} ${now?.details.currency}`,
  );
  return dealId;
}

// ---------------------------------------------------------------------------------------------
// 2. PRONI アイミツ (manual queue)

async function aimitsuReferral(kit: ReferralDemoKit): Promise<string> {
  const { dealId, externalId } = await arriveAndAccept(
    kit,
    'aimitsu',
    'アイミツ',
    AIMITSU_REFERRAL,
  );
  // The design item was expected to be invoiced five days ago and is not accepted yet: its
  // 確定報告 is past its deadline (報告期限超過), as アイミツ would show it.
  const overdueDate = localDate(addDaysInZone(new Date(), -5, kit.timeZone), kit.timeZone);
  const plan = {
    ...SAMPLE_PLAN,
    items: SAMPLE_PLAN.items.map((i) =>
      i.key === 'design' ? { ...i, expectedInvoiceDate: overdueDate } : i,
    ),
  };
  await linkAndWin(kit, 'aimitsu', externalId, dealId, AIMITSU_REFERRAL, plan);

  const tasks = await waitReports(
    kit,
    dealId,
    'the manual tasks',
    (rs) =>
      ['appointment', 'won'].every((k) => rs.some((r) => r.kind === k)) &&
      rs.some((r) => r.kind === 'confirmed_amount' && r.billingKey) &&
      rs.some((r) => r.kind === 'confirmed_amount' && !r.billingKey && r.status === 'OVERDUE'),
    'manual',
  );
  console.log(`\nManual queue for ${dealId} (${tasks.source}):`);
  console.log(
    kit.table(
      ['task', 'status', 'due', 'amount ex. tax', 'invoice'],
      tasks.items.map((r) => [
        r.title ?? r.kind,
        r.status,
        r.dueAt ? localTime(kit, r.dueAt) : '—',
        r.amountExTax === null ? '—' : kit.yen(r.amountExTax),
        r.billingKey ? 'issued' : r.kind === 'confirmed_amount' ? 'expected' : '—',
      ]),
    ),
  );
  console.log(
    `  the design item's expected invoice date ${overdueDate} passed without an invoice: its ` +
      `確定報告 task is OVERDUE (a report.overdue alert was raised; postpone it with a reason ` +
      `or report it)`,
  );
  const task = tasks.items.find((r) => r.kind === 'confirmed_amount' && r.billingKey);
  if (task) {
    console.log(
      `\nOne task, ready to copy into アイミツ's form: ${task.title ?? task.kind} ${task.id}, ` +
        `due ${task.dueAt ? localTime(kit, task.dueAt) : '—'}:`,
    );
    console.log(
      kit.table(
        ['項目', 'field', 'value'],
        task.fields.map((f) => [f.label, f.labelEn, f.value]),
      ),
    );
    console.log(
      `  once entered there: POST /api/reports/${task.id}/mark-reported (finance or admin token)`,
    );
  }
  return dealId;
}

// ---------------------------------------------------------------------------------------------
// 3. partner-network (generic signed report webhook)

async function partnerNetworkReferral(kit: ReferralDemoKit): Promise<string> {
  const { dealId, externalId } = await arriveAndAccept(
    kit,
    'partner-network',
    'partner-network',
    PARTNER_NETWORK_REFERRAL,
  );
  await linkAndWin(kit, 'partner-network', externalId, dealId, PARTNER_NETWORK_REFERRAL);
  const mine = () => kit.sim.reports.reports().filter((r) => r.data.referralId === externalId);
  await kit.waitUntil(
    () =>
      ['appointment', 'won', 'confirmed_amount'].every((k) => mine().some((r) => r.kind === k))
        ? true
        : undefined,
    'the reports at the report receiver',
  );
  console.log(
    `\nReports the simulator's receiver got for ${externalId} (${kit.sim.sim.url}/_sim/reports, signatures verified):`,
  );
  console.log(
    kit.table(
      ['webhook-id', 'type', 'amountExTax', 'invoiceNumber', 'deliveries'],
      mine().map((r) => [
        r.id,
        r.type,
        typeof r.data.amountExTax === 'number' ? kit.yen(r.data.amountExTax) : '—',
        typeof r.data.invoiceNumber === 'string' ? r.data.invoiceNumber : '—',
        String(r.deliveries),
      ]),
    ),
  );
  return dealId;
}

// ---------------------------------------------------------------------------------------------
// Shared steps

/** A generic referral (Standard Webhooks) arrives; the vendor accepts it. */
async function arriveAndAccept(
  kit: ReferralDemoKit,
  platform: string,
  platformName: string,
  spec: { title: string; value: number; party: Party },
): Promise<{ dealId: string; externalId: string }> {
  const { admin, say, hubSays } = kit;
  const externalId = `${platform === 'aimitsu' ? 'AIM' : 'PN'}-${randomUUID()}`;
  // PRONI アイミツ has no accept step and no response clock: a won lead (当選) is the vendor's.
  const owned = platform === 'aimitsu';
  const respondBy = owned ? undefined : new Date(Date.now() + 48 * 3_600_000).toISOString();
  const delivery = standardDelivery(
    '/webhooks/referrals/generic',
    {
      type: 'referral.created',
      timestamp: new Date().toISOString(),
      data: {
        referralId: externalId,
        platform,
        customer: { name: spec.party.company.name, email: spec.party.contact.email },
        title: spec.title,
        estimatedValue: spec.value,
        currency: 'jpy',
        ...(respondBy ? { respondBy } : {}),
      },
    },
    { secret: kit.referralWebhookSecret, id: `msg_demo_ref_${randomUUID()}` },
  );
  const res = await send(kit.hubUrl, delivery);
  say(
    `${platformName}: referral ${externalId} "${spec.title}" (est. ${kit.yen(spec.value)}) → ` +
      `referral.created to /webhooks/referrals/generic (webhook-id ${delivery.headers['webhook-id']}) → HTTP ${res.status}`,
  );
  if (res.status !== 200) {
    throw new CliError(`the hub refused the ${platform} referral: ${JSON.stringify(res.body)}`);
  }
  const dealId = await dealOfReferral(kit, platform, externalId);
  let deal = await admin.waitDeal(dealId, 'the referral on its deal', (d) =>
    Boolean(d.referral?.referralId),
  );
  hubSays(`deal ${dealId}: ${referralLine(kit, deal)}`);
  if (owned) {
    say(
      `${platformName}: the lead is the vendor's once won (当選) — no accept step, no response clock; ` +
        `the deal moves on with the vendor's own CRM stages`,
    );
    return { dealId, externalId };
  }
  const hubReferralId = deal.referral?.referralId as string;
  const accepted = await admin.post<{ state: string }>(
    `/api/referrals/${encodeURIComponent(hubReferralId)}/accept`,
  );
  say(`admin: POST /api/referrals/${hubReferralId}/accept → ${accepted.state}`);
  deal = await admin.waitDeal(dealId, 'APPOINTMENT', (d) => d.stage === 'APPOINTMENT');
  hubSays(kit.hubView(deal));
  return { dealId, externalId };
}

/** The vendor's HubSpot deal for the referral (linked, with the sample plan) is won: WON, deposit invoice. */
async function linkAndWin(
  kit: ReferralDemoKit,
  platform: string,
  referralId: string,
  dealId: string,
  spec: { title: string; value: number; party: Party },
  plan: unknown = SAMPLE_PLAN,
): Promise<void> {
  const { admin, say, hubSays } = kit;
  const { dealId: crmDealId } = kit.sim.hubspot.createDeal({
    properties: {
      dealname: spec.title,
      amount: String(spec.value),
      deal_currency_code: 'JPY',
      pipeline: 'default',
      dealstage: 'appointmentscheduled',
      closeloop_billing_plan: JSON.stringify(plan),
      closeloop_referral_platform: platform,
      closeloop_referral_id: referralId,
    },
    ...spec.party,
  });
  await admin.waitDeal(dealId, `the link to HubSpot deal ${crmDealId}`, (d) =>
    Boolean(d.crmDealId === crmDealId && d.items.length),
  );
  kit.sim.hubspot.setStage(crmDealId, 'closedwon');
  say(
    `HubSpot deal ${crmDealId} (closeloop_referral_platform = ${platform}, the sample plan) ` +
      `linked to ${dealId}, then moved to closedwon`,
  );
  const deal = await admin.waitDeal(
    dealId,
    'WON and the deposit invoice',
    (d) => d.stage === 'WON' && itemStatus(d, 'deposit') === 'INVOICE_POSTED',
  );
  kit.printInvoice(deal, 'deposit');
  hubSays(kit.hubView(deal));
}

/** The hub deal a referral created (GET /api/deals?referralId=). */
async function dealOfReferral(
  kit: ReferralDemoKit,
  platform: string,
  externalId: string,
): Promise<string> {
  const id = await pollUntil(async () => {
    const list = await kit.admin
      .get<{ items: { id: string; referral: { platform: string } | null }[] }>(
        `/api/deals?referralId=${encodeURIComponent(externalId)}`,
      )
      .catch(() => ({ items: [] }));
    return list.items.find((d) => d.referral?.platform === platform)?.id;
  }, `the hub deal of ${platform} referral ${externalId}`);
  return id;
}

/**
 * The deal's reports, oldest first: from GET /api/reports?dealId= (the report queue API), or from
 * the deal detail when that API is not available; polled until `ready` holds.
 */
async function waitReports(
  kit: ReferralDemoKit,
  dealId: string,
  what: string,
  ready: (rs: ReportView[]) => boolean,
  channel?: string,
): Promise<{ items: ReportView[]; source: string }> {
  const query = `dealId=${encodeURIComponent(dealId)}${channel ? `&channel=${channel}` : ''}`;
  let last: ReportView[] = [];
  let source = '';
  return pollUntil(
    async () => {
      try {
        const page = await kit.admin.get<{ items: (ReportView & { occurredAt: string })[] }>(
          `/api/reports?${query}&limit=200`,
        );
        last = page.items.sort(
          (a, b) => a.occurredAt.localeCompare(b.occurredAt) || a.id.localeCompare(b.id),
        );
        source = `GET /api/reports?${query}`;
      } catch {
        const deal = await kit.admin.deal(dealId);
        last = deal.reports.filter((r) => !channel || r.channel === channel);
        source = `GET /api/deals/${dealId}, its reports`;
      }
      return ready(last) ? { items: last, source } : undefined;
    },
    what,
    30_000,
    () =>
      last.length
        ? `; the reports so far: ${last.map((r) => `${r.kind} ${r.status}`).join(', ')}`
        : '',
  );
}

async function pollUntil<T>(
  check: () => Promise<T | undefined>,
  what: string,
  timeoutMs = 30_000,
  detail: () => string = () => '',
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > deadline) {
      throw new CliError(
        `timed out after ${timeoutMs / 1000} s waiting for ${what}${detail()}; see .demo/hub.log`,
      );
    }
    await sleep(100);
  }
}

function referralLine(kit: ReferralDemoKit, deal: DealView): string {
  const r = deal.referral;
  return (
    `${deal.stage} · referral ${r?.referralId} ${r?.state}` +
    (r?.respondBy
      ? `, answer by ${localTime(kit, r.respondBy)} (${r.clockRule})`
      : ', no response clock')
  );
}

function itemStatus(d: DealView, key: string): string | undefined {
  return d.items.find((i) => i.key === key)?.billingStatus;
}

function appliedPatch(
  kit: ReferralDemoKit,
  referralId: string,
  status: string,
): SimPartnerCenterPatch | undefined {
  return kit.sim.partnerCenter
    .patchesFor(referralId, { appliedOnly: true })
    .find((p) => p.ops?.some((o) => o.path === '/status' && o.value === status));
}

function opsText(p: SimPartnerCenterPatch): string {
  return (p.ops ?? []).map((o) => `${o.path}=${String(o.value)}`).join(' ');
}

function patchText(p: SimPartnerCenterPatch): string {
  return `PATCH /v1.0/engagements/referrals/${p.referralId} (If-Match ${p.ifMatch ?? 'none'}) → ${p.status}: ${opsText(p)}`;
}

/** `2026-11-26 17:05:03` in the demo's zone. */
function localTime(kit: ReferralDemoKit, iso: string): string {
  return new Date(iso).toLocaleString('sv-SE', { timeZone: kit.timeZone });
}
