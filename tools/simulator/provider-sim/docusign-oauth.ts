import { generateKeyPairSync } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';

import * as jwt from 'jsonwebtoken';
import { generate } from 'selfsigned';

import { DocusignSim, DocusignTokenStore } from './docusign.sim';

/*
 * A stand-in for DocuSign's OAuth server (account-d.docusign.com) for the JWT grant
 * (provider-facts §1.5). `docusign-esign` always speaks https to the OAuth host
 * (`baseURL: https://${oAuthBasePath}`), so this serves TLS with a self-signed certificate for
 * 127.0.0.1/localhost that the hub process trusts through NODE_EXTRA_CA_CERTS.
 * A test, demo and benchmark aid; never a code path of the hub.
 */

export const DOCUSIGN_JWT_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:jwt-bearer';

export interface DocusignOAuthOptions {
  /** Port on 127.0.0.1 (default: any free port). */
  port?: number;
  integrationKey: string;
  userId: string;
  /** The integration's RSA public key (PEM); JWTs must be RS256-signed with its private key. */
  publicKeyPem: string;
  accountId: string;
  /** Account base URI returned by /oauth/userinfo, e.g. `http://127.0.0.1:4010` (the REST API is `${baseUri}/restapi`). */
  baseUri: string;
  /** Directory for `docusign-sim-ca.pem` (created if missing). */
  certDir: string;
  /** Where issued tokens go: the DocusignSim (its store) or a store; default a new store. */
  tokens?: DocusignSim | DocusignTokenStore;
  /** `expires_in` of issued tokens (default 3600 s). */
  expiresIn?: number;
  /** Whether the user granted consent to the integration key (default true). */
  consent?: boolean;
  userName?: string;
  email?: string;
  accountName?: string;
}

export interface DocusignOAuthServer {
  /** `127.0.0.1:<port>`: the value for DOCUSIGN_OAUTH_BASE and `ApiClient.setOAuthBasePath`. */
  host: string;
  port: number;
  /** The PEM certificate to trust (NODE_EXTRA_CA_CERTS). */
  caPath: string;
  caPem: string;
  tokens: DocusignTokenStore;
  /** POST /oauth/token requests so far (any outcome). */
  readonly tokenRequests: number;
  /** Tokens issued so far. */
  readonly tokensIssued: number;
  readonly userInfoRequests: number;
  /** Simulates consent being revoked (`consent_required`) or granted. */
  setConsent(granted: boolean): void;
  setExpiresIn(seconds: number): void;
  resetCounters(): void;
  close(): Promise<void>;
}

/** An RSA key pair for the integration key: PKCS#1 private PEM (DOCUSIGN_PRIVATE_KEY, the format DocuSign hands out) and SPKI public PEM. */
export function generateDocusignKeyPair(): { privateKeyPem: string; publicKeyPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/** A self-signed certificate (CA:true, serverAuth) for 127.0.0.1 and localhost. */
export function generateLocalTlsCertificate(): { keyPem: string; certPem: string } {
  const keyPair = generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  // selfsigned@2 reads `keyPair` (skips slow node-forge key generation) but omits it from its typings.
  const options: Parameters<typeof generate>[1] & {
    keyPair: { publicKey: string; privateKey: string };
  } = {
    days: 30,
    algorithm: 'sha256',
    keyPair,
    extensions: [
      { name: 'basicConstraints', cA: true },
      { name: 'keyUsage', keyCertSign: true, digitalSignature: true, keyEncipherment: true },
      { name: 'extKeyUsage', serverAuth: true },
      {
        name: 'subjectAltName',
        altNames: [
          { type: 2, value: 'localhost' },
          { type: 7, ip: '127.0.0.1' },
        ],
      },
    ],
  };
  const pems = generate(
    [
      { name: 'commonName', value: 'localhost' },
      { name: 'organizationName', value: 'closeloop provider simulator' },
    ],
    options,
  );
  return { keyPem: keyPair.privateKey, certPem: pems.cert };
}

function readBody(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

function reply(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

/** Form (what the SDK sends) or JSON. */
function parseForm(raw: Buffer, contentType: string | undefined): Record<string, string> {
  const text = raw.toString('utf8');
  if ((contentType ?? '').includes('json')) {
    try {
      const v = JSON.parse(text) as unknown;
      if (v && typeof v === 'object') {
        return Object.fromEntries(
          Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, String(x)]),
        );
      }
    } catch {
      return {};
    }
    return {};
  }
  return Object.fromEntries(new URLSearchParams(text));
}

/**
 * Starts the OAuth server. `POST /oauth/token` (JWT grant) checks the RS256 signature with
 * `publicKeyPem`, `iss` = integrationKey, `sub` = userId, `aud` = this server's host exactly as
 * docusign-esign puts it (`127.0.0.1:<port>`, i.e. the value given to `setOAuthBasePath`; also
 * `localhost:<port>`), `scope` containing `signature`, and `exp` in the future.
 */
export async function startDocusignOAuth(opts: DocusignOAuthOptions): Promise<DocusignOAuthServer> {
  const tokens =
    opts.tokens instanceof DocusignSim
      ? opts.tokens.tokens
      : (opts.tokens ?? new DocusignTokenStore());
  const { keyPem, certPem } = generateLocalTlsCertificate();
  mkdirSync(opts.certDir, { recursive: true });
  const caPath = join(opts.certDir, 'docusign-sim-ca.pem');
  writeFileSync(caPath, certPem);

  let consent = opts.consent ?? true;
  let expiresIn = opts.expiresIn ?? 3600;
  let tokenRequests = 0;
  let tokensIssued = 0;
  let userInfoRequests = 0;
  let audiences: string[] = [];

  const onToken = async (req: IncomingMessage, res: ServerResponse) => {
    tokenRequests++;
    const form = parseForm(await readBody(req), req.headers['content-type']);
    if (form.grant_type !== DOCUSIGN_JWT_GRANT_TYPE) {
      return reply(res, 400, { error: 'unsupported_grant_type' });
    }
    if (!form.assertion) return reply(res, 400, { error: 'invalid_request' });
    let claims: jwt.JwtPayload;
    try {
      const decoded = jwt.verify(form.assertion, opts.publicKeyPem, { algorithms: ['RS256'] });
      if (typeof decoded === 'string') throw new Error('not a JSON payload');
      claims = decoded;
    } catch (err) {
      const expired = err instanceof jwt.TokenExpiredError;
      return reply(res, 400, {
        error: 'invalid_grant',
        error_description: expired ? 'expired' : 'no_valid_keys_or_signatures',
      });
    }
    if (claims.iss !== opts.integrationKey) {
      return reply(res, 400, { error: 'invalid_grant', error_description: 'issuer_not_found' });
    }
    if (claims.sub !== opts.userId) {
      return reply(res, 400, { error: 'invalid_grant', error_description: 'user_not_found' });
    }
    const aud = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
    if (!aud.some((a) => typeof a === 'string' && audiences.includes(a))) {
      return reply(res, 400, { error: 'invalid_grant', error_description: 'invalid_audience' });
    }
    if (typeof claims.exp !== 'number') {
      return reply(res, 400, { error: 'invalid_grant', error_description: 'expired' });
    }
    const scopes = String(claims.scope ?? '').split(/\s+/);
    if (!scopes.includes('signature')) {
      return reply(res, 400, { error: 'invalid_scope' });
    }
    if (!consent) return reply(res, 400, { error: 'consent_required' });
    tokensIssued++;
    return reply(res, 200, {
      access_token: tokens.issue(opts.userId, expiresIn),
      token_type: 'Bearer',
      expires_in: expiresIn,
    });
  };

  const onUserInfo = (req: IncomingMessage, res: ServerResponse) => {
    userInfoRequests++;
    const token = /^Bearer\s+(\S+)\s*$/i.exec(req.headers.authorization ?? '')?.[1];
    if (!tokens.check(token).ok) {
      return reply(res, 401, { error: 'internal_server_error', reference_id: 'sim-invalid-token' });
    }
    const name = opts.userName ?? 'Closeloop Integration';
    return reply(res, 200, {
      sub: opts.userId,
      name,
      given_name: name.split(' ')[0],
      family_name: name.split(' ').slice(1).join(' '),
      created: '2025-01-01T00:00:00.000',
      email: opts.email ?? 'integration@closeloop.example',
      accounts: [
        {
          account_id: opts.accountId,
          is_default: true,
          account_name: opts.accountName ?? 'Closeloop Demo Account',
          base_uri: opts.baseUri,
        },
      ],
    });
  };

  const server: Server = createServer({ key: keyPem, cert: certPem }, (req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    const handle = async () => {
      if (req.method === 'POST' && path === '/oauth/token') return onToken(req, res);
      if (req.method === 'GET' && path === '/oauth/userinfo') return onUserInfo(req, res);
      return reply(res, 404, { error: 'not_found' });
    };
    handle().catch(() => {
      if (!res.headersSent) reply(res, 500, { error: 'internal_server_error' });
    });
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  audiences = [`127.0.0.1:${port}`, `localhost:${port}`];

  return {
    host: `127.0.0.1:${port}`,
    port,
    caPath,
    caPem: certPem,
    tokens,
    get tokenRequests() {
      return tokenRequests;
    },
    get tokensIssued() {
      return tokensIssued;
    },
    get userInfoRequests() {
      return userInfoRequests;
    },
    setConsent(granted: boolean) {
      consent = granted;
    },
    setExpiresIn(seconds: number) {
      expiresIn = seconds;
    },
    resetCounters() {
      tokenRequests = 0;
      tokensIssued = 0;
      userInfoRequests = 0;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
