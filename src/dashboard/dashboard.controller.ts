import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

import {
  Controller,
  Get,
  HttpStatus,
  Inject,
  Param,
  Post,
  Query,
  Req,
  Res,
  UseFilters,
  UseGuards,
} from '@nestjs/common';
import { ApiExcludeController } from '@nestjs/swagger';
import { FastifyReply } from 'fastify';

import {
  ContractDocumentsService,
  contractDocumentHeaders,
} from '../admin/contract-documents.service';
import { DealsService, dealsQuery } from '../admin/deals.service';
import { parseInput } from '../admin/parse-query';
import { TokensService } from '../admin/tokens.service';
import { DomainException } from '../common/domain.exception';
import { CommonErrorCode } from '../common/error-code';
import { AppConfig } from '../config/app-config';
import { DEAL_STAGES } from '../domain/deal-stage';
import { EnvelopeDocumentKind } from '../ports/e-signature.port';
import { PrismaService } from '../prisma/prisma.service';
import { REPORT_KIND_LABELS } from '../reporting/report-fields';
import { AuthThrottleService, AuthThrottled } from '../security/auth-throttle.service';
import { explainBilling } from './billing-status';
import { DashboardExceptionFilter, LOGIN_PATH } from './dashboard.filter';
import { DashboardGuard, DashboardPublic, DashboardRequest } from './dashboard.guard';
import { LANG_COOKIE, MessageKey, Params } from './i18n/i18n';
import { OverviewService } from './overview.service';
import { nonEmpty, page, render } from './page';
import {
  DashboardSessionService,
  SESSION_COOKIE,
  SESSION_TTL_MS,
  sameSecret,
} from './session.service';

/** Double-submit cookie of the login form (the only POST without a session). */
const LOGIN_CSRF_COOKIE = 'cl_login';
const COOKIE_PATH = '/dashboard';

const HTMX_JS = readFileSync(require.resolve('htmx.org/dist/htmx.min.js'));
const CSS = readFileSync(join(__dirname, 'views', 'dashboard.css'));
/** The dashboard's own behaviour (copy buttons, confirmations): no inline script under the CSP. */
const DASHBOARD_JS = readFileSync(join(__dirname, 'views', 'dashboard.js'));

/** Only same-dashboard paths: a `next` / `back` parameter can never send the browser elsewhere. */
export function safeDashboardPath(value: unknown, fallback = '/dashboard'): string {
  if (typeof value !== 'string') return fallback;
  return /^\/dashboard(?:[/?#]|$)/.test(value) && !/[\\\r\n]/.test(value) && !value.includes('//')
    ? value
    : fallback;
}

/**
 * The web dashboard (CONTRACT §6, docs/decisions/0006): server-rendered pages over the admin
 * API's services, behind a session started with an admin API token.
 */
@ApiExcludeController()
@UseGuards(DashboardGuard)
@UseFilters(DashboardExceptionFilter)
@Controller('dashboard')
export class DashboardController {
  constructor(
    private readonly sessions: DashboardSessionService,
    @Inject(TokensService) private readonly tokens: TokensService,
    private readonly deals: DealsService,
    private readonly overview: OverviewService,
    private readonly prisma: PrismaService,
    private readonly config: AppConfig,
    private readonly throttle: AuthThrottleService,
    private readonly documents: ContractDocumentsService,
  ) {}

  private get secureCookies(): boolean {
    return this.config.publicBaseUrl.startsWith('https:');
  }

  private cookieOptions(maxAgeMs?: number) {
    return {
      path: COOKIE_PATH,
      httpOnly: true,
      sameSite: 'strict' as const,
      secure: this.secureCookies,
      ...(maxAgeMs === undefined ? {} : { maxAge: Math.floor(maxAgeMs / 1000) }),
    };
  }

  // ---- assets, language ------------------------------------------------------------------------

  @Get('assets/htmx.min.js')
  @DashboardPublic()
  htmx(@Res() reply: FastifyReply) {
    return reply
      .header('content-type', 'text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=86400')
      .send(HTMX_JS);
  }

  @Get('assets/dashboard.js')
  @DashboardPublic()
  js(@Res() reply: FastifyReply) {
    return reply
      .header('content-type', 'text/javascript; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(DASHBOARD_JS);
  }

  @Get('assets/dashboard.css')
  @DashboardPublic()
  css(@Res() reply: FastifyReply) {
    return reply
      .header('content-type', 'text/css; charset=utf-8')
      .header('cache-control', 'public, max-age=3600')
      .send(CSS);
  }

  /** Sets cl_lang and goes back. A GET: it changes nothing on the server. */
  @Get('lang')
  @DashboardPublic()
  lang(@Query() query: Record<string, unknown>, @Res() reply: FastifyReply) {
    const to = query.to === 'en' ? 'en' : 'ja';
    return reply
      .setCookie(LANG_COOKIE, to, {
        path: COOKIE_PATH,
        sameSite: 'lax',
        httpOnly: true,
        secure: this.secureCookies,
        maxAge: 365 * 24 * 3600,
      })
      .redirect(safeDashboardPath(query.back), 303);
  }

  // ---- login, logout ---------------------------------------------------------------------------

  @Get('login')
  @DashboardPublic()
  async loginForm(
    @Req() req: DashboardRequest,
    @Query() query: Record<string, unknown>,
    @Res() reply: FastifyReply,
  ) {
    return this.renderLogin(req, reply, 200, undefined, safeDashboardPath(query.next));
  }

  @Post('login')
  @DashboardPublic()
  async login(@Req() req: DashboardRequest, @Res() reply: FastifyReply) {
    const body = (req.body ?? {}) as Record<string, unknown>;
    const next = safeDashboardPath(body.next);
    // Login CSRF: the form's hidden field must repeat the SameSite=Strict cookie it came with.
    if (!sameSecret(req.cookies[LOGIN_CSRF_COOKIE], body._csrf as string | undefined)) {
      return this.renderLogin(req, reply, 403, 'login.csrf', next, true);
    }
    const token = typeof body.token === 'string' ? body.token.trim() : '';
    if (!token) return this.renderLogin(req, reply, 401, 'login.bad', next);
    let actor;
    try {
      // A wrong token counts against this client and token family; too many: 429, unchecked.
      actor = await this.throttle.verify({ req, reply, token }, () =>
        token.length <= 500 ? this.tokens.authenticate(token) : null,
      );
    } catch (err) {
      if (!(err instanceof AuthThrottled)) throw err;
      const minutes = Math.ceil(err.retryAfterSeconds / 60);
      return this.renderLogin(req, reply, 429, 'login.throttled', next, false, { minutes });
    }
    if (!actor) return this.renderLogin(req, reply, 401, 'login.bad', next);
    const { cookie } = await this.sessions.create(actor, token);
    return reply
      .setCookie(SESSION_COOKIE, cookie, this.cookieOptions(SESSION_TTL_MS))
      .clearCookie(LOGIN_CSRF_COOKIE, this.cookieOptions())
      .redirect(next, 302);
  }

  @Post('logout')
  async logout(@Req() req: DashboardRequest, @Res() reply: FastifyReply) {
    await this.sessions.destroy(req.dashboard!.id);
    return reply.clearCookie(SESSION_COOKIE, this.cookieOptions()).redirect(LOGIN_PATH, 303);
  }

  private async renderLogin(
    req: DashboardRequest,
    reply: FastifyReply,
    status: number,
    error: MessageKey | undefined,
    next: string,
    newToken = false,
    errorParams?: Params,
  ) {
    // Keep the form's token while the browser has one, so a wrong token sets no cookie at all.
    let formToken = newToken ? undefined : req.cookies[LOGIN_CSRF_COOKIE];
    if (!formToken || !/^[\w-]{43}$/.test(formToken)) {
      formToken = randomBytes(32).toString('base64url');
      reply.setCookie(LOGIN_CSRF_COOKIE, formToken, this.cookieOptions(60 * 60 * 1000));
    }
    const model = page(req, { title: 'login.title' }, { error, errorParams, next, formToken });
    return render(reply, 'login', model, status);
  }

  // ---- overview --------------------------------------------------------------------------------

  @Get()
  async overviewPage(@Req() req: DashboardRequest, @Res() reply: FastifyReply) {
    const { readAt, ...data } = await this.overview.read();
    const model = page(req, { title: 'overview.title', active: 'overview' }, data, readAt);
    return render(reply, 'overview', model);
  }

  /** The overview's panel alone: htmx swaps it in every 15 s. */
  @Get('overview/panel')
  async overviewPanel(@Req() req: DashboardRequest, @Res() reply: FastifyReply) {
    const { readAt, ...data } = await this.overview.read();
    const model = page(req, { title: 'overview.title', active: 'overview' }, data, readAt);
    return render(reply, 'overview-panel', model);
  }

  // ---- deals -----------------------------------------------------------------------------------

  @Get('deals')
  async dealsPage(
    @Req() req: DashboardRequest,
    @Query() query: Record<string, unknown>,
    @Res() reply: FastifyReply,
  ) {
    const q = parseInput(dealsQuery, nonEmpty(query));
    const readAt = new Date();
    const result = await this.deals.list(q);
    const nextQuery = result.nextCursor
      ? new URLSearchParams({
          ...(q.attention ? { attention: 'true' } : {}),
          ...(q.q ? { q: q.q } : {}),
          ...(q.stage ? { stage: q.stage } : {}),
          cursor: result.nextCursor,
        }).toString()
      : undefined;
    const model = page(
      req,
      { title: q.attention ? 'deals.attention' : 'deals.title', active: 'deals' },
      { query: q, stages: DEAL_STAGES, deals: result.items, nextQuery },
      readAt,
    );
    return render(reply, 'deals', model);
  }

  @Get('deals/:id')
  async dealPage(
    @Req() req: DashboardRequest,
    @Param('id') id: string,
    @Res() reply: FastifyReply,
  ) {
    const readAt = new Date();
    const deal = await this.deals.detail(this.prisma, id);
    if (!deal) {
      throw new DomainException(
        HttpStatus.NOT_FOUND,
        CommonErrorCode.NotFound,
        `deal ${id} not found`,
      );
    }
    const model = page(
      req,
      { title: 'deal.title', titleParams: { id }, active: 'deals' },
      {
        deal,
        billing: explainBilling(deal),
        reportKinds: REPORT_KIND_LABELS,
        contractDocuments: ContractDocumentsService.available(deal.contract),
      },
      readAt,
    );
    return render(reply, 'deal', model);
  }

  /**
   * The deal's signed contract (combined PDF with the certificate of completion) and the
   * certificate alone, under the dashboard session: the same bytes as the admin API's
   * /api/deals/:id/contract/document and …/certificate. Refusals are error pages.
   */
  @Get('deals/:id/contract/document')
  contractDocument(@Param('id') id: string, @Res() reply: FastifyReply) {
    return this.sendDocument(id, 'combined', reply);
  }

  @Get('deals/:id/contract/certificate')
  contractCertificate(@Param('id') id: string, @Res() reply: FastifyReply) {
    return this.sendDocument(id, 'certificate', reply);
  }

  private async sendDocument(id: string, kind: EnvelopeDocumentKind, reply: FastifyReply) {
    const doc = await this.documents.document(id, kind);
    return reply.headers(contractDocumentHeaders(doc)).send(doc.bytes);
  }
}
