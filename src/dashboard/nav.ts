import { TokenRole } from '../generated/prisma/client';
import { MessageKey } from './i18n/i18n';

export interface NavItem {
  key: string;
  href: string;
  label: MessageKey;
  /** Shown only to this role and above. */
  role: TokenRole;
}

/**
 * The dashboard's pages, in menu order. Only pages that exist are linked: add a page's entry here
 * together with its controller (its label keys go in i18n/ja.ts and i18n/en.ts).
 */
export const DASHBOARD_NAV: NavItem[] = [
  { key: 'overview', href: '/dashboard', label: 'nav.overview', role: 'viewer' },
  { key: 'deals', href: '/dashboard/deals', label: 'nav.deals', role: 'viewer' },
  // ops pages (ops.controller.ts)
  { key: 'events', href: '/dashboard/events', label: 'nav.events', role: 'viewer' },
  { key: 'deadLetters', href: '/dashboard/dead-letters', label: 'nav.deadLetters', role: 'viewer' },
  { key: 'audit', href: '/dashboard/audit', label: 'nav.audit', role: 'admin' },
  { key: 'queues', href: '/dashboard/queues', label: 'nav.queues', role: 'admin' },
  // finance pages (finance.controller.ts)
  {
    key: 'reconciliation',
    href: '/dashboard/reconciliation',
    label: 'nav.reconciliation',
    role: 'finance',
  },
  { key: 'reports', href: '/dashboard/reports', label: 'nav.reports', role: 'viewer' },
];
