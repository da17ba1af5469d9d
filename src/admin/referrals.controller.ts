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
import { ReferralAnswer, canonicalPlatform } from '../domain/platforms';
import { Prisma, Referral, ReferralState } from '../generated/prisma/client';
import { ReferralService } from '../lifecycle/referral.service';
import { dbAmount } from '../prisma/db-amount';
import { PrismaService } from '../prisma/prisma.service';
import { AuditService } from './audit.service';
import { AuthGuard, AuthedRequest, RequireRole } from './auth.guard';
import { ApiAuthErrors, ApiError } from './deals.openapi';
import { page, pageQuery } from './pagination';
import { parseInput } from './parse-query';

const REFERRAL_STATES = [
  'OPEN',
  'IN_EVALUATION',
  'ACCEPTED',
  'DECLINED',
  'SKIPPED',
  'EXPIRED',
  'FAILED',
  'CLOSED',
] as const satisfies readonly ReferralState[];

const referralsQuery = pageQuery.extend({
  state: z.enum(REFERRAL_STATES).optional(),
  platform: z.string().trim().min(1).optional(),
});
const reasonBody = z
  .strictObject({ reason: z.string().trim().min(1).max(500).optional() })
  .optional()
  .default({});
const noBody = z.strictObject({}).optional().default({});

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
  platformState: 'New/Pending',
  statusReason: null,
  direction: 'inbound',
  respondBy: '2026-11-26T08:00:00.000Z',
  clockRule: 'default-new-72h',
  receivedAt: '2026-11-23T08:00:00.000Z',
  respondedAt: null,
  expiredAt: null,
};

/**
 * Referrals and the vendor's answer (CONTRACT §3.5, §6): accept and decline, and Partner Center's
 * evaluate ("interested": in evaluation, its 7-day window) and skip ("not interested"); each
 * answer is told to the platform through the report service (docs/decisions/0013).
 */
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
      ...(q.platform ? { platform: canonicalPlatform(q.platform) } : {}),
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
      "Stops its response clock and moves the deal from REFERRED to APPOINTMENT; the platform is told through the report service (Partner Center: Active/Accepted with /details/dealValue — the deal's amount, else the referral's estimated value — and /details/closingDateTime when the deal's close date is known). From OPEN or IN_EVALUATION; accepting twice changes nothing.",
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
      'From OPEN or IN_EVALUATION, only while the deal is still REFERRED. The deal becomes DECLINED; the platform is told (Partner Center: Closed/Declined with the reason as /statusReason, "Declined by the vendor" without one). A later CRM stage or signature still moves the deal on, with nothing more reported to the platform.',
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
    const { reason } = parseInput(reasonBody, body);
    return this.answer(id, 'decline', req, reason);
  }

  @Post(':id/evaluate')
  @HttpCode(200)
  @RequireRole('admin')
  @ApiOperation({
    summary: 'Evaluate a referral (interested)',
    description:
      'Partner Center\'s "I\'m interested": the referral is IN_EVALUATION and its 7-day window starts (accept or decline it before the window ends, or it expires); the deal stays REFERRED. Partner Center is told New/Received. Only for a new (OPEN) referral of a platform that offers it; evaluating twice changes nothing.',
  })
  @ApiParam({ name: 'id', description: 'hub referral id (ref_…)' })
  @ApiResponse({ status: 200, description: 'The referral', schema: { example: REFERRAL_EXAMPLE } })
  @ApiError(404, 'NOT_FOUND', 'referral ref_… not found')
  @ApiError(
    409,
    'REFERRAL_ANSWERED',
    'referral ref_… is ACCEPTED: it can no longer be in evaluation',
  )
  @ApiError(
    409,
    'REFERRAL_ANSWER_NOT_OFFERED',
    'PRONI Aimitsu does not take "evaluate": its referrals are answered by accept, decline',
  )
  @ApiAuthErrors('admin')
  evaluate(@Param('id') id: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    parseInput(noBody, body);
    return this.answer(id, 'evaluate', req);
  }

  @Post(':id/skip')
  @HttpCode(200)
  @RequireRole('admin')
  @ApiOperation({
    summary: 'Skip a referral (not interested)',
    description:
      'Partner Center\'s "No thanks": the referral is SKIPPED and the deal DECLINED; Partner Center is told Closed/Declined with the statusReason "Not interested (skipped)" (and the reason given). Only for a new (OPEN) referral of a platform that offers it; skipping twice changes nothing.',
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
    'referral ref_… is IN_EVALUATION: it can no longer be skipped',
  )
  @ApiError(
    409,
    'REFERRAL_ANSWER_NOT_OFFERED',
    'PRONI Aimitsu does not take "skip": its referrals are answered by accept, decline',
  )
  @ApiAuthErrors('admin')
  skip(@Param('id') id: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    const { reason } = parseInput(reasonBody, body);
    return this.answer(id, 'skip', req, reason);
  }

  private async answer(id: string, answer: ReferralAnswer, req: AuthedRequest, reason?: string) {
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
    /** The referral's state on its platform, in the platform's words (Partner Center status/substatus). */
    platformState: platformStateOf(r),
    /** Why it closed or was answered so, as last read from or sent to the platform (statusReason). */
    statusReason: r.statusReason,
    direction: r.direction,
    /** null when no response clock runs (CONTRACT §6). */
    respondBy: r.respondBy,
    clockRule: r.clockRule,
    receivedAt: r.receivedAt,
    respondedAt: r.respondedAt,
    expiredAt: r.expiredAt,
    declineReason: r.declineReason,
  };
}

/** `status/substatus` as the platform last said (or was told), e.g. `New/Received`; null when unknown. */
export function platformStateOf(
  r: Pick<Referral, 'platformStatus' | 'platformSubstatus'>,
): string | null {
  if (!r.platformStatus) return null;
  return r.platformSubstatus ? `${r.platformStatus}/${r.platformSubstatus}` : r.platformStatus;
}
