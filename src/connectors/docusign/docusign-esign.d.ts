/**
 * The part of docusign-esign 10 (which ships no typings; @types/docusign-esign trails it by several
 * majors) that the hub uses. Checked against the package's src/ApiClient.js and
 * src/api/EnvelopesApi.js. HTTP goes through axios: failures reject with an AxiosError
 * (`response.status`, `response.data`, `response.headers`, or `code` for network errors).
 */
declare module 'docusign-esign' {
  export interface DocusignHttpResponse {
    status: number;
    headers: Record<string, string | string[] | undefined>;
  }

  export interface OAuthTokenResponse extends DocusignHttpResponse {
    body: { access_token: string; token_type?: string; expires_in?: number | string };
  }

  export type DocusignCallback<T> = (
    error: unknown,
    data: T | null | undefined,
    response?: DocusignHttpResponse,
  ) => void;

  export class ApiClient {
    constructor(opts?: { basePath?: string; proxy?: string });
    /** Request timeout (ms) of REST calls; the OAuth token request ignores it. */
    timeout: number;
    getBasePath(): string;
    /** Also re-derives the OAuth host from the REST base (demo vs production)! */
    setBasePath(basePath: string): void;
    getOAuthBasePath(): string;
    /** OAuth host[:port], without a scheme; the SDK always speaks https to it. */
    setOAuthBasePath(oAuthBasePath: string): void;
    addDefaultHeader(header: string, value: string): void;
    requestJWTUserToken(
      clientId: string,
      userId: string,
      scopes: string[],
      rsaPrivateKey: Buffer | string,
      expiresIn: number,
    ): Promise<OAuthTokenResponse>;
  }

  export interface Text {
    tabLabel?: string;
    value?: string;
  }
  export interface Tabs {
    textTabs?: Text[];
  }
  export interface TemplateRole {
    email?: string;
    name?: string;
    roleName?: string;
    clientUserId?: string;
    tabs?: Tabs;
  }
  export interface TextCustomField {
    name?: string;
    value?: string;
    /** Booleans are strings in this SDK. */
    show?: 'true' | 'false';
    required?: 'true' | 'false';
    fieldId?: string;
  }
  export interface CustomFields {
    textCustomFields?: TextCustomField[];
  }
  export interface EnvelopeDefinition {
    templateId?: string;
    status?: 'sent' | 'created';
    emailSubject?: string;
    templateRoles?: TemplateRole[];
    customFields?: CustomFields;
  }
  export interface EnvelopeSummary {
    envelopeId?: string;
    status?: string;
    statusDateTime?: string;
    uri?: string;
  }
  export interface Envelope {
    envelopeId?: string;
    status?: string;
    createdDateTime?: string;
    statusChangedDateTime?: string;
    customFields?: CustomFields;
  }
  export interface EnvelopesInformation {
    envelopes?: Envelope[];
    resultSetSize?: string;
    totalSetSize?: string;
    nextUri?: string;
  }
  export interface ListStatusChangesOptions {
    fromDate?: string;
    toDate?: string;
    customField?: string;
    include?: string;
    status?: string;
    count?: string;
    startPosition?: string;
  }

  export class EnvelopesApi {
    constructor(apiClient?: ApiClient);
    createEnvelope(
      accountId: string,
      opts: { envelopeDefinition: EnvelopeDefinition },
      callback: DocusignCallback<EnvelopeSummary>,
    ): unknown;
    listStatusChanges(
      accountId: string,
      opts: ListStatusChangesOptions,
      callback: DocusignCallback<EnvelopesInformation>,
    ): unknown;
    /**
     * GET …/envelopes/{envelopeId}/documents/{documentId}: documentId is a document's id or
     * `combined` (every document as one PDF), `archive` (a ZIP), `certificate` (the certificate of
     * completion alone) or `portfolio`. The SDK asks for `Accept: application/pdf`, reads the body
     * as a stream and answers a Buffer of its chunks ('' for an empty body; a string only when the
     * request carried `Content-Transfer-Encoding: base64`). On an error the AxiosError's
     * `response.data` is that unread stream, not parsed JSON.
     */
    getDocument(
      accountId: string,
      envelopeId: string,
      documentId: string,
      opts: GetDocumentOptions,
      callback: DocusignCallback<Buffer | string>,
    ): unknown;
  }

  export interface GetDocumentOptions {
    /** With `combined`: 'true' appends the certificate of completion. */
    certificate?: 'true' | 'false';
    documentsByUserid?: string;
    encoding?: string;
    encrypt?: string;
    language?: string;
    recipientId?: string;
    sharedUserId?: string;
    showChanges?: string;
    watermark?: string;
  }
}
