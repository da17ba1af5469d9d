import { Body, Controller, HttpCode, Param, Post, Req, UseGuards } from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiOperation,
  ApiParam,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';

import { AuthGuard, AuthedRequest, RequireRole } from './auth.guard';
import { DealLossService, lossDecisionBody } from './deal-loss.service';
import { ApiAuthErrors, ApiError, DEAL_DETAIL_EXAMPLE } from './deals.openapi';
import { parseInput } from './parse-query';

const DEAL_ID = { name: 'id', description: 'hub deal id (cl_deal_…)' };
const NOTE_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: { note: { type: 'string', maxLength: 2000, description: 'why, for the record' } },
};

/**
 * A loss proposed from the manual queue (PRONI まだ未定 → 失注): confirm or dismiss it (finance and
 * admin, like the reports' transitions: CONTRACT §6).
 */
@ApiTags('deals')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Controller('api')
export class DealLossController {
  constructor(private readonly loss: DealLossService) {}

  @Post('deals/:id/loss/confirm')
  @HttpCode(200)
  @RequireRole('finance')
  @ApiOperation({
    summary: 'Confirm the loss proposed from the manual queue (まだ未定: 失注)',
    description:
      'The deal becomes LOST (from any open stage, or from WON while it has no invoice) and the lost report (失注報告) follows; its confirmed-amount tasks still waiting for an invoice, and the tasks postponed as lost, leave the queue as NOT_APPLICABLE. The proposal is cleared. Audited and written on the deal’s timeline.',
  })
  @ApiParam(DEAL_ID)
  @ApiBody({ schema: NOTE_SCHEMA, required: false })
  @ApiResponse({
    status: 200,
    description: 'The deal after the change',
    schema: { example: { ...DEAL_DETAIL_EXAMPLE, stage: 'LOST', lossProposal: null } },
  })
  @ApiError(404, 'NOT_FOUND', 'deal cl_deal_… not found')
  @ApiError(
    409,
    'LOSS_REFUSED',
    'deal cl_deal_…: the loss cannot be confirmed: the deal is WON and has invoices: a deal with invoices is not lost (invoice CL-0001 is POSTED)',
    'LOSS_REFUSED: the deal has invoices or is delivered; NO_LOSS_PROPOSED: no loss is proposed',
  )
  @ApiAuthErrors('finance')
  confirm(@Param('id') id: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    return this.loss.confirm(id, parseInput(lossDecisionBody, body), req.actor, String(req.id));
  }

  @Post('deals/:id/loss/dismiss')
  @HttpCode(200)
  @RequireRole('finance')
  @ApiOperation({
    summary: 'Dismiss the loss proposed from the manual queue (まだ未定: 失注)',
    description:
      'The proposal is cleared and the tasks postponed as lost are owed again, due as before. Audited and written on the deal’s timeline.',
  })
  @ApiParam(DEAL_ID)
  @ApiBody({ schema: NOTE_SCHEMA, required: false })
  @ApiResponse({
    status: 200,
    description: 'The deal after the change',
    schema: { example: { ...DEAL_DETAIL_EXAMPLE, lossProposal: null } },
  })
  @ApiError(404, 'NOT_FOUND', 'deal cl_deal_… not found')
  @ApiError(
    409,
    'NO_LOSS_PROPOSED',
    'deal cl_deal_… (WON) has no proposed loss to dismiss: a loss is proposed by postponing one of its manual reports with reason lost (まだ未定: 失注)',
  )
  @ApiAuthErrors('finance')
  dismiss(@Param('id') id: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    return this.loss.dismiss(id, parseInput(lossDecisionBody, body), req.actor, String(req.id));
  }
}
