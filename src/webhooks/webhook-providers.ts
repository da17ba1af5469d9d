import { Injectable } from '@nestjs/common';

import { AppConfig, WebhookSource } from '../config/app-config';
import { DocusignWebhook } from './providers/docusign.webhook';
import { GenericReferralWebhook } from './providers/generic-referral.webhook';
import { HubspotWebhook } from './providers/hubspot.webhook';
import { MilestonesWebhook } from './providers/milestones.webhook';
import { PartnerCenterWebhook } from './providers/partner-center.webhook';
import { StripeWebhook } from './providers/stripe.webhook';
import { WebhookProvider } from './webhook.types';

/** One WebhookProvider per source: the api uses verify/identify, the worker normalize. */
@Injectable()
export class WebhookProviders {
  private readonly bySource: Record<WebhookSource, WebhookProvider>;

  constructor(config: AppConfig) {
    this.bySource = {
      docusign: new DocusignWebhook(config),
      hubspot: new HubspotWebhook(config),
      stripe: new StripeWebhook(config),
      milestones: new MilestonesWebhook(config),
      'partner-center': new PartnerCenterWebhook(config),
      generic: new GenericReferralWebhook(config),
    };
  }

  get(source: WebhookSource): WebhookProvider {
    return this.bySource[source];
  }
}
