import { Injectable } from '@nestjs/common';

import { AppConfig } from '../../config/app-config';
import { CrmTarget } from '../../domain/deal-stage';
import { CrmDeal, CrmPort, CrmWriteBack, NewCrmDeal } from '../../ports/crm.port';
import { HubspotClient } from './hubspot.client';
import { PipelineOverrides, crmStageFor, mapCrmStage } from './hubspot-stages';
import { CrmDealSnapshot } from './hubspot.types';

/** The HubSpot deal property that carries a referral's id (CONTRACT §3.2). */
const REFERRAL_ID_PROPERTY = 'closeloop_referral_id';

/**
 * HubSpot as the hub's CRM (CONTRACT §3.2, §4): the only place that knows HubSpot's property
 * names (dealname, dealstage, closeloop_* custom properties), its stage ids and pipelines
 * (HUBSPOT_PIPELINE_STAGES overrides), and how a deal's associated contact and company read.
 */
@Injectable()
export class HubspotCrmAdapter extends CrmPort {
  readonly provider = 'hubspot';
  readonly label = 'HubSpot';
  readonly stageMappingHint = 'set HUBSPOT_PIPELINE_STAGES';
  readonly defaultPipeline = 'default';
  private readonly overrides: PipelineOverrides;

  constructor(
    private readonly client: HubspotClient,
    private readonly config: AppConfig,
  ) {
    super();
    this.overrides = config.env.HUBSPOT_PIPELINE_STAGES ?? {};
  }

  configured(): boolean {
    return this.config.hubspotConfigured;
  }

  async readDeal(crmDealId: string): Promise<CrmDeal | null> {
    const snapshot = await this.client.getDeal(crmDealId);
    return snapshot ? crmDealOf(snapshot) : null;
  }

  stageTarget(pipeline: string | null | undefined, stageId: string): CrmTarget | undefined {
    return mapCrmStage(pipeline, stageId, this.overrides);
  }

  stageIdFor(pipeline: string | null | undefined, target: CrmTarget): string | undefined {
    return crmStageFor(pipeline, target, this.overrides);
  }

  writeBack(crmDealId: string, values: CrmWriteBack): Promise<void> {
    const properties: Record<string, string> = {
      closeloop_invoiced_amount: String(values.invoicedAmount),
      closeloop_paid_amount: String(values.paidAmount),
      closeloop_sync_status: values.syncStatus,
    };
    if (values.stageId) properties.dealstage = values.stageId;
    if (values.referral) {
      properties.closeloop_referral_platform = values.referral.platform;
      properties[REFERRAL_ID_PROPERTY] = values.referral.id;
    }
    return this.client.updateDeal(crmDealId, properties);
  }

  addNote(crmDealId: string, body: string, at: Date): Promise<string> {
    return this.client.createNote(crmDealId, body, at);
  }

  findDealsByReferral(referralId: string): Promise<string[]> {
    return this.client.findDealIds(REFERRAL_ID_PROPERTY, referralId);
  }

  createDeal(deal: NewCrmDeal): Promise<string> {
    const properties: Record<string, string> = {
      dealname: deal.name,
      pipeline: deal.pipeline,
      closeloop_referral_platform: deal.referral.platform,
      [REFERRAL_ID_PROPERTY]: deal.referral.id,
      deal_currency_code: deal.currency.toUpperCase(),
    };
    if (deal.stageId) properties.dealstage = deal.stageId;
    if (deal.amount !== undefined) properties.amount = deal.amount;
    return this.client.createDeal(properties);
  }
}

/** A HubSpot deal (properties, associated contact and company) in the hub's words. */
export function crmDealOf(s: CrmDealSnapshot): CrmDeal {
  const p = s.properties;
  const platform = p.closeloop_referral_platform;
  const referralId = p.closeloop_referral_id;
  return {
    id: s.id,
    name: p.dealname,
    amount: p.amount,
    currency: p.deal_currency_code,
    pipeline: p.pipeline,
    stageId: p.dealstage,
    billingPlan: p.closeloop_billing_plan,
    referral: platform && referralId ? { platform, id: referralId } : null,
    contact: s.contact
      ? {
          email: s.contact.email,
          firstName: s.contact.firstname,
          lastName: s.contact.lastname,
          phone: s.contact.phone,
        }
      : null,
    companyName: s.company?.name,
    companyAddress: s.company
      ? {
          line1: s.company.address,
          line2: s.company.address2,
          city: s.company.city,
          state: s.company.state,
          postalCode: s.company.zip,
          country: s.company.country,
        }
      : null,
    // HubSpot's closedate is a date-time (e.g. 2026-12-01T00:00:00Z): the lifecycle takes its date
    // in the deal's time zone.
    closeDate: p.closedate,
    description: p.description,
    cosell: hubspotBoolean(p.closeloop_cosell),
  };
}

/** A HubSpot single checkbox (booleancheckbox) property: the string "true" or "false", or unset. */
export function hubspotBoolean(value: string | null | undefined): boolean {
  return typeof value === 'string' && value.trim().toLowerCase() === 'true';
}
