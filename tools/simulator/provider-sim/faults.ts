import { SimProviderName, SimRequest } from './sim.types';

/** One scripted answer to one matching request. */
export interface FaultStep {
  /** Answer this status (with `body`, or a provider-shaped error body) without calling the module. */
  status?: number;
  headers?: Record<string, string>;
  body?: unknown;
  /** Wait this long first; alone, the request is then handled normally. */
  delayMs?: number;
  /**
   * `before`: destroy the socket without handling the request.
   * `after`: let the module handle it fully (state changes, idempotency record) and then destroy
   * the socket without writing the response: the client sees a connection error, "outcome unknown".
   */
  drop?: 'before' | 'after';
  /**
   * Let the module handle the request fully, then hold the answer this long before writing it: a
   * client that gives up or dies meanwhile (a worker killed between a create and its record) never
   * learns the outcome.
   */
  holdMs?: number;
}

export type FaultPath = string | RegExp | { regex: string; flags?: string };

export interface FaultRule {
  provider?: SimProviderName;
  /** HTTP method (case-insensitive); any when omitted. */
  method?: string;
  /** A path prefix, a RegExp (in-process) or `{ regex }` (over HTTP). Tested against the path without query. */
  path: FaultPath;
  /** Consumed in order, one per matching request; once all are consumed the rule stops matching. */
  responses: FaultStep[];
}

export interface ActiveFaultRule {
  id: number;
  provider?: SimProviderName;
  method?: string;
  path: string;
  remaining: FaultStep[];
}

interface StoredRule {
  id: number;
  provider?: SimProviderName;
  method?: string;
  prefix?: string;
  regex?: RegExp;
  remaining: FaultStep[];
}

/** Scripted failures (status codes, delays, dropped connections) for matching requests. */
export class FaultInjector {
  private rules: StoredRule[] = [];
  private nextId = 1;

  /** Adds a rule; returns its id. Rules are tried in the order added. */
  add(rule: FaultRule): number {
    if (!rule || !Array.isArray(rule.responses) || rule.responses.length === 0) {
      throw new Error('a fault rule needs a non-empty responses array');
    }
    const stored: StoredRule = {
      id: this.nextId++,
      provider: rule.provider,
      method: rule.method?.toUpperCase(),
      remaining: rule.responses.map((s) => validateStep(s)),
    };
    if (typeof rule.path === 'string') stored.prefix = rule.path;
    else if (rule.path instanceof RegExp) stored.regex = rule.path;
    else if (rule.path && typeof rule.path.regex === 'string') {
      stored.regex = new RegExp(rule.path.regex, rule.path.flags);
    } else throw new Error('a fault rule needs path: string | RegExp | { regex }');
    this.rules.push(stored);
    return stored.id;
  }

  /** Shorthand: the next `count` matching requests get `step`. */
  times(count: number, rule: Omit<FaultRule, 'responses'>, step: FaultStep): number {
    return this.add({ ...rule, responses: Array.from({ length: count }, () => ({ ...step })) });
  }

  remove(id: number): boolean {
    const before = this.rules.length;
    this.rules = this.rules.filter((r) => r.id !== id);
    return this.rules.length !== before;
  }

  clear(): void {
    this.rules = [];
  }

  /** Rules that still have steps left. */
  list(): ActiveFaultRule[] {
    return this.rules.map((r) => ({
      id: r.id,
      provider: r.provider,
      method: r.method,
      path: r.prefix ?? String(r.regex),
      remaining: [...r.remaining],
    }));
  }

  /** Number of steps not consumed yet, over all rules. */
  get pending(): number {
    return this.rules.reduce((n, r) => n + r.remaining.length, 0);
  }

  /** Consumes and returns the next step of the first matching rule, if any. */
  take(req: Pick<SimRequest, 'provider' | 'method' | 'path'>): FaultStep | undefined {
    if (this.rules.length === 0) return undefined;
    for (let i = 0; i < this.rules.length; i++) {
      const r = this.rules[i];
      if (r.provider !== undefined && r.provider !== req.provider) continue;
      if (r.method !== undefined && r.method !== req.method.toUpperCase()) continue;
      if (r.prefix !== undefined && !req.path.startsWith(r.prefix)) continue;
      if (r.regex !== undefined) {
        r.regex.lastIndex = 0;
        if (!r.regex.test(req.path)) continue;
      }
      const step = r.remaining.shift();
      if (r.remaining.length === 0) this.rules.splice(i, 1);
      return step;
    }
    return undefined;
  }
}

function validateStep(s: FaultStep): FaultStep {
  if (!s || typeof s !== 'object') throw new Error('a fault step must be an object');
  if (s.drop !== undefined && s.drop !== 'before' && s.drop !== 'after') {
    throw new Error(`fault step drop must be 'before' or 'after'`);
  }
  if (s.status !== undefined && (!Number.isInteger(s.status) || s.status < 100 || s.status > 599)) {
    throw new Error('fault step status must be an HTTP status code');
  }
  if (s.delayMs !== undefined && !(s.delayMs >= 0)) {
    throw new Error('fault step delayMs must be >= 0');
  }
  if (s.holdMs !== undefined && !(s.holdMs >= 0)) {
    throw new Error('fault step holdMs must be >= 0');
  }
  return { ...s };
}

/** Short description for the request log. */
export function describeFault(step: FaultStep): string {
  const parts: string[] = [];
  if (step.delayMs) parts.push(`delay ${step.delayMs}ms`);
  if (step.holdMs) parts.push(`hold ${step.holdMs}ms`);
  if (step.drop) parts.push(`drop ${step.drop}`);
  else if (step.status !== undefined) parts.push(`status ${step.status}`);
  return parts.join(', ') || 'none';
}

/** A provider-shaped error body for an injected status. */
export function defaultFaultBody(provider: SimProviderName | undefined, status: number): unknown {
  const message =
    status === 429
      ? 'Request rate limit exceeded'
      : status >= 500
        ? 'Simulated provider error (fault injection)'
        : `Simulated HTTP ${status} (fault injection)`;
  switch (provider) {
    case 'stripe': {
      const type =
        status === 429
          ? 'rate_limit_error'
          : status >= 500
            ? 'api_error'
            : status === 409
              ? 'idempotency_error'
              : 'invalid_request_error';
      return { error: { type, message } };
    }
    case 'hubspot':
      return {
        status: 'error',
        message,
        correlationId: '00000000-0000-4000-8000-000000000000',
        category:
          status === 429 ? 'RATE_LIMITS' : status >= 500 ? 'INTERNAL_ERROR' : 'VALIDATION_ERROR',
      };
    case 'docusign':
      return {
        errorCode: status === 429 ? 'HOURLY_APIINVOCATION_LIMIT_EXCEEDED' : 'UNSPECIFIED_ERROR',
        message,
      };
    default:
      return { error: message };
  }
}
