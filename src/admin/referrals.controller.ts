import {
  Body,
  Controller,
  Get,
  HttpCode,
  HttpStatus,
  Param,
  Post,
  Query,
  Req,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiOperation,
  ApiParam,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import { z } from 'zod';

import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';
import { Prisma, Referral } from '../generated/prisma/client';
import { ReferralService } from '../lifecycle/referral.service';
import { dbAmount } from '../prisma/db-amount';
import { PrismaService } from '../prisma/prisma.service';
import { AuditService } from './audit.service';
import { AuthGuard, AuthedRequest, RequireRole } from './auth.guard';
import { ApiAuthErrors, ApiError } from './deals.openapi';
import { page, pageQuery } from './pagination';
import { parseInput } from './parse-query';

const REFERRAL_STATES = ['OPEN', 'ACCEPTED', 'DECLINED', 'EXPIRED', 'CLOSED'] as const;

const referralsQuery = pageQuery.extend({
  state: z.enum(REFERRAL_STATES).optional(),
  platform: z.string().trim().min(1).optional(),
});
const declineBody = z
  .object({ reason: z.string().trim().min(1).max(500).optional() })
  .optional()
  .default({});

const REFERRAL_EXAMPLE = {
  id: 'ref_019ab…',
  platform: 'partner-center',
  referralId: '7f6e5d4c-…',
  dealId: 'cl_deal_019ab…',
  state: 'OPEN',
  title: 'Contoso ERP rollout',
  customerName: 'Contoso KK',
  estimatedValue: 3000000,
  currency: 'jpy',
  platformStatus: 'New',
  platformSubstatus: 'Pending',
  respondBy: '2026-11-26T08:00:00.000Z',
  clockRule: 'default-new-72h',
  receivedAt: '2026-11-23T08:00:00.000Z',
  respondedAt: null,
  expiredAt: null,
};

/** Inbound referrals and the vendor's answer (CONTRACT §3.5; accept/decline update the platform). */
@ApiTags('referrals')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Controller('api/referrals')
export class ReferralsController {
  constructor(
    private readonly prisma: PrismaService,
    private readonly referrals: ReferralService,
    private readonly audit: AuditService,
  ) {}

  @Get()
  @RequireRole('viewer')
  @ApiOperation({
    summary: 'List referrals',
    description: 'Open ones first by deadline, then the rest newest first. Paginated by `cursor`.',
  })
  @ApiQuery({ name: 'state', required: false, enum: REFERRAL_STATES })
  @ApiQuery({ name: 'platform', required: false, type: String })
  @ApiQuery({ name: 'limit', required: false, type: Number })
  @ApiQuery({ name: 'cursor', required: false, type: String })
  @ApiResponse({
    status: 200,
    description: 'A page of referrals',
    schema: { example: { items: [REFERRAL_EXAMPLE], nextCursor: null } },
  })
  @ApiAuthErrors('viewer')
  async list(@Query() query: unknown) {
    const q = parseInput(referralsQuery, query);
    const where: Prisma.ReferralWhereInput = {
      ...(q.state ? { state: q.state } : {}),
      ...(q.platform ? { platform: q.platform } : {}),
      ...(q.cursor ? { id: { lt: q.cursor } } : {}),
    };
    const rows = await this.prisma.referral.findMany({
      where,
      orderBy: { id: 'desc' },
      take: q.limit + 1,
    });
    const result = page(rows, q.limit);
    return { items: result.items.map(view), nextCursor: result.nextCursor };
  }

  @Get(':id')
  @RequireRole('viewer')
  @ApiOperation({ summary: 'One referral with its last platform snapshot' })
  @ApiParam({ name: 'id', description: 'hub referral id (ref_…)' })
  @ApiResponse({ status: 200, description: 'The referral', schema: { example: REFERRAL_EXAMPLE } })
  @ApiError(404, 'NOT_FOUND', 'referral ref_… not found')
  @ApiAuthErrors('viewer')
  async get(@Param('id') id: string) {
    const row = await this.prisma.referral.findUnique({ where: { id } });
    if (!row) {
      throw new DomainException(
        HttpStatus.NOT_FOUND,
        CommonErrorCode.NotFound,
        `referral ${id} not found`,
      );
    }
    return { ...view(row), snapshot: row.snapshot };
  }

  @Post(':id/accept')
  @HttpCode(200)
  @RequireRole('admin')
  @ApiOperation({
    summary: 'Accept a referral',
    description:
      'Stops its response clock and moves the deal from REFERRED to APPOINTMENT; the platform is told through the report service (Partner Center: Active/Accepted). Accepting twice changes nothing.',
  })
  @ApiParam({ name: 'id', description: 'hub referral id (ref_…)' })
  @ApiResponse({ status: 200, description: 'The referral', schema: { example: REFERRAL_EXAMPLE } })
  @ApiError(404, 'NOT_FOUND', 'referral ref_… not found')
  @ApiError(409, 'REFERRAL_ANSWERED', 'referral ref_… is EXPIRED: it can no longer be accepted')
  @ApiAuthErrors('admin')
  accept(@Param('id') id: string, @Req() req: AuthedRequest) {
    return this.answer(id, 'accept', req);
  }

  @Post(':id/decline')
  @HttpCode(200)
  @RequireRole('admin')
  @ApiOperation({
    summary: 'Decline a referral',
    description:
      'Only while the deal is still REFERRED. The deal becomes DECLINED; the platform is told (Partner Center: Closed/Declined).',
  })
  @ApiParam({ name: 'id', description: 'hub referral id (ref_…)' })
  @ApiBody({
    required: false,
    schema: { type: 'object', properties: { reason: { type: 'string', maxLength: 500 } } },
  })
  @ApiResponse({ status: 200, description: 'The referral', schema: { example: REFERRAL_EXAMPLE } })
  @ApiError(404, 'NOT_FOUND', 'referral ref_… not found')
  @ApiError(
    409,
    'REFERRAL_ANSWERED',
    'the deal is NEGOTIATING: only a referral not yet worked can be declined',
  )
  @ApiAuthErrors('admin')
  decline(@Param('id') id: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    const { reason } = parseInput(declineBody, body);
    return this.answer(id, 'decline', req, reason);
  }

  private async answer(
    id: string,
    answer: 'accept' | 'decline',
    req: AuthedRequest,
    reason?: string,
  ) {
    const { referral, changed } = await this.referrals.respond(id, answer, {
      actor: req.actor?.name ?? 'unknown',
      reason,
      audit: (tx) => this.audit.record(tx, req.actor, `referral.${answer}`, id, { reason }),
    });
    return { ...view(referral), changed };
  }
}

function view(r: Referral) {
  return {
    id: r.id,
    platform: r.platform,
    referralId: r.externalId,
    dealId: r.dealId,
    state: r.state,
    title: r.title,
    customerName: r.customerName,
    customerEmail: r.customerEmail,
    estimatedValue: dbAmount(r.estimatedValue),
    currency: r.currency,
    platformStatus: r.platformStatus,
    platformSubstatus: r.platformSubstatus,
    respondBy: r.respondBy,
    clockRule: r.clockRule,
    receivedAt: r.receivedAt,
    respondedAt: r.respondedAt,
    expiredAt: r.expiredAt,
    declineReason: r.declineReason,
  };
}
