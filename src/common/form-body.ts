/** A parsed HTML form: field name → value, or the values of a repeated field in order. */
export type FormBody = Record<string, string | string[]>;

/**
 * An `application/x-www-form-urlencoded` body as an object without a prototype, so that a field
 * named `__proto__`, `constructor` or `hasOwnProperty` is only ever data: it can neither reach
 * Object.prototype nor shadow a method a handler calls. A repeated field becomes an array.
 */
export function parseFormBody(body: string): FormBody {
  const out = Object.create(null) as FormBody;
  for (const [key, value] of new URLSearchParams(body)) {
    const prev = Object.hasOwn(out, key) ? out[key] : undefined;
    out[key] = prev === undefined ? value : Array.isArray(prev) ? [...prev, value] : [prev, value];
  }
  return out;
}
