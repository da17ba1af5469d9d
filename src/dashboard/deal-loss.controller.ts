import { Controller, Param, Post, Req, Res, UseFilters, UseGuards } from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { FastifyReply } from 'fastify';

import { DealLossService, lossDecisionBody } from '../admin/deal-loss.service';
import { parseInput } from '../admin/parse-query';
import { DashboardExceptionFilter } from './dashboard.filter';
import { DashboardGuard, DashboardRequest, DashboardRole } from './dashboard.guard';

/**
 * The deal page's answer to a loss proposed from the manual queue (まだ未定: 失注): confirm or
 * dismiss it through the admin API's own service (finance and admin; CSRF checked by the guard).
 * Back to the deal page (303); a refusal is the error page with its reason.
 */
@ApiExcludeController()
@UseGuards(DashboardGuard)
@UseFilters(DashboardExceptionFilter)
@Controller('dashboard')
export class DealLossPageController {
  constructor(private readonly loss: DealLossService) {}

  @Post('deals/:id/loss/confirm')
  @DashboardRole('finance')
  confirm(@Req() req: DashboardRequest, @Param('id') id: string, @Res() reply: FastifyReply) {
    return this.decide(req, reply, id, 'confirm');
  }

  @Post('deals/:id/loss/dismiss')
  @DashboardRole('finance')
  dismiss(@Req() req: DashboardRequest, @Param('id') id: string, @Res() reply: FastifyReply) {
    return this.decide(req, reply, id, 'dismiss');
  }

  private async decide(
    req: DashboardRequest,
    reply: FastifyReply,
    id: string,
    what: 'confirm' | 'dismiss',
  ) {
    const note = (req.body as Record<string, unknown> | undefined)?.note;
    const body = parseInput(
      lossDecisionBody,
      typeof note === 'string' && note.trim() !== '' ? { note } : {},
    );
    await this.loss[what](id, body, req.dashboard!.actor, String(req.id));
    return reply.redirect(`/dashboard/deals/${encodeURIComponent(id)}`, 303);
  }
}
