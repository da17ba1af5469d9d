/** One alert as it leaves the hub (CONTRACT §2 ALERT_WEBHOOK_URL). */
export interface OutboundAlert {
  /** Stable per alert: receivers dedupe retries by it. */
  alertId: string;
  /** e.g. `dead_letters.growing`. */
  kind: string;
  /** Why it was raised, unique per alert (e.g. `provider.failing|stripe|2026-11-23T08`). */
  cause: string;
  message: string;
  dealId?: string | null;
  details?: Record<string, unknown> | null;
  raisedAt: Date;
}

/**
 * The alert channel port (the signed alert webhook: src/connectors/alert-webhook). Alerts are
 * always logged too; a channel only adds a push. Throws TransientError / PermanentError.
 */
export abstract class AlertChannelPort {
  abstract readonly provider: string;
  abstract send(alert: OutboundAlert): Promise<void>;
}
