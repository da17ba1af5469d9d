import {
  Body,
  Controller,
  Get,
  Headers,
  HttpCode,
  Param,
  Post,
  Put,
  Query,
  Req,
  Res,
  UseGuards,
} from '@nestjs/common';
import {
  ApiBearerAuth,
  ApiBody,
  ApiHeader,
  ApiOperation,
  ApiParam,
  ApiProduces,
  ApiQuery,
  ApiResponse,
  ApiTags,
} from '@nestjs/swagger';
import { FastifyReply } from 'fastify';
import { z } from 'zod';

import { AuthGuard, AuthedRequest, RequireRole } from './auth.guard';
import { ContractDocumentsService, contractDocumentHeaders } from './contract-documents.service';
import {
  ApiAuthErrors,
  ApiContractDocument,
  ApiError,
  CREATE_DEAL_SCHEMA,
  DEAL_ATTENTION_EXAMPLE,
  DEAL_DETAIL_EXAMPLE,
  DEAL_LIST_EXAMPLE,
  PLAN_SCHEMA,
  RECONCILIATION_EXAMPLE,
} from './deals.openapi';
import { DealsService, createDealBody, dealsQuery, idempotencyKeyHeader } from './deals.service';
import { parseInput } from './parse-query';
import {
  CSV_HEADER,
  ReconciliationService,
  reconciliationPageQuery,
} from './reconciliation.service';
import { DEAL_STAGES } from '../domain/deal-stage';
import { EnvelopeDocumentKind } from '../ports/e-signature.port';

const reconciliationQuery = reconciliationPageQuery.extend({
  format: z.enum(['json', 'csv']).default('json'),
});
const rebillQuery = z.object({ period: z.string().trim().min(1).max(40).optional() });

/** Deals, billing plans, re-bills and reconciliation (CONTRACT §6). */
@ApiTags('deals')
@ApiBearerAuth()
@UseGuards(AuthGuard)
@Controller('api')
export class DealsController {
  constructor(
    private readonly deals: DealsService,
    private readonly reconciliation: ReconciliationService,
    private readonly documents: ContractDocumentsService,
  ) {}

  @Get('deals')
  @RequireRole('viewer')
  @ApiOperation({
    summary: 'List deals, newest first',
    description:
      '`q` finds a deal by any of its ids: hub id, CRM deal id, DocuSign envelope id, Stripe invoice id or number, referral id. Paginated: pass `nextCursor` as `cursor`. ' +
      '`attention=true` lists only the deals that need a person, each with `attention: [{ reason, since, detail }]`: `not_billable` (WON, DELIVERED or CLOSED without a valid billing plan: none, or the plan was refused; detail is the reason) and `due_not_issued` (an invoice the hub owes that Stripe has not received: PENDING, CREATING or CREATED and untouched for longer than RECOVERY_GRACE_MS, or its billing job an open dead letter; detail names the billing key, the item and the last error, with `billingKey` and `itemKey`). It combines with `stage`, `limit` and `cursor`.',
  })
  @ApiQuery({
    name: 'attention',
    required: false,
    enum: ['true', 'false'],
    description: 'only the deals that need a person, with their reasons',
  })
  @ApiQuery({ name: 'stage', required: false, enum: DEAL_STAGES })
  @ApiQuery({ name: 'crmDealId', required: false, type: String })
  @ApiQuery({ name: 'referralId', required: false, type: String })
  @ApiQuery({ name: 'q', required: false, type: String, description: 'any id of the deal' })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1–200, default 50' })
  @ApiQuery({ name: 'cursor', required: false, type: String })
  @ApiResponse({
    status: 200,
    description: 'A page of deals (with `attention=true`: each with its `attention` reasons)',
    content: {
      'application/json': {
        examples: {
          deals: { value: DEAL_LIST_EXAMPLE },
          attention: { summary: 'attention=true', value: DEAL_ATTENTION_EXAMPLE },
        },
      },
    },
  })
  @ApiError(400, 'VALIDATION_FAILED', 'stage: Invalid option: expected one of …')
  @ApiAuthErrors('viewer')
  list(@Query() query: unknown) {
    return this.deals.list(parseInput(dealsQuery, query));
  }

  @Get('deals/:id')
  @RequireRole('viewer')
  @ApiOperation({
    summary:
      'One deal: plan, items with billing status and Stripe invoices, contract, timeline, events',
  })
  @ApiParam({ name: 'id', description: 'hub deal id (cl_deal_…)' })
  @ApiResponse({ status: 200, description: 'The deal', schema: { example: DEAL_DETAIL_EXAMPLE } })
  @ApiError(404, 'NOT_FOUND', 'deal cl_deal_… not found')
  @ApiAuthErrors('viewer')
  get(@Param('id') id: string) {
    return this.deals.get(id);
  }

  @Get('deals/:id/contract/document')
  @RequireRole('viewer')
  @ApiOperation({
    summary: "The deal's signed contract as one PDF, with its certificate of completion",
    description:
      'Read from the e-signature tool (DocuSign `documents/combined?certificate=true`) on each request, byte for byte; the hub keeps no copy. What PRONI アイミツ accepts as the 確定報告 attachment when there is no invoice. Only for a COMPLETED contract.',
  })
  @ApiParam({ name: 'id', description: 'hub deal id (cl_deal_…)' })
  @ApiContractDocument('contract')
  @ApiAuthErrors('viewer')
  contractDocument(@Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply) {
    return this.sendDocument(id, 'combined', reply);
  }

  @Get('deals/:id/contract/certificate')
  @RequireRole('viewer')
  @ApiOperation({
    summary: "The certificate of completion (締結証明書) of the deal's signed contract, as PDF",
    description:
      'Read from the e-signature tool (DocuSign `documents/certificate`) on each request, byte for byte. Only for a COMPLETED contract.',
  })
  @ApiParam({ name: 'id', description: 'hub deal id (cl_deal_…)' })
  @ApiContractDocument('certificate')
  @ApiAuthErrors('viewer')
  contractCertificate(@Param('id') id: string, @Res({ passthrough: true }) reply: FastifyReply) {
    return this.sendDocument(id, 'certificate', reply);
  }

  private async sendDocument(id: string, kind: EnvelopeDocumentKind, reply: FastifyReply) {
    const doc = await this.documents.document(id, kind);
    void reply.headers(contractDocumentHeaders(doc));
    return doc.bytes;
  }

  @Post('deals')
  @HttpCode(201)
  @RequireRole('admin')
  @ApiOperation({
    summary: 'Create a deal (honours Idempotency-Key)',
    description:
      'Creates the deal, applies its billing plan, records the initial stage and bills what is due, in one transaction. With `Idempotency-Key`, a repeat with the same body answers the stored reply with `Idempotent-Replayed: true` and creates nothing; the same key with another body answers 422.',
  })
  @ApiHeader({ name: 'Idempotency-Key', required: false, description: 'up to 255 characters' })
  @ApiBody({ schema: CREATE_DEAL_SCHEMA })
  @ApiResponse({
    status: 201,
    description: 'Created (or the stored reply of an earlier request with the same key)',
    schema: { example: DEAL_DETAIL_EXAMPLE },
  })
  @ApiResponse({
    status: 400,
    description:
      'Invalid body (VALIDATION_FAILED) or billing plan (INVALID_BILLING_PLAN, every error in details); nothing is created',
    schema: {
      example: {
        error: {
          code: 'INVALID_BILLING_PLAN',
          message: 'billing plan refused: items[0].percent: must be between 0 and 100',
          details: ['items[0].percent: must be between 0 and 100'],
        },
      },
    },
  })
  @ApiError(409, 'DEAL_EXISTS', 'a deal with CRM id 12345 already exists')
  @ApiError(
    422,
    'IDEMPOTENCY_KEY_REUSED',
    'Idempotency-Key "k1" was already used with a different request body',
  )
  @ApiAuthErrors('admin')
  async create(
    @Body() body: unknown,
    @Headers('idempotency-key') idempotencyKey: string | undefined,
    @Req() req: AuthedRequest,
    @Res({ passthrough: true }) reply: FastifyReply,
  ) {
    const input = parseInput(createDealBody, body);
    const key =
      idempotencyKey === undefined ? undefined : parseInput(idempotencyKeyHeader, idempotencyKey);
    const result = await this.deals.create(input, body, key, req.actor, String(req.id));
    void reply.status(result.status);
    if (result.replayed) void reply.header('Idempotent-Replayed', 'true');
    return result.body;
  }

  @Put('deals/:id/billing-plan')
  @RequireRole('admin')
  @ApiOperation({
    summary: "Replace a deal's billing plan",
    description:
      'Items are matched by key: facts already recorded on an item survive, an invoiced item keeps its invoiced amount. A monthly fee changes its amount from a month on (`monthly.changes`) and ends early (`monthly.endMonth`); months already invoiced never change (a plan that would change one is refused), and each change or end is reported to the referral platform once. Bills what the new plan makes due. A refused plan changes nothing.',
  })
  @ApiParam({ name: 'id', description: 'hub deal id' })
  @ApiBody({ schema: PLAN_SCHEMA })
  @ApiResponse({
    status: 200,
    description: 'The deal after the change',
    schema: { example: DEAL_DETAIL_EXAMPLE },
  })
  @ApiError(400, 'INVALID_BILLING_PLAN', 'billing plan refused: currency: required')
  @ApiError(404, 'NOT_FOUND', 'deal cl_deal_… not found')
  @ApiAuthErrors('admin')
  replacePlan(@Param('id') id: string, @Body() body: unknown, @Req() req: AuthedRequest) {
    return this.deals.replacePlan(id, body, req.actor, String(req.id));
  }

  @Post('deals/:id/items/:key/rebill')
  @HttpCode(202)
  @RequireRole('admin')
  @ApiOperation({
    summary: 'Re-bill an item whose latest invoice is void or uncollectible',
    description:
      'The only way a voided item is billed again (CONTRACT §4): a new billing key `…|r<n>`, issued once. `period` picks the month (YYYY-MM) or progress step (p<percent>) of monthly and progress items.',
  })
  @ApiParam({ name: 'id', description: 'hub deal id' })
  @ApiParam({ name: 'key', description: 'item key' })
  @ApiQuery({ name: 'period', required: false, type: String })
  @ApiResponse({
    status: 202,
    description: 'Re-bill accepted; the invoice is issued by the worker',
    schema: {
      example: { billingKey: 'cl_deal_…|deposit|r1', replaces: 'cl_deal_…|deposit' },
    },
  })
  @ApiError(404, 'NOT_FOUND', 'item deposit of deal cl_deal_… not found')
  @ApiError(
    409,
    'NOT_VOID',
    'item deposit is INVOICE_POSTED (invoice ABCD-0001 is POSTED): only an item whose latest invoice is void or uncollectible can be re-billed',
  )
  @ApiAuthErrors('admin')
  rebill(
    @Param('id') id: string,
    @Param('key') key: string,
    @Query() query: unknown,
    @Req() req: AuthedRequest,
  ) {
    const { period } = parseInput(rebillQuery, query);
    return this.deals.rebill(id, key, period, req.actor, String(req.id));
  }

  @Get('reconciliation')
  @RequireRole('finance')
  @ApiOperation({
    summary: 'Reconcile the hub with Stripe, per deal, one page at a time',
    description:
      'Per deal with a plan or invoices: contracted, invoiced in the hub, invoiced in Stripe (read from Stripe), paid, reported, and every mismatch (missing_invoice, duplicate_invoice, amount_differs, unknown_invoice, status_differs, invoiced_not_reported, reported_amount_differs, reported_but_voided, due_not_issued: an invoice the hub owes that Stripe has not received, open and untouched for longer than RECOVERY_GRACE_MS or its billing job an open dead letter). ' +
      'Paginated, newest first: `limit` deals (default 50, at most 200) per page, only those read from Stripe, at STRIPE_RECONCILIATION_RATE_PER_SEC; pass `nextCursor` as `cursor` for the next page. `summary` counts the page. `dealId` reconciles that deal alone. ' +
      '`format=csv` answers text/csv with the columns ' +
      CSV_HEADER.join(', ') +
      ': every deal from `cursor` on (or `dealId`), streamed page by page (`limit` per page), newest first. A CSV that fails after its first page is cut off (no end of the chunked body), never ended as if whole.',
  })
  @ApiQuery({ name: 'format', required: false, enum: ['json', 'csv'] })
  @ApiQuery({ name: 'dealId', required: false, type: String })
  @ApiQuery({ name: 'limit', required: false, type: Number, description: '1–200, default 50' })
  @ApiQuery({ name: 'cursor', required: false, type: String })
  @ApiProduces('application/json', 'text/csv')
  @ApiResponse({
    status: 200,
    description: 'A page of the reconciliation (or the CSV)',
    schema: { example: RECONCILIATION_EXAMPLE },
  })
  @ApiError(400, 'VALIDATION_FAILED', 'limit: Too big: expected number to be <=200')
  @ApiError(404, 'NOT_FOUND', 'deal cl_deal_… not found')
  @ApiError(502, 'STRIPE_UNAVAILABLE', 'could not read Stripe: stripe 500 api_error: …')
  @ApiError(503, 'STRIPE_NOT_CONFIGURED', 'reconciliation reads Stripe: set STRIPE_SECRET_KEY')
  @ApiAuthErrors('finance')
  async reconcile(@Query() query: unknown, @Res({ passthrough: true }) reply: FastifyReply) {
    const { format, ...q } = parseInput(reconciliationQuery, query);
    if (format === 'json') return this.reconciliation.report(q);
    const { generatedAt, body } = await this.reconciliation.csv(q);
    void reply
      .header('content-type', 'text/csv; charset=utf-8')
      .header(
        'content-disposition',
        `attachment; filename="reconciliation-${generatedAt.replace(/[:.]/g, '-')}.csv"`,
      );
    return body;
  }
}
