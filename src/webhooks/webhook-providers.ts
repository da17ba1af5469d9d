import { Inject, Injectable } from '@nestjs/common';

import { AppConfig } from '../config/app-config';
import { WEBHOOK_SOURCES, WebhookSource } from '../config/providers';
import { WEBHOOK_DOOR_ADAPTERS, WebhookProvider } from '../ports/webhook-door.port';
import { GenericReferralWebhook } from './providers/generic-referral.webhook';
import { MilestonesWebhook } from './providers/milestones.webhook';

/**
 * One WebhookProvider per source of the provider registry (config/providers.ts): the providers'
 * doors come from their adapters (ConnectorsModule's WEBHOOK_DOOR_ADAPTERS), the hub's own
 * Standard Webhooks doors (milestones, generic referrals) from here. The api uses verify/identify,
 * the worker normalize. A registry source without a door stops start-up.
 */
@Injectable()
export class WebhookProviders {
  private readonly bySource: Record<WebhookSource, WebhookProvider>;

  constructor(config: AppConfig, @Inject(WEBHOOK_DOOR_ADAPTERS) adapters: WebhookProvider[]) {
    const doors = [...adapters, new MilestonesWebhook(config), new GenericReferralWebhook(config)];
    const bySource = Object.fromEntries(doors.map((d) => [d.source, d]));
    const missing = WEBHOOK_SOURCES.filter((s) => !bySource[s]);
    if (missing.length > 0) throw new Error(`no webhook door for ${missing.join(', ')}`);
    this.bySource = bySource as Record<WebhookSource, WebhookProvider>;
  }

  get(source: WebhookSource): WebhookProvider {
    return this.bySource[source];
  }
}
