/** An access token and when to mint the next one (before the provider's expiry, with a margin). */
export interface CachedToken {
  value: string;
  refreshAt: number;
}

/**
 * An OAuth access token cached until its `refreshAt`, with single flight: concurrent callers share
 * one in-flight token request, and a failed request is not cached (the next caller tries again).
 * One per client (DocuSign's JWT grant, Partner Center's refresh-token grant).
 */
export class TokenCache {
  private token?: CachedToken;
  private request?: Promise<CachedToken>;

  constructor(
    /** Requests a new token from the provider. */
    private readonly mint: () => Promise<CachedToken>,
    private readonly now: () => number = () => Date.now(),
  ) {}

  async get(): Promise<string> {
    const cached = this.token;
    if (cached && this.now() < cached.refreshAt) return cached.value;
    if (!this.request) {
      this.request = this.mint()
        .then((token) => (this.token = token))
        .finally(() => {
          this.request = undefined;
        });
    }
    return (await this.request).value;
  }

  /** After a 401: drops `value` if it is still the cached token, so the next get() mints anew. */
  invalidate(value: string): void {
    if (this.token?.value === value) this.token = undefined;
  }
}
