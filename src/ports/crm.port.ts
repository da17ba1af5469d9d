import { CrmTarget } from '../domain/deal-stage';

/**
 * A CRM deal as the core reads it, in the hub's words: the adapter maps its provider's property
 * names and value formats onto these fields (HubSpot: src/connectors/hubspot/hubspot-crm.adapter.ts).
 * Amounts stay the CRM's decimal strings; the lifecycle converts them with the deal's currency.
 */
export interface CrmDeal {
  id: string;
  name?: string | null;
  /** Decimal string in major units, as the CRM holds it (e.g. "1500000"). */
  amount?: string | null;
  /** ISO 4217 code, any case. */
  currency?: string | null;
  pipeline?: string | null;
  /** The CRM's own stage id (mapped to a hub stage by `CrmPort.stageTarget`). */
  stageId?: string | null;
  /** The raw billing plan the CRM carries (JSON text), if any. */
  billingPlan?: string | null;
  /** The referral the CRM deal names (platform + the platform's referral id), if any. */
  referral?: { platform: string; id: string } | null;
  contact?: {
    email?: string | null;
    firstName?: string | null;
    lastName?: string | null;
    phone?: string | null;
  } | null;
  companyName?: string | null;
  /** The company's address as the CRM holds it (free text; `country` a name or an ISO code). */
  companyAddress?: CrmAddress | null;
  /** The CRM's expected close date: `YYYY-MM-DD`, or an ISO 8601 date-time (its date in the deal's zone). */
  closeDate?: string | null;
  /** The deal's description, as the CRM holds it. */
  description?: string | null;
  /** The CRM asks for an outbound co-sell referral (HubSpot `closeloop_cosell = true`, CONTRACT §5). */
  cosell?: boolean | null;
}

/** A postal address as a CRM holds it. */
export interface CrmAddress {
  line1?: string | null;
  line2?: string | null;
  city?: string | null;
  state?: string | null;
  postalCode?: string | null;
  /** A country name or ISO 3166 code, as typed into the CRM. */
  country?: string | null;
}

/** What the hub writes back onto a CRM deal (CONTRACT §4: invoiced, paid, sync status, won stage). */
export interface CrmWriteBack {
  /** Sum of confirmed invoices, smallest currency unit. */
  invoicedAmount: number;
  /** Sum of paid invoices, smallest currency unit. */
  paidAmount: number;
  syncStatus: 'plan_error' | 'billing_error' | 'billing' | 'in_sync';
  /** The CRM stage id to move the deal to (the won stage once the contract is signed). */
  stageId?: string;
  /** The referral the hub created for the deal (co-sell out), to show on the CRM deal. */
  referral?: { platform: string; id: string };
}

/** A CRM deal the hub creates for an accepted referral (REFERRAL_CREATE_CRM_DEALS). */
export interface NewCrmDeal {
  name: string;
  pipeline: string;
  stageId?: string;
  referral: { platform: string; id: string };
  currency: string;
  /** Decimal string in major units. */
  amount?: string;
}

/**
 * The CRM port: everything the lifecycle and the CRM write-back need from a CRM. One adapter per
 * CRM implements it (docs/adding-a-provider.md); the core never sees a provider's field names.
 * Calls throw TransientError / PermanentError as the spine expects.
 */
export abstract class CrmPort {
  /** The provider's name as events, deals (`source`) and metrics carry it, e.g. `hubspot`. */
  abstract readonly provider: string;
  /** The provider's name for people, e.g. `HubSpot`. */
  abstract readonly label: string;
  /** Where an operator maps the CRM's stages to the hub's (said when a stage is not mapped). */
  abstract readonly stageMappingHint: string;
  /** The pipeline a deal the hub creates goes into. */
  abstract readonly defaultPipeline: string;
  /** Whether the hub may call the CRM (credentials set). */
  abstract configured(): boolean;
  /** The deal as the CRM has it now; null when it no longer exists. */
  abstract readDeal(crmDealId: string): Promise<CrmDeal | null>;
  /** The hub stage a CRM stage id means in a pipeline (undefined: not mapped). */
  abstract stageTarget(pipeline: string | null | undefined, stageId: string): CrmTarget | undefined;
  /** The CRM stage id of a hub stage in a pipeline (undefined: the pipeline has none). */
  abstract stageIdFor(pipeline: string | null | undefined, target: CrmTarget): string | undefined;
  /** Sets the hub's totals (and stage) on the CRM deal; safe to repeat. */
  abstract writeBack(crmDealId: string, values: CrmWriteBack): Promise<void>;
  /** Adds a note (one per fact) to the CRM deal; returns the note's id. */
  abstract addNote(crmDealId: string, body: string, at: Date): Promise<string>;
  /** CRM deals already carrying a referral id (an earlier create whose answer was lost). */
  abstract findDealsByReferral(referralId: string): Promise<string[]>;
  /** Creates a CRM deal; returns its id. */
  abstract createDeal(deal: NewCrmDeal): Promise<string>;
}
