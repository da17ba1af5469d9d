import nock from 'nock';

/** Test helpers of the signed-webhook client specs (report and alert webhooks). */

export interface CapturedRequest {
  headers: Record<string, string>;
  raw: string;
}

/** A nock receiver for one POST to `origin` + `path`: replies `status` and records the request. */
export function nockReceiver(
  origin: string,
  path: string,
  status: number,
  body = '',
  headers: Record<string, string> = {},
) {
  const captured: CapturedRequest[] = [];
  const scope = nock(origin)
    .post(path)
    .reply(function (_uri, requestBody) {
      captured.push({
        headers: this.req.headers as Record<string, string>,
        raw: typeof requestBody === 'string' ? requestBody : JSON.stringify(requestBody),
      });
      return [status, body, headers];
    });
  return { scope, captured };
}

/** The error a send was expected to fail with. */
export async function rejectionOf(sending: Promise<unknown>): Promise<Error> {
  const err: unknown = await sending.then(
    () => undefined,
    (e: unknown) => e,
  );
  if (!(err instanceof Error)) throw new Error('send() was expected to fail');
  return err;
}
