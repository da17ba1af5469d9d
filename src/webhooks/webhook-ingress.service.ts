import { HttpStatus, Injectable } from '@nestjs/common';
import { FastifyRequest } from 'fastify';
import { PinoLogger } from 'nestjs-pino';

import { DomainException } from '../common/domain.exception';
import { WebhookErrorCode } from './webhook-error-code';
import { AppConfig, WebhookSource } from '../config/app-config';
import { MetricsService } from '../observability/metrics.service';
import { redactHeaders } from '../common/redact';
import {
  CertificateUnavailableError,
  HeaderBag,
  IncomingEvent,
  SignatureError,
} from '../ports/webhook-door.port';
import { doorRoute } from './event-lane';
import { MalformedBodyError, parseJsonBody } from './json-body';
import { StoreResult, UnstorablePayloadError, WebhookInboxService } from './webhook-inbox.service';
import { WebhookProviders } from './webhook-providers';
import { DoorRequest, MalformedDeliveryError } from '../ports/webhook-door.port';

export interface ReceiveResult {
  received: number;
  duplicates: number;
  eventIds: string[];
  /** Elements of a batch the hub could neither identify nor use: not stored (CONTRACT §3.2). */
  skipped?: number;
}

/** verify → parse → identify → store, with the answer codes of CONTRACT §3. */
@Injectable()
export class WebhookIngressService {
  constructor(
    private readonly config: AppConfig,
    private readonly providers: WebhookProviders,
    private readonly inbox: WebhookInboxService,
    private readonly metrics: MetricsService,
    private readonly logger: PinoLogger,
  ) {
    logger.setContext(WebhookIngressService.name);
  }

  async receive(source: WebhookSource, req: FastifyRequest): Promise<ReceiveResult> {
    try {
      const result = await this.door(source, req);
      this.metrics.webhookReceived(source, 'accepted', result.received);
      if (result.duplicates > 0)
        this.metrics.webhookReceived(source, 'duplicate', result.duplicates);
      if (result.skipped) this.metrics.webhookReceived(source, 'skipped', result.skipped);
      return result;
    } catch (err) {
      const outcome = err instanceof DomainException ? err.outcome : 'error';
      this.metrics.webhookReceived(source, outcome);
      throw err;
    }
  }

  private async door(source: WebhookSource, req: FastifyRequest): Promise<ReceiveResult> {
    if (!this.config.webhookConfigured(source)) {
      throw new DomainException(
        HttpStatus.SERVICE_UNAVAILABLE,
        WebhookErrorCode.ProviderNotConfigured,
        `${source} is not configured on this hub`,
        'not_configured',
      );
    }
    const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const door: DoorRequest = {
      rawBody,
      headers: req.headers as HeaderBag,
      method: req.method,
      url: req.url,
    };
    const provider = this.providers.get(source);
    try {
      await provider.verify(door);
    } catch (err) {
      if (err instanceof SignatureError) {
        this.logger.warn({ correlationId: req.id, source, reason: err.reason }, 'webhook rejected');
        throw new DomainException(
          HttpStatus.UNAUTHORIZED,
          WebhookErrorCode.InvalidSignature,
          err.message,
          err.reason,
        );
      }
      if (err instanceof CertificateUnavailableError) {
        throw new DomainException(
          HttpStatus.SERVICE_UNAVAILABLE,
          WebhookErrorCode.CertificateUnavailable,
          err.message,
          'unavailable',
        );
      }
      throw err;
    }
    let body: unknown;
    let text: string;
    try {
      ({ body, text } = parseJsonBody(rawBody));
    } catch (err) {
      if (!(err instanceof MalformedBodyError)) throw err;
      throw new DomainException(
        HttpStatus.BAD_REQUEST,
        WebhookErrorCode.MalformedBody,
        err.message,
        'bad_request',
      );
    }
    let events;
    try {
      events = provider.identify(body, door);
    } catch (err) {
      if (err instanceof MalformedDeliveryError) {
        throw new DomainException(
          HttpStatus.BAD_REQUEST,
          WebhookErrorCode.MalformedEvent,
          err.message,
          'bad_request',
        );
      }
      throw err;
    }
    const skipped = events.filter((e) => e.skip !== undefined);
    if (skipped.length > 0) {
      this.logger.warn(
        { correlationId: req.id, source, skipped: skipped.map((e) => e.skip) },
        'webhook elements skipped',
      );
      events = events.filter((e) => e.skip === undefined);
    }
    if (events.length === 0) {
      return {
        received: 0,
        duplicates: 0,
        eventIds: [],
        ...(skipped.length > 0 && { skipped: skipped.length }),
      };
    }
    // Lane and use known before storing: unused types are stored IGNORED and cost no job.
    events = events.map((e) => ({ ...e, ...doorRoute(provider, e) }));
    let stored;
    try {
      stored = await this.store(source, events, {
        headers: redactHeaders(req.headers),
        correlationId: String(req.id),
        rawPayload: Array.isArray(body) ? undefined : text,
      });
    } catch (err) {
      if (err instanceof UnstorablePayloadError) {
        throw new DomainException(
          HttpStatus.BAD_REQUEST,
          WebhookErrorCode.UnstorablePayload,
          err.message,
          'bad_request',
        );
      }
      // Not stored, so not acknowledged: the provider retries.
      this.logger.error(
        { correlationId: req.id, source, err: (err as Error).message },
        'webhook could not be stored',
      );
      throw new DomainException(
        HttpStatus.SERVICE_UNAVAILABLE,
        WebhookErrorCode.StoreUnavailable,
        'event could not be stored; retry',
        'unavailable',
      );
    }
    this.logger.debug(
      { correlationId: req.id, source, stored: stored.stored, duplicates: stored.duplicates },
      'webhook stored',
    );
    if (stored.unstorable.length > 0) {
      this.logger.warn(
        { correlationId: req.id, source, skipped: stored.unstorable },
        'webhook elements skipped',
      );
    }
    const skippedCount = skipped.length + stored.unstorable.length;
    return {
      received: stored.stored.length,
      duplicates: stored.duplicates,
      eventIds: stored.stored,
      ...(skippedCount > 0 && { skipped: skippedCount }),
    };
  }

  /**
   * Stores a delivery's events together. When Postgres cannot hold one element of a batch (`\u0000`
   * in a string, a lone surrogate, a number out of range), the others are stored one by one and
   * that element is skipped (CONTRACT §3.2: each element on its own); a delivery with nothing
   * storable is refused (400) as before. Each element is its own transaction then: a failure part
   * way answers 503 and the provider's retry finds the stored ones as duplicates.
   */
  private async store(
    source: WebhookSource,
    events: IncomingEvent[],
    meta: Parameters<WebhookInboxService['store']>[2],
  ): Promise<StoreResult & { unstorable: string[] }> {
    try {
      return { ...(await this.inbox.store(source, events, meta)), unstorable: [] };
    } catch (err) {
      if (!(err instanceof UnstorablePayloadError) || events.length === 1) throw err;
      // The first occurrence of an identity stands for it, as in a batch stored at once.
      const firsts = [...new Map(events.map((e) => [e.providerEventId, e])).keys()].map((id) =>
        events.find((e) => e.providerEventId === id)!,
      );
      const out = {
        stored: [] as string[],
        duplicates: events.length - firsts.length,
        unstorable: [] as string[],
      };
      for (const event of firsts) {
        try {
          const one = await this.inbox.store(source, [event], { ...meta, rawPayload: undefined });
          out.stored.push(...one.stored);
          out.duplicates += one.duplicates;
        } catch (elementErr) {
          if (!(elementErr instanceof UnstorablePayloadError)) throw elementErr;
          out.unstorable.push(`${event.type} ${event.providerEventId}: ${elementErr.message}`);
        }
      }
      if (out.unstorable.length === firsts.length) throw err;
      return out;
    }
  }
}
