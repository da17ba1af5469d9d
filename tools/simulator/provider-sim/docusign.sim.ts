import { randomBytes, randomUUID } from 'node:crypto';

import { docusignDelivery } from '../signed-delivery';
import { parseJsonBody, postDelivery, SimWebhookOutbox } from './hubspot.sim';
import { minimalPdf } from './pdf';
import type { SimProviderModule, SimRequest, SimResponse, SimWebhookTarget } from './sim.types';

/*
 * DocuSign eSignature REST v2.1 as `docusign-esign` 10 calls it, and Connect JSON SIM messages
 * with HMAC signatures (provider-facts §1, CONTRACT §3.1). The OAuth server lives in
 * docusign-oauth.ts and shares the token store below. A test, demo and benchmark aid; never a
 * code path of the hub.
 */

/** Access tokens issued by the simulated OAuth server; the REST API accepts only these. */
export class DocusignTokenStore {
  private tokens = new Map<string, { userId: string; expiresAt: number }>();

  issue(userId: string, expiresInSec: number): string {
    const token = `eyJ0eXAiOiJNVCIsImFsZyI6IlJTMjU2In0.sim.${randomBytes(24).toString('base64url')}`;
    this.tokens.set(token, { userId, expiresAt: Date.now() + expiresInSec * 1000 });
    return token;
  }

  check(token: string | undefined): { ok: true; userId: string } | { ok: false } {
    const t = token ? this.tokens.get(token) : undefined;
    if (!t || t.expiresAt <= Date.now()) return { ok: false };
    return { ok: true, userId: t.userId };
  }

  /** Expires every issued token (the hub must mint a new one). */
  expireAll(): void {
    for (const t of this.tokens.values()) t.expiresAt = 0;
  }

  revoke(token: string): void {
    this.tokens.delete(token);
  }

  get size(): number {
    return this.tokens.size;
  }

  clear(): void {
    this.tokens.clear();
  }
}

export type SimEnvelopeStatus =
  'created' | 'sent' | 'delivered' | 'completed' | 'declined' | 'voided';

export type DocusignConnectEvent =
  | 'envelope-sent'
  | 'envelope-delivered'
  | 'envelope-completed'
  | 'envelope-declined'
  | 'envelope-voided';

export interface SimEnvelopeRole {
  recipientId: string;
  email: string;
  name: string;
  roleName: string;
  clientUserId?: string;
  status: string;
  textTabs: { tabLabel: string; value: string }[];
}

export interface SimTextCustomField {
  fieldId: string;
  name: string;
  value: string;
  show: string;
  required: string;
}

/** An envelope as received (tests assert merge fields on it). */
export interface SimEnvelope {
  envelopeId: string;
  accountId: string;
  templateId?: string;
  status: SimEnvelopeStatus;
  emailSubject: string;
  emailBlurb?: string;
  createdDateTime: string;
  sentDateTime?: string;
  deliveredDateTime?: string;
  completedDateTime?: string;
  declinedDateTime?: string;
  voidedDateTime?: string;
  voidedReason?: string;
  declinedReason?: string;
  statusChangedDateTime: string;
  roles: SimEnvelopeRole[];
  /** All roles' text tabs by tabLabel (convenience for assertions). */
  textTabs: Record<string, string>;
  customFields: SimTextCustomField[];
  /** The EnvelopeDefinition exactly as posted. */
  definition: unknown;
}

export interface SimTemplate {
  templateId: string;
  name: string;
  roleNames: string[];
  emailSubject: string;
}

/** A DocuSign Connect JSON SIM message [DS-SIM]. */
export interface DocusignConnectMessage {
  event: DocusignConnectEvent | string;
  apiVersion: 'v2.1';
  uri: string;
  retryCount: number;
  configurationId: number;
  generatedDateTime: string;
  data: {
    accountId: string;
    userId: string;
    envelopeId: string;
    envelopeSummary?: Record<string, unknown>;
  };
}

export interface DocusignSimOptions {
  /** The account the REST API serves; requests for others answer 400 USER_LACKS_MEMBERSHIP. */
  accountId?: string;
  /** The API user (Connect `data.userId`). */
  userId?: string;
  /** Connect `configurationId` (default 10501234). */
  configurationId?: number;
  /** Webhook tries per message (default 4) and linear back-off step (default 50 ms). */
  webhookAttempts?: number;
  webhookRetryDelayMs?: number;
  /** Shared with the OAuth server (default: a new store). */
  tokens?: DocusignTokenStore;
  /** Accept any bearer token (no OAuth server), e.g. for a bench that stubs auth. Default false. */
  acceptAnyToken?: boolean;
  now?: () => Date;
}

let subTick = 0;
/** DocuSign's timestamps carry 7 fractional digits, e.g. `2026-01-13T07:09:58.9584687Z`. */
export function docusignDateTime(d: Date, extraDigits?: number): string {
  const extra = extraDigits ?? 0;
  return `${d.toISOString().slice(0, 23)}${String(extra % 10000).padStart(4, '0')}Z`;
}

function dsError(status: number, errorCode: string, message: string): SimResponse {
  return {
    status,
    headers: { 'content-type': 'application/json; charset=utf-8' },
    body: { errorCode, message },
  };
}

/** DocuSign's hourly API limit answer (for the core fault injector) [DS-LIMITS]. */
export function docusignRateLimitResponse(): SimResponse {
  const reset = Math.ceil(Date.now() / 3_600_000) * 3600;
  return {
    status: 429,
    headers: {
      'content-type': 'application/json; charset=utf-8',
      'X-RateLimit-Limit': '3000',
      'X-RateLimit-Remaining': '0',
      'X-RateLimit-Reset': String(reset),
      'X-BurstLimit-Limit': '500',
      'X-BurstLimit-Remaining': '0',
    },
    body: {
      errorCode: 'HOURLY_APIINVOCATION_LIMIT_EXCEEDED',
      message:
        'The maximum number of hourly API invocations has been exceeded. Hourly limit is 3000.',
    },
  };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(v: unknown): string | undefined {
  return typeof v === 'string' ? v : typeof v === 'number' ? String(v) : undefined;
}

export class DocusignSim implements SimProviderModule {
  readonly name = 'docusign' as const;
  readonly tokens: DocusignTokenStore;
  readonly accountId: string;
  readonly userId: string;
  readonly configurationId: number;
  private readonly now: () => Date;
  private envelopeMap = new Map<string, SimEnvelope>();
  private templates = new Map<string, SimTemplate>();
  private target: SimWebhookTarget | undefined;
  /** Connect messages, one per delivery. */
  readonly webhooks: SimWebhookOutbox<DocusignConnectMessage>;

  constructor(private readonly options: DocusignSimOptions = {}) {
    this.tokens = options.tokens ?? new DocusignTokenStore();
    this.accountId = options.accountId ?? '1a2b3c4d-0000-4000-8000-000000000001';
    this.userId = options.userId ?? '5e6f7a8b-0000-4000-8000-000000000002';
    this.configurationId = options.configurationId ?? 10501234;
    this.now = options.now ?? (() => new Date());
    this.webhooks = new SimWebhookOutbox<DocusignConnectMessage>({
      maxBatch: 1,
      attempts: options.webhookAttempts,
      retryDelayMs: options.webhookRetryDelayMs,
      send: (messages, attempt) => this.sendConnect(messages[0], attempt),
    });
  }

  // --------------------------------------------------------------------------- module interface

  matches(req: SimRequest): boolean {
    return req.path.startsWith('/restapi/');
  }

  /** Forgets envelopes and queued webhooks; keeps templates, issued tokens and the target (account configuration). */
  reset(): void {
    this.envelopeMap.clear();
    this.webhooks.clear();
  }

  setTarget(target: SimWebhookTarget | undefined): void {
    this.target = target;
  }

  async close(): Promise<void> {
    this.webhooks.pause();
    await this.webhooks.idle();
  }

  handle(req: SimRequest): SimResponse {
    const auth = req.headers.authorization;
    const header = Array.isArray(auth) ? auth[0] : auth;
    const token = /^Bearer\s+(\S+)\s*$/i.exec(header ?? '')?.[1];
    if (!this.options.acceptAnyToken || !token) {
      if (!this.tokens.check(token).ok) {
        return dsError(
          401,
          'AUTHORIZATION_INVALID_TOKEN',
          'The access token provided is expired, revoked or malformed.',
        );
      }
    }
    const doc =
      /^\/restapi\/v2\.1\/accounts\/([^/]+)\/envelopes\/([^/]+)\/documents\/([^/]+)$/.exec(
        req.path,
      );
    const m =
      doc ?? /^\/restapi\/v2\.1\/accounts\/([^/]+)\/envelopes(?:\/([^/]+))?\/?$/.exec(req.path);
    if (!m) {
      return dsError(404, 'RESOURCE_NOT_FOUND', `The URL provided does not resolve to a resource.`);
    }
    const accountId = decodeURIComponent(m[1]);
    if (this.options.accountId && accountId !== this.accountId) {
      return dsError(
        400,
        'USER_LACKS_MEMBERSHIP',
        'The UserID does not have a valid membership in this Account.',
      );
    }
    const method = req.method.toUpperCase();
    if (doc && method === 'GET') {
      return this.apiDocument(decodeURIComponent(doc[2]), decodeURIComponent(doc[3]), req);
    }
    if (doc)
      return dsError(405, 'INVALID_REQUEST_PARAMETER', `${req.method} is not supported here.`);
    if (!m[2] && method === 'POST') return this.apiCreate(accountId, req);
    if (!m[2] && method === 'GET') return this.apiList(req);
    if (m[2] && method === 'GET') return this.apiGet(decodeURIComponent(m[2]), req);
    return dsError(405, 'INVALID_REQUEST_PARAMETER', `${req.method} is not supported here.`);
  }

  /** Control API under `/_sim/docusign/` (for the demo and for tests driving a separate process). */
  control(req: SimRequest): SimResponse | undefined {
    const path = req.path.replace(/^\/_sim\/docusign/, '');
    const method = req.method.toUpperCase();
    const parsed = parseJsonBody(req);
    if (!parsed.ok) return { status: 400, body: { error: 'invalid JSON' } };
    const body = isRecord(parsed.value) ? parsed.value : {};
    try {
      if (method === 'POST' && path === '/templates') {
        const roleNames = Array.isArray(body.roleNames) ? body.roleNames.map(String) : ['signer'];
        this.addTemplate(String(body.templateId ?? body.id), roleNames, {
          name: str(body.name),
          emailSubject: str(body.emailSubject),
        });
        return { status: 201, body: { ok: true } };
      }
      if (method === 'GET' && path === '/envelopes') return { status: 200, body: this.envelopes() };
      let m = /^\/envelopes\/([^/]+)$/.exec(path);
      if (method === 'GET' && m) {
        const env = this.envelope(m[1]);
        return env ? { status: 200, body: env } : { status: 404, body: { error: 'no envelope' } };
      }
      // The bytes the REST API serves for a document (tests compare what the hub handed on).
      m = /^\/envelopes\/([^/]+)\/documents\/([^/]+)$/.exec(path);
      if (method === 'GET' && m) {
        const bytes = this.documentBytes(m[1], m[2], req.query.get('certificate') === 'true');
        return bytes
          ? { status: 200, headers: { 'content-type': 'application/pdf' }, body: bytes }
          : { status: 404, body: { error: 'no such envelope or document' } };
      }
      m = /^\/envelopes\/([^/]+)\/(complete|decline|void|deliver)$/.exec(path);
      if (method === 'POST' && m) {
        const id = m[1];
        if (m[2] === 'complete') this.complete(id);
        else if (m[2] === 'decline') this.decline(id, str(body.reason));
        else if (m[2] === 'void') this.voidEnvelope(id, str(body.reason));
        else this.markDelivered(id);
        return { status: 200, body: this.envelope(id) };
      }
      if (method === 'POST' && path === '/tokens/expire') {
        this.tokens.expireAll();
        return { status: 200, body: { ok: true } };
      }
      if (method === 'POST' && path === '/webhooks/pause') {
        this.webhooks.pause();
        return { status: 200, body: { ok: true } };
      }
      if (method === 'POST' && path === '/webhooks/resume') {
        this.webhooks.resume();
        return { status: 200, body: { ok: true } };
      }
      if (method === 'GET' && path === '/webhooks') {
        return {
          status: 200,
          body: {
            paused: this.webhooks.isPaused,
            pending: this.webhooks.pending,
            delivered: this.webhooks.delivered.length,
            dead: this.webhooks.dead.length,
          },
        };
      }
    } catch (err) {
      return { status: 400, body: { error: (err as Error).message } };
    }
    return undefined;
  }

  // --------------------------------------------------------------------------- in-process API

  /** Registers a server template with its recipient role names. */
  addTemplate(
    templateId: string,
    roleNames: string[] = ['signer'],
    opts: { name?: string; emailSubject?: string } = {},
  ): void {
    const name = opts.name ?? 'Order Form';
    this.templates.set(templateId, {
      templateId,
      name,
      roleNames,
      emailSubject: opts.emailSubject ?? `Please DocuSign: ${name}`,
    });
  }

  envelopes(): SimEnvelope[] {
    return [...this.envelopeMap.values()].map((e) => structuredClone(e));
  }

  envelope(envelopeId: string): SimEnvelope | undefined {
    const e = this.envelopeMap.get(envelopeId);
    return e ? structuredClone(e) : undefined;
  }

  /**
   * A document of an envelope as the REST API serves it, or undefined for an unknown envelope or
   * document id: `combined` (the contract, with the certificate of completion appended when
   * `certificate`), `certificate` (the certificate alone) or `1` (the template's document). Like
   * DocuSign, any status is served; the certificate states the envelope's status. The bytes depend
   * only on the envelope, so the same document is the same bytes each time.
   */
  documentBytes(envelopeId: string, documentId: string, certificate = false): Buffer | undefined {
    const env = this.envelopeMap.get(envelopeId);
    if (!env) return undefined;
    const contract = this.contractPage(env);
    const certificatePage = this.certificatePage(env);
    if (documentId === 'combined') {
      return minimalPdf(certificate ? [contract, certificatePage] : [contract]);
    }
    if (documentId === 'certificate') return minimalPdf([certificatePage]);
    if (documentId === '1') return minimalPdf([contract]);
    return undefined;
  }

  /** The signer viewed the envelope (emits `envelope-delivered`). */
  markDelivered(envelopeId: string): void {
    const env = this.mustGet(envelopeId, ['sent']);
    const t = this.now();
    env.status = 'delivered';
    env.deliveredDateTime = docusignDateTime(t);
    env.statusChangedDateTime = env.deliveredDateTime;
    for (const r of env.roles) r.status = 'delivered';
    this.emit(env, 'envelope-delivered');
  }

  /** Every signer signed (emits `envelope-completed`). */
  complete(envelopeId: string): void {
    const env = this.mustGet(envelopeId, ['sent', 'delivered']);
    const t = this.now();
    if (!env.deliveredDateTime) env.deliveredDateTime = docusignDateTime(t);
    env.status = 'completed';
    env.completedDateTime = docusignDateTime(t);
    env.statusChangedDateTime = env.completedDateTime;
    for (const r of env.roles) r.status = 'completed';
    this.emit(env, 'envelope-completed');
  }

  /** The signer declined (emits `envelope-declined`). */
  decline(envelopeId: string, reason = 'Declined by signer'): void {
    const env = this.mustGet(envelopeId, ['sent', 'delivered']);
    env.status = 'declined';
    env.declinedDateTime = docusignDateTime(this.now());
    env.statusChangedDateTime = env.declinedDateTime;
    if (env.roles[0]) env.roles[0].status = 'declined';
    env.declinedReason = reason;
    this.emit(env, 'envelope-declined');
  }

  /** The sender voided the envelope (emits `envelope-voided`). */
  voidEnvelope(envelopeId: string, reason = 'Voided by sender'): void {
    const env = this.mustGet(envelopeId, ['created', 'sent', 'delivered']);
    env.status = 'voided';
    env.voidedDateTime = docusignDateTime(this.now());
    env.statusChangedDateTime = env.voidedDateTime;
    env.voidedReason = reason;
    this.emit(env, 'envelope-voided');
  }

  /** Queues an arbitrary Connect message (e.g. a duplicate, or a hand-made one). */
  emitMessage(message: DocusignConnectMessage): void {
    this.webhooks.enqueue(message);
  }

  /** The Connect message the simulator would send for this envelope now. */
  connectMessage(envelopeId: string, event: DocusignConnectEvent): DocusignConnectMessage {
    return this.buildMessage(this.mustGet(envelopeId), event);
  }

  pauseWebhooks(): void {
    this.webhooks.pause();
  }

  resumeWebhooks(): void {
    this.webhooks.resume();
  }

  webhooksIdle(): Promise<void> {
    return this.webhooks.idle();
  }

  // --------------------------------------------------------------------------- REST handlers

  private apiCreate(accountId: string, req: SimRequest): SimResponse {
    const parsed = parseJsonBody(req);
    if (!parsed.ok || !isRecord(parsed.value)) {
      return dsError(
        400,
        'INVALID_REQUEST_BODY',
        'The request body is missing or improperly formatted.',
      );
    }
    const def = parsed.value;
    const status = str(def.status) ?? 'created';
    if (status !== 'sent' && status !== 'created') {
      return dsError(400, 'INVALID_ENVELOPE_STATUS', `Invalid envelope status: ${status}.`);
    }
    const templateId = str(def.templateId);
    if (!templateId) {
      return dsError(
        400,
        'ENVELOPE_IS_INCOMPLETE',
        'The Envelope is not Complete. A Complete Envelope Requires Documents, Recipients, Tabs, and a Subject Line.',
      );
    }
    const template = this.templates.get(templateId);
    if (!template) {
      return dsError(400, 'TEMPLATE_ID_INVALID', `Invalid template ID: ${templateId}.`);
    }
    const rawRoles = Array.isArray(def.templateRoles) ? def.templateRoles : [];
    if (rawRoles.length === 0 && status === 'sent') {
      return dsError(
        400,
        'ENVELOPE_IS_INCOMPLETE',
        'The Envelope is not Complete. A Complete Envelope Requires Documents, Recipients, Tabs, and a Subject Line.',
      );
    }
    const roles: SimEnvelopeRole[] = [];
    const textTabs: Record<string, string> = {};
    for (const [i, raw] of rawRoles.entries()) {
      const r = isRecord(raw) ? raw : {};
      const roleName = str(r.roleName) ?? '';
      if (!template.roleNames.includes(roleName)) {
        return dsError(
          400,
          'INVALID_ROLE',
          `The role name '${roleName}' does not match a role in template ${templateId}.`,
        );
      }
      const email = str(r.email);
      const name = str(r.name);
      if (!email || !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(email)) {
        return dsError(
          400,
          'INVALID_EMAIL_ADDRESS_FOR_RECIPIENT',
          'The email address for the recipient is invalid.',
        );
      }
      if (!name) {
        return dsError(
          400,
          'INVALID_USERNAME_FOR_RECIPIENT',
          'The user name for the recipient is invalid.',
        );
      }
      const tabs = isRecord(r.tabs) && Array.isArray(r.tabs.textTabs) ? r.tabs.textTabs : [];
      const roleTabs = tabs
        .filter(isRecord)
        .map((t) => ({ tabLabel: str(t.tabLabel) ?? '', value: str(t.value) ?? '' }));
      for (const t of roleTabs) textTabs[t.tabLabel] = t.value;
      roles.push({
        recipientId: String(i + 1),
        email,
        name,
        roleName,
        clientUserId: str(r.clientUserId),
        status: status === 'sent' ? 'sent' : 'created',
        textTabs: roleTabs,
      });
    }
    const rawFields =
      isRecord(def.customFields) && Array.isArray(def.customFields.textCustomFields)
        ? def.customFields.textCustomFields
        : [];
    const customFields: SimTextCustomField[] = rawFields.filter(isRecord).map((f, i) => ({
      fieldId: String(10_000_000 + i + 1),
      name: str(f.name) ?? '',
      value: str(f.value) ?? '',
      show: str(f.show) ?? 'true',
      required: str(f.required) ?? 'false',
    }));
    const t = this.now();
    const created = docusignDateTime(t);
    const env: SimEnvelope = {
      envelopeId: randomUUID(),
      accountId,
      templateId,
      status,
      emailSubject: str(def.emailSubject) ?? template.emailSubject,
      emailBlurb: str(def.emailBlurb),
      createdDateTime: created,
      sentDateTime: status === 'sent' ? created : undefined,
      statusChangedDateTime: created,
      roles,
      textTabs,
      customFields,
      definition: def,
    };
    this.envelopeMap.set(env.envelopeId, env);
    if (status === 'sent') this.emit(env, 'envelope-sent');
    return {
      status: 201,
      headers: { 'content-type': 'application/json; charset=utf-8' },
      body: {
        envelopeId: env.envelopeId,
        uri: `/envelopes/${env.envelopeId}`,
        statusDateTime: created,
        status,
      },
    };
  }

  private apiDocument(envelopeId: string, documentId: string, req: SimRequest): SimResponse {
    if (!this.envelopeMap.has(envelopeId)) {
      return dsError(
        404,
        'ENVELOPE_DOES_NOT_EXIST',
        'The envelope specified either does not exist or you have no rights to it.',
      );
    }
    const bytes = this.documentBytes(
      envelopeId,
      documentId,
      req.query.get('certificate') === 'true',
    );
    if (!bytes) {
      return dsError(
        404,
        'DOCUMENT_DOES_NOT_EXIST',
        `The document specified was not found: ${documentId}.`,
      );
    }
    return {
      status: 200,
      headers: {
        'content-type': 'application/pdf',
        'content-disposition': `file; filename="${documentId === 'certificate' ? 'Summary' : 'Order Form'}.pdf"`,
      },
      body: bytes,
    };
  }

  private contractPage(env: SimEnvelope): string[] {
    const template = env.templateId ? this.templates.get(env.templateId) : undefined;
    return [
      template?.name ?? 'Order Form',
      `Envelope ${env.envelopeId}`,
      env.emailSubject,
      ...Object.entries(env.textTabs).map(([label, value]) => `${label}: ${value}`),
      ...env.roles.map((r) => `${r.roleName}: ${r.name} <${r.email}>`),
    ];
  }

  private certificatePage(env: SimEnvelope): string[] {
    const status = env.status.charAt(0).toUpperCase() + env.status.slice(1);
    return [
      'Certificate Of Completion',
      `Envelope Id: ${env.envelopeId}`,
      `Subject: ${env.emailSubject}`,
      `Status: ${status}`,
      `Envelope Originator: ${this.userId}`,
      `Created: ${env.createdDateTime}`,
      ...(env.sentDateTime ? [`Sent: ${env.sentDateTime}`] : []),
      ...(env.completedDateTime ? [`Completed: ${env.completedDateTime}`] : []),
      ...env.roles.map((r) => `Signer: ${r.name} <${r.email}> (${r.status})`),
    ];
  }

  private apiGet(envelopeId: string, req: SimRequest): SimResponse {
    const env = this.envelopeMap.get(envelopeId);
    if (!env) {
      return dsError(
        404,
        'ENVELOPE_DOES_NOT_EXIST',
        'The envelope specified either does not exist or you have no rights to it.',
      );
    }
    return { status: 200, body: this.renderEnvelope(env, includes(req.query)) };
  }

  private apiList(req: SimRequest): SimResponse {
    const q = req.query;
    const fromDate = q.get('from_date');
    const envelopeIds = q.get('envelope_ids');
    if (!fromDate && !envelopeIds && !q.get('transaction_ids')) {
      return dsError(
        400,
        'INVALID_REQUEST_PARAMETER',
        "The request contained at least one invalid parameter. No value specified for parameter 'from_date', 'envelope_ids', or 'transaction_ids'.",
      );
    }
    let list = [...this.envelopeMap.values()];
    if (fromDate) {
      const from = Date.parse(fromDate);
      if (Number.isNaN(from)) {
        return dsError(
          400,
          'INVALID_REQUEST_PARAMETER',
          `Invalid value for 'from_date': ${fromDate}.`,
        );
      }
      list = list.filter((e) => Date.parse(e.statusChangedDateTime) >= from);
    }
    const toDate = q.get('to_date');
    if (toDate)
      list = list.filter((e) => Date.parse(e.statusChangedDateTime) <= Date.parse(toDate));
    if (envelopeIds) {
      const ids = new Set(envelopeIds.split(',').map((s) => s.trim()));
      list = list.filter((e) => ids.has(e.envelopeId));
    }
    const status = q.get('status');
    if (status && status !== 'any') {
      const wanted = new Set(status.split(',').map((s) => s.trim().toLowerCase()));
      list = list.filter((e) => wanted.has(e.status));
    }
    const customField = q.get('custom_field');
    if (customField) {
      const eq = customField.indexOf('=');
      const name = eq < 0 ? customField : customField.slice(0, eq);
      const value = eq < 0 ? undefined : customField.slice(eq + 1);
      list = list.filter((e) =>
        e.customFields.some((f) => f.name === name && (value === undefined || f.value === value)),
      );
    }
    list.sort((a, b) => Date.parse(a.statusChangedDateTime) - Date.parse(b.statusChangedDateTime));
    const start = Math.max(0, Number(q.get('start_position') ?? 0) || 0);
    const count = Math.max(1, Number(q.get('count') ?? 1000) || 1000);
    const page = list.slice(start, start + count);
    const inc = includes(q);
    const body: Record<string, unknown> = {
      resultSetSize: String(page.length),
      totalSetSize: String(list.length),
      startPosition: String(start),
      endPosition: String(start + page.length - 1),
      nextUri: '',
      previousUri: '',
    };
    // DocuSign leaves `envelopes` out when nothing matches.
    if (page.length > 0) body.envelopes = page.map((e) => this.renderEnvelope(e, inc));
    return { status: 200, body };
  }

  // --------------------------------------------------------------------------- internals

  private mustGet(envelopeId: string, from?: SimEnvelopeStatus[]): SimEnvelope {
    const env = this.envelopeMap.get(envelopeId);
    if (!env) throw new Error(`no envelope ${envelopeId}`);
    if (from && !from.includes(env.status)) {
      throw new Error(`envelope ${envelopeId} is ${env.status}`);
    }
    return env;
  }

  private renderEnvelope(env: SimEnvelope, include: Set<string>): Record<string, unknown> {
    const out: Record<string, unknown> = {
      envelopeId: env.envelopeId,
      status: env.status,
      emailSubject: env.emailSubject,
      ...(env.emailBlurb ? { emailBlurb: env.emailBlurb } : {}),
      envelopeUri: `/envelopes/${env.envelopeId}`,
      customFieldsUri: `/envelopes/${env.envelopeId}/custom_fields`,
      recipientsUri: `/envelopes/${env.envelopeId}/recipients`,
      templatesUri: `/envelopes/${env.envelopeId}/templates`,
      createdDateTime: env.createdDateTime,
      lastModifiedDateTime: env.statusChangedDateTime,
      statusChangedDateTime: env.statusChangedDateTime,
      ...(env.sentDateTime ? { sentDateTime: env.sentDateTime } : {}),
      ...(env.deliveredDateTime ? { deliveredDateTime: env.deliveredDateTime } : {}),
      ...(env.completedDateTime ? { completedDateTime: env.completedDateTime } : {}),
      ...(env.declinedDateTime ? { declinedDateTime: env.declinedDateTime } : {}),
      ...(env.voidedDateTime ? { voidedDateTime: env.voidedDateTime } : {}),
      ...(env.voidedReason ? { voidedReason: env.voidedReason } : {}),
    };
    if (include.has('custom_fields')) out.customFields = this.customFieldsOf(env);
    if (include.has('recipients')) out.recipients = this.recipientsOf(env);
    return out;
  }

  private customFieldsOf(env: SimEnvelope) {
    return { textCustomFields: env.customFields.map((f) => ({ ...f })), listCustomFields: [] };
  }

  private recipientsOf(env: SimEnvelope) {
    return {
      signers: env.roles.map((r) => ({
        recipientId: r.recipientId,
        email: r.email,
        name: r.name,
        roleName: r.roleName,
        status: r.status,
        routingOrder: '1',
      })),
      recipientCount: String(env.roles.length),
    };
  }

  private buildMessage(env: SimEnvelope, event: DocusignConnectEvent): DocusignConnectMessage {
    const generated = docusignDateTime(this.now(), ++subTick);
    return {
      event,
      apiVersion: 'v2.1',
      uri: `/restapi/v2.1/accounts/${env.accountId}/envelopes/${env.envelopeId}`,
      retryCount: 0,
      configurationId: this.configurationId,
      generatedDateTime: generated,
      data: {
        accountId: env.accountId,
        userId: this.userId,
        envelopeId: env.envelopeId,
        envelopeSummary: {
          envelopeId: env.envelopeId,
          status: env.status,
          emailSubject: env.emailSubject,
          ...(env.sentDateTime ? { sentDateTime: env.sentDateTime } : {}),
          ...(env.deliveredDateTime ? { deliveredDateTime: env.deliveredDateTime } : {}),
          ...(env.completedDateTime ? { completedDateTime: env.completedDateTime } : {}),
          ...(env.declinedDateTime ? { declinedDateTime: env.declinedDateTime } : {}),
          ...(env.voidedDateTime ? { voidedDateTime: env.voidedDateTime } : {}),
          ...(env.voidedReason ? { voidedReason: env.voidedReason } : {}),
          statusChangedDateTime: env.statusChangedDateTime,
          customFields: {
            textCustomFields: env.customFields.map((f) => ({
              fieldId: f.fieldId,
              name: f.name,
              show: f.show,
              required: f.required,
              value: f.value,
            })),
          },
          recipients: this.recipientsOf(env),
        },
      },
    };
  }

  private emit(env: SimEnvelope, event: DocusignConnectEvent): void {
    if (!this.target) return;
    this.webhooks.enqueue(this.buildMessage(env, event));
  }

  private async sendConnect(
    message: DocusignConnectMessage,
    attempt: number,
  ): Promise<number | 'no-target'> {
    const target = this.target;
    if (!target) return 'no-target';
    // Same message on every try; only retryCount changes (generatedDateTime stays).
    const delivery = docusignDelivery(
      { ...message, retryCount: message.retryCount + attempt },
      target.docusignHmacKeys ?? [],
    );
    return postDelivery(target.hubUrl, delivery);
  }
}

function includes(q: URLSearchParams): Set<string> {
  return new Set(
    q
      .getAll('include')
      .flatMap((v) => v.split(','))
      .map((v) => v.trim())
      .filter(Boolean),
  );
}
