import { billability } from '../billing/billability';
import { ENDED_STAGES, PRE_WON_STAGES } from '../domain/deal-stage';
import { MessageKey, Params } from './i18n/i18n';

/** What the explanation needs of DealsService.detail(); structural so the spec can build it by hand. */
export interface BillingStatusInput {
  stage: string;
  plan: unknown;
  planError: string | null;
  contract: { status: string } | null;
  items: {
    key: string;
    label: string;
    trigger: string;
    removed: boolean;
    submittedAt: Date | string | null;
    acceptanceDueAt: Date | string | null;
    acceptedAt: Date | string | null;
    rejectedAt: Date | string | null;
    rejectionReason: string | null;
    progressPercent: number;
    billedPercent: number;
    startOn: string | null;
    months: number | null;
    billingStatus: string;
    invoices: {
      billingKey: string;
      state: string;
      stripeInvoiceId: string | null;
      stripeNumber: string | null;
      lastError: string | null;
      createdAt: Date | string;
    }[];
  }[];
}

export type BillingTone = 'ok' | 'waiting' | 'problem' | 'none';

export interface BillingLine {
  key: MessageKey;
  params: Params;
  tone: BillingTone;
}

export interface BillingExplanation {
  /** The worst tone of the lines: problem > waiting > ok > none. */
  tone: BillingTone;
  lines: BillingLine[];
  summary?: BillingLine;
}

/** Stages in which billing has not started: the deal is not won yet. */
const BEFORE_WON = new Set<string>(PRE_WON_STAGES);
/** Stages that end a deal without a sale. */
const ENDED = new Set<string>(ENDED_STAGES);
const TONE_ORDER: BillingTone[] = ['none', 'ok', 'waiting', 'problem'];

const day = (v: Date | string | null) =>
  v === null ? '?' : (typeof v === 'string' ? v : v.toISOString()).slice(0, 10);

/**
 * "Why was this deal (not) billed?" in plain language, from the deal detail alone: one line per
 * plan item (paid, waiting for payment, being issued, failing with its last error, void, or which
 * trigger it still waits for), preceded by what holds the whole deal back (not won, no plan, plan
 * refused, lost). Lines are message keys with parameters, so both languages say the same.
 */
export function explainBilling(deal: BillingStatusInput): BillingExplanation {
  const lines: BillingLine[] = [];
  const live = deal.items.filter((i) => !i.removed || i.invoices.length > 0);
  const invoiced = live.filter((i) => i.invoices.length > 0);

  if (ENDED.has(deal.stage) && invoiced.length === 0) {
    lines.push({ key: 'billing.closedStage', params: { stage: deal.stage }, tone: 'none' });
  }
  // Not billable (no plan in force) says so first; a refused change of a plan in force is noted.
  const billable = billability({ billingPlan: deal.plan, planError: deal.planError });
  if (deal.planError) {
    lines.push({
      key: billable.ok ? 'billing.planRefusedKept' : 'billing.planRefused',
      params: { error: deal.planError },
      tone: 'problem',
    });
  }
  if (live.length === 0) {
    if (!deal.planError && (deal.plan === null || deal.plan === undefined)) {
      lines.push({
        key: 'billing.noPlan',
        params: {},
        tone: ENDED.has(deal.stage) ? 'none' : 'problem',
      });
    } else if (!deal.planError) {
      lines.push({ key: 'billing.noItems', params: {}, tone: 'none' });
    }
    return finish(lines);
  }
  const notWon = BEFORE_WON.has(deal.stage);
  if (notWon && invoiced.length === 0) {
    lines.push({ key: 'billing.notWon', params: { stage: deal.stage }, tone: 'waiting' });
  }
  // Before WON (or after a loss) an item without invoices waits for nothing of its own.
  const holdsAll = notWon || ENDED.has(deal.stage);
  for (const item of deal.items) {
    const line = explainItem(item, deal, holdsAll);
    if (line) lines.push(line);
  }
  const billed = live.filter((i) =>
    ['INVOICE_CREATED', 'INVOICE_POSTED', 'PAID'].includes(i.billingStatus),
  ).length;
  const paid = live.filter((i) => i.billingStatus === 'PAID').length;
  return finish(lines, {
    key: 'billing.summary',
    params: { items: live.length, billed, paid },
    tone: 'none',
  });
}

function explainItem(
  item: BillingStatusInput['items'][number],
  deal: BillingStatusInput,
  holdsAll: boolean,
): BillingLine | undefined {
  const label = item.label || item.key;
  const latest = [...item.invoices].sort(
    (a, b) => new Date(b.createdAt).getTime() - new Date(a.createdAt).getTime(),
  )[0];
  const invoice = latest
    ? (latest.stripeNumber ?? latest.stripeInvoiceId ?? latest.billingKey)
    : '';
  if (item.removed && !latest) {
    return { key: 'billing.item.removed', params: { label }, tone: 'none' };
  }
  if (latest) {
    switch (latest.state) {
      case 'PAID':
        return { key: 'billing.item.paid', params: { label, invoice }, tone: 'ok' };
      case 'CREATED':
      case 'POSTED':
        return {
          key: 'billing.item.posted',
          params: { label, invoice, state: latest.state },
          tone: 'ok',
        };
      case 'VOID':
      case 'UNCOLLECTIBLE':
        return {
          key: 'billing.item.void',
          params: { label, invoice, state: latest.state },
          tone: 'problem',
        };
      default: // PENDING, CREATING
        return latest.lastError
          ? {
              key: 'billing.item.failing',
              params: { label, error: latest.lastError },
              tone: 'problem',
            }
          : {
              key: 'billing.item.issuing',
              params: { label, state: latest.state },
              tone: 'waiting',
            };
    }
  }
  // Nothing invoiced yet: which trigger is the item waiting for?
  if (holdsAll) return undefined; // the deal-level line says why
  switch (item.trigger) {
    case 'contract.signed':
      return {
        key: 'billing.item.waitContract',
        params: { label, contract: deal.contract?.status ?? '—' },
        tone: 'waiting',
      };
    case 'milestone.accepted':
      if (item.rejectedAt) {
        return {
          key: 'billing.item.rejected',
          params: { label, reason: item.rejectionReason ?? '—' },
          tone: 'problem',
        };
      }
      if (item.submittedAt) {
        return {
          key: 'billing.item.waitAcceptance',
          params: { label, submitted: day(item.submittedAt), due: day(item.acceptanceDueAt) },
          tone: 'waiting',
        };
      }
      return { key: 'billing.item.waitMilestone', params: { label }, tone: 'waiting' };
    case 'milestone.progress':
      return {
        key: 'billing.item.waitProgress',
        params: { label, progress: item.progressPercent, billed: item.billedPercent },
        tone: 'waiting',
      };
    case 'monthly':
      return {
        key: 'billing.item.waitMonthly',
        params: { label, startOn: item.startOn ?? '?', months: item.months ?? '?' },
        tone: 'waiting',
      };
    default:
      return {
        key: 'billing.item.waitOther',
        params: { label, trigger: item.trigger },
        tone: 'waiting',
      };
  }
}

function finish(lines: BillingLine[], summary?: BillingLine): BillingExplanation {
  const tone = lines.reduce<BillingTone>(
    (worst, l) => (TONE_ORDER.indexOf(l.tone) > TONE_ORDER.indexOf(worst) ? l.tone : worst),
    'none',
  );
  return { tone, lines, summary };
}
