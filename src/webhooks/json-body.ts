import { isUtf8 } from 'node:buffer';

/**
 * The deepest nesting the door takes: far above any provider's events (a Stripe event nests about
 * ten levels), the default recursion limit of serde_json (128). Deeper bodies are refused with 400
 * before anything else reads them: Postgres refuses jsonb nested some 10,000 levels deep (stack
 * depth limit exceeded), and JSON.stringify throws on such values (a HubSpot element is stored
 * re-serialised).
 */
export const MAX_JSON_DEPTH = 128;

/** A body the door cannot read as JSON (answered 400, nothing stored). */
export class MalformedBodyError extends Error {}

/**
 * Reads a verified webhook body: UTF-8 (RFC 8259 §8.1; a malformed byte sequence is refused, not
 * replaced by U+FFFD; a byte order mark is kept and so refused by JSON.parse), valid JSON, nested at
 * most {@link MAX_JSON_DEPTH} levels. Returns the value and its text (stored as received).
 *
 * @throws MalformedBodyError
 */
export function parseJsonBody(rawBody: Buffer): { body: unknown; text: string } {
  // isUtf8 (simdutf) then a plain decode: as strict as a fatal TextDecoder, cheaper on the hot path.
  if (!isUtf8(rawBody)) throw new MalformedBodyError('body is not UTF-8');
  const text = rawBody.toString('utf8');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new MalformedBodyError('body is not valid JSON');
  }
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
    throw new MalformedBodyError(`body nests deeper than ${MAX_JSON_DEPTH} levels`);
  }
  return { body, text };
}

/** Whether valid JSON text opens more than `max` arrays or objects at once (strings skipped). */
function nestsDeeperThan(json: string, max: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}
