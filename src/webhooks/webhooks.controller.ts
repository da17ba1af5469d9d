import { Controller, HttpCode, NotFoundException, Param, Post, Req } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { FastifyRequest } from 'fastify';

import { WEBHOOK_DOORS, WebhookSource } from '../config/providers';
import { WebhookIngressService } from './webhook-ingress.service';

/** The referral doors of the provider registry, by their path segment. */
const REFERRAL_PLATFORMS: Record<string, WebhookSource> = Object.fromEntries(
  Object.values(WEBHOOK_DOORS)
    .filter((door) => door.referralDoor)
    .map((door) => [door.source, door.source]),
);

/**
 * The webhook door (CONTRACT §3): verify on the raw bytes, store, answer. 2xx means committed to
 * Postgres; processing happens in the worker.
 */
@ApiExcludeController()
@Controller('webhooks')
export class WebhooksController {
  constructor(private readonly ingress: WebhookIngressService) {}

  @Post('docusign')
  @HttpCode(200)
  docusign(@Req() req: FastifyRequest) {
    return this.ingress.receive('docusign', req);
  }

  @Post('hubspot')
  @HttpCode(200)
  hubspot(@Req() req: FastifyRequest) {
    return this.ingress.receive('hubspot', req);
  }

  @Post('stripe')
  @HttpCode(200)
  stripe(@Req() req: FastifyRequest) {
    return this.ingress.receive('stripe', req);
  }

  @Post('milestones')
  @HttpCode(200)
  milestones(@Req() req: FastifyRequest) {
    return this.ingress.receive('milestones', req);
  }

  @Post('referrals/:platform')
  @HttpCode(200)
  referrals(@Param('platform') platform: string, @Req() req: FastifyRequest) {
    const source = REFERRAL_PLATFORMS[platform];
    if (!source) throw new NotFoundException(`unknown referral platform "${platform}"`);
    return this.ingress.receive(source, req);
  }
}
