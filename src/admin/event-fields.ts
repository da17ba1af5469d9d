/**
 * An inbox event as the admin API lists it: the events list (events.service.ts) adds its
 * processing fields, a deal's detail (deal-queries.ts) shows these alone.
 */
export const EVENT_SUMMARY_FIELDS = {
  id: true,
  provider: true,
  providerEventId: true,
  type: true,
  status: true,
  receivedAt: true,
} as const;
