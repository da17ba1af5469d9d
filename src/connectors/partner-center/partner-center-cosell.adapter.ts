import { Injectable } from '@nestjs/common';

import { AppConfig } from '../../config/app-config';
import {
  OutboundReferral,
  OutboundReferralPort,
  PlatformReferral,
} from '../../ports/referral-platform.port';
import { cosellReferralBody, missingCosellFields } from './partner-center-cosell.mapper';
import { platformReferralOf } from './partner-center-referral.source';
import { PartnerCenterClient } from './partner-center.client';

/**
 * Partner Center co-sell out (CONTRACT §5; docs/decisions/0014): creates the outbound referral of a
 * CRM deal (`POST /v1.0/engagements/referrals`, type Shared, the CRM deal id as
 * externalReferenceId) and finds the ones an earlier attempt created by that id
 * (`$filter=externalReferenceId eq '…'`).
 */
@Injectable()
export class PartnerCenterCosellAdapter extends OutboundReferralPort {
  readonly platform = 'partner-center';

  constructor(
    private readonly client: PartnerCenterClient,
    private readonly config: AppConfig,
  ) {
    super();
  }

  configured(): boolean {
    return this.config.partnerCenterConfigured;
  }

  missing(referral: OutboundReferral): string[] {
    return missingCosellFields(referral);
  }

  async findByExternalReference(externalReference: string): Promise<PlatformReferral[]> {
    const found = await this.client.findReferralsByExternalReference(externalReference);
    // The filter is Partner Center's; the id is checked here as well, so a filter it ignored
    // can never adopt another deal's referral.
    return found
      .filter((r) => r.externalReferenceId === externalReference)
      .map((r) => platformReferralOf(r));
  }

  async create(referral: OutboundReferral): Promise<PlatformReferral> {
    return platformReferralOf(await this.client.createReferral(cosellReferralBody(referral)));
  }
}
