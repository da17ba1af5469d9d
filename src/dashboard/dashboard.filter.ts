import { randomUUID } from 'node:crypto';

import { ArgumentsHost, Catch, ExceptionFilter, HttpException, Logger } from '@nestjs/common';
import { FastifyReply } from 'fastify';

import { DashboardForbidden, DashboardRequest, DashboardUnauthenticated } from './dashboard.guard';
import { MessageKey } from './i18n/i18n';
import { page, render } from './page';

export const LOGIN_PATH = '/dashboard/login';

/**
 * Errors of dashboard routes as pages, not JSON: no session → the login form (htmx requests get
 * 401 + HX-Redirect so a self-refreshing panel does not render the form inside itself); a CSRF or
 * role refusal → 403 page; 404 and others → an error page; anything unexpected → 500 with an errorId.
 */
@Catch()
export class DashboardExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Dashboard');

  async catch(exception: unknown, host: ArgumentsHost): Promise<void> {
    const http = host.switchToHttp();
    const req = http.getRequest<DashboardRequest>();
    const reply = http.getResponse<FastifyReply>();
    if (exception instanceof DashboardUnauthenticated) {
      if (req.headers['hx-request']) {
        await reply.code(401).header('hx-redirect', LOGIN_PATH).send();
        return;
      }
      const next = req.method === 'GET' ? `?next=${encodeURIComponent(req.url)}` : '';
      await reply.code(req.method === 'GET' ? 302 : 303).redirect(`${LOGIN_PATH}${next}`);
      return;
    }
    let status = 500;
    let key: MessageKey = 'error.500';
    const params: Record<string, string> = {};
    if (exception instanceof DashboardForbidden) {
      status = 403;
      key = exception.reason === 'csrf' ? 'error.403.csrf' : 'error.403.role';
      params.role = exception.role ?? '';
    } else if (exception instanceof HttpException) {
      status = exception.getStatus();
      key = status === 404 ? 'error.404' : status === 403 ? 'error.403' : 'error.http';
      params.status = String(status);
      const body = exception.getResponse() as { error?: { message?: string } } | string;
      params.message =
        (typeof body === 'object' ? body.error?.message : undefined) ?? exception.message;
    } else {
      params.id = randomUUID();
      this.logger.error(
        { errorId: params.id, err: exception },
        `dashboard error ${params.id}: ${(exception as Error)?.message}`,
      );
    }
    const model = page(
      req,
      { title: 'error.title' },
      { message: key, messageParams: params, status },
    );
    await render(reply, 'error', model, status);
  }
}
