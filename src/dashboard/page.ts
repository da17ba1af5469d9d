import type {} from '@fastify/view';
import { FastifyReply } from 'fastify';
import { DateTime } from 'luxon';

import { roleAtLeast } from '../admin/tokens.service';
import { formatMoney } from '../domain/money';
import { TokenRole } from '../generated/prisma/client';
import { CodeLabel, codeLabeler, labelParams } from './code-labels';
import { DashboardRequest } from './dashboard.guard';
import { Lang, MessageKey, Params, Translate, translator } from './i18n/i18n';
import { DASHBOARD_NAV, NavItem } from './nav';

export const DISPLAY_ZONE = 'Asia/Tokyo';

type When = Date | string | null | undefined;

function toDateTime(value: When): DateTime | undefined {
  if (value === null || value === undefined) return undefined;
  const dt =
    value instanceof Date ? DateTime.fromJSDate(value) : DateTime.fromISO(value, { setZone: true });
  return dt.isValid ? dt : undefined;
}

/** Formatting helpers every template gets as `it.f`. */
export const formatters = {
  /** Asia/Tokyo wall time, e.g. 2026-11-23 18:03:12 ("—" when missing). */
  time(value: When): string {
    return toDateTime(value)?.setZone(DISPLAY_ZONE).toFormat('yyyy-MM-dd HH:mm:ss') ?? '—';
  },
  /** The same instant in UTC (for title attributes). */
  utc(value: When): string {
    return toDateTime(value)?.toUTC().toFormat("yyyy-MM-dd HH:mm:ss'Z'") ?? '';
  },
  money(amount: number | null | undefined, currency: string | null | undefined): string {
    if (amount === null || amount === undefined) return '—';
    try {
      return formatMoney(amount, currency ?? 'jpy');
    } catch {
      return `${amount} ${currency ?? ''}`.trim();
    }
  },
  json(value: unknown): string {
    return JSON.stringify(value, null, 2) ?? '';
  },
};

/** Drops empty form fields (a blank search box, an "all" option) before validation. */
export function nonEmpty<T extends Record<string, unknown>>(query: T): T {
  return Object.fromEntries(
    Object.entries(query ?? {}).filter(([, v]) => typeof v !== 'string' || v.trim() !== ''),
  ) as T;
}

export interface PageModel {
  lang: Lang;
  otherLang: Lang;
  t: Translate;
  /** A code (stage, billing status, report status, platform status…) in words: code-labels.ts. */
  label: CodeLabel;
  /** A message's parameters with the codes among them in words. */
  labelParams: (params: Params) => Params;
  f: typeof formatters;
  title: string;
  /** The nav key of this page. */
  active?: string;
  nav: NavItem[];
  actor?: { name: string; role: TokenRole };
  csrf?: string;
  /** May the signed-in actor do what needs `role`? Templates hide actions they may not. */
  can: (role: TokenRole) => boolean;
  readAt: { tokyo: string; utc: string; iso: string };
  /** This page's path and query, for the language switch to come back to. */
  here: string;
  [key: string]: unknown;
}

/**
 * The common model of a dashboard page: language and translator, nav (only what the role may
 * open), actor, CSRF token, "read at" in Asia/Tokyo and UTC, plus the page's own data.
 */
export function page(
  req: DashboardRequest,
  opts: { title: MessageKey; titleParams?: Params; active?: string },
  data: Record<string, unknown> = {},
  readAt = new Date(),
): PageModel {
  const lang = req.lang ?? 'ja';
  const t = translator(lang);
  const label = codeLabeler(lang, t);
  const session = req.dashboard;
  const role = session?.actor.role;
  // The page's own data first: the common keys below cannot be shadowed by it.
  return {
    ...data,
    lang,
    otherLang: lang === 'ja' ? 'en' : 'ja',
    t,
    label,
    labelParams: (params) => labelParams(label, params),
    f: formatters,
    title: t(opts.title, opts.titleParams),
    active: opts.active,
    nav: role ? DASHBOARD_NAV.filter((n) => roleAtLeast(role, n.role)) : [],
    actor: session ? { name: session.actor.name, role: session.actor.role } : undefined,
    csrf: session?.csrfToken,
    can: (need) => (role ? roleAtLeast(role, need) : false),
    readAt: {
      tokyo: formatters.time(readAt),
      utc: formatters.utc(readAt),
      iso: readAt.toISOString(),
    },
    here: req.url,
  };
}

/**
 * Renders a template under src/dashboard/views as an HTML reply (never cached by the browser).
 * Security headers (CSP, framing, referrer, nosniff) come from src/security/security-headers.ts.
 */
export async function render(
  reply: FastifyReply,
  template: string,
  model: PageModel,
  status = 200,
): Promise<FastifyReply> {
  const html = await reply.viewAsync(template, model);
  return reply
    .code(status)
    .header('content-type', 'text/html; charset=utf-8')
    .header('cache-control', 'no-store')
    .send(html);
}
