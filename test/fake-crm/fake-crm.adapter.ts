import { CrmTarget } from '../../src/domain/deal-stage';
import { CrmDeal, CrmPort, CrmWriteBack, NewCrmDeal } from '../../src/ports/crm.port';

/**
 * A deal as FakeCRM keeps it, in FakeCRM's own words (a board of columns, a "value", a "plan"
 * field): the adapter's job is to map these onto the port's CrmDeal, as the HubSpot adapter maps
 * dealname/dealstage/closeloop_* (src/connectors/hubspot/hubspot-crm.adapter.ts).
 */
export interface FakeCrmRecord {
  id: string;
  title: string;
  /** Major units, as FakeCRM shows it ("1200000"). */
  value?: string;
  currencyCode?: string;
  board?: string;
  column: string;
  person?: { email?: string; first?: string; last?: string };
  organisation?: string;
  /** The billing plan JSON text (CONTRACT §4), as a FakeCRM custom field. */
  plan?: string;
  /** The referral this deal came from: "<platform>:<referral id>". */
  referralTag?: string;
  /** FakeCRM's "co-sell with Microsoft" toggle (HubSpot: closeloop_cosell). */
  coSell?: boolean;
  /** FakeCRM's expected close, a plain date (YYYY-MM-DD). */
  expectedClose?: string;
}

/** FakeCRM's one board and its column ids (the provider's stage ids) → hub stages. */
export const FAKE_CRM_BOARD = 'fc-main';
export const FAKE_CRM_STAGES: Readonly<Record<string, CrmTarget>> = {
  'fc-intro': 'APPOINTMENT',
  'fc-talks': 'NEGOTIATING',
  'fc-contract': 'CONTRACT_SENT',
  'fc-won': 'WON',
  'fc-lost': 'LOST',
};

/**
 * A test-only CRM adapter (docs/adding-a-provider.md): everything the core needs from a CRM, over
 * an in-memory map of deals, with its own stage ids. It records what the hub writes back (totals,
 * stage, notes) so specs can assert it. Bind it as CrmPort instead of HubspotCrmAdapter:
 * `startCore({ crm: new FakeCrmAdapter() })` (test/support/core.ts).
 */
export class FakeCrmAdapter extends CrmPort {
  readonly provider = 'fake-crm';
  readonly label = 'FakeCRM';
  readonly stageMappingHint = 'map it in the fake CRM adapter';
  readonly defaultPipeline = FAKE_CRM_BOARD;

  /** FakeCRM's deals, by id. */
  readonly deals = new Map<string, FakeCrmRecord>();
  /** Every writeBack call, in order. */
  readonly writeBacks: { crmDealId: string; values: CrmWriteBack }[] = [];
  /** Every note added, in order. */
  readonly notes: { id: string; crmDealId: string; body: string; at: Date }[] = [];
  private seq = 0;

  constructor(private readonly credentials = true) {
    super();
  }

  configured(): boolean {
    return this.credentials;
  }

  /** Puts a deal into FakeCRM (as a salesperson would) and returns it. */
  put(record: Omit<FakeCrmRecord, 'board'> & { board?: string }): FakeCrmRecord {
    const stored = { board: FAKE_CRM_BOARD, ...record };
    this.deals.set(stored.id, stored);
    return stored;
  }

  /** Drags a deal to another column. */
  move(id: string, column: string): void {
    this.record(id).column = column;
  }

  readDeal(crmDealId: string): Promise<CrmDeal | null> {
    const r = this.deals.get(crmDealId);
    return Promise.resolve(r ? crmDealOf(r) : null);
  }

  stageTarget(_pipeline: string | null | undefined, stageId: string): CrmTarget | undefined {
    return FAKE_CRM_STAGES[stageId];
  }

  stageIdFor(_pipeline: string | null | undefined, target: CrmTarget): string | undefined {
    return Object.entries(FAKE_CRM_STAGES).find(([, t]) => t === target)?.[0];
  }

  writeBack(crmDealId: string, values: CrmWriteBack): Promise<void> {
    const r = this.record(crmDealId);
    this.writeBacks.push({ crmDealId, values: { ...values } });
    if (values.stageId) r.column = values.stageId;
    return Promise.resolve();
  }

  addNote(crmDealId: string, body: string, at: Date): Promise<string> {
    this.record(crmDealId);
    const id = `fc-note-${++this.seq}`;
    this.notes.push({ id, crmDealId, body, at });
    return Promise.resolve(id);
  }

  findDealsByReferral(referralId: string): Promise<string[]> {
    return Promise.resolve(
      [...this.deals.values()]
        .filter((r) => r.referralTag?.split(':')[1] === referralId)
        .map((r) => r.id),
    );
  }

  createDeal(deal: NewCrmDeal): Promise<string> {
    const id = `fc-deal-${++this.seq}`;
    this.put({
      id,
      title: deal.name,
      value: deal.amount,
      currencyCode: deal.currency.toUpperCase(),
      board: deal.pipeline,
      column: deal.stageId ?? 'fc-intro',
      referralTag: `${deal.referral.platform}:${deal.referral.id}`,
    });
    return Promise.resolve(id);
  }

  private record(id: string): FakeCrmRecord {
    const r = this.deals.get(id);
    if (!r) throw new Error(`FakeCRM has no deal ${id}`);
    return r;
  }
}

/** A FakeCRM deal in the hub's words (the port's CrmDeal). */
function crmDealOf(r: FakeCrmRecord): CrmDeal {
  const [platform, referralId] = r.referralTag?.split(':') ?? [];
  return {
    id: r.id,
    name: r.title,
    amount: r.value ?? null,
    currency: r.currencyCode ?? null,
    pipeline: r.board ?? null,
    stageId: r.column,
    billingPlan: r.plan ?? null,
    referral: platform && referralId ? { platform, id: referralId } : null,
    contact: r.person
      ? { email: r.person.email, firstName: r.person.first, lastName: r.person.last }
      : null,
    companyName: r.organisation ?? null,
    cosell: r.coSell ?? false,
    closeDate: r.expectedClose ?? null,
  };
}
