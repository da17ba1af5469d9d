import { MAX_JSON_DEPTH, MalformedBodyError, parseJsonBody } from './json-body';

const nested = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

function refusal(raw: Buffer): string | undefined {
  try {
    parseJsonBody(raw);
    return undefined;
  } catch (err) {
    if (err instanceof MalformedBodyError) return err.message;
    throw err;
  }
}

describe('parseJsonBody', () => {
  it('returns the value and its text as received', () => {
    const text = ' {"a":[1,{"b":"請求書 🧾"}]} ';
    expect(parseJsonBody(Buffer.from(text))).toEqual({
      body: { a: [1, { b: '請求書 🧾' }] },
      text,
    });
  });

  it('refuses bytes that are not UTF-8 instead of reading them as U+FFFD', () => {
    expect(refusal(Buffer.from('{"name":"café"}', 'latin1'))).toBe('body is not UTF-8');
    expect(refusal(Buffer.from('{"a":1}', 'utf16le'))).toBe('body is not valid JSON'); // NULs
    expect(refusal(Buffer.from([0x1f, 0x8b, 0x08, 0x00]))).toBe('body is not UTF-8'); // gzip
  });

  it('keeps a byte order mark, which JSON.parse refuses', () => {
    const bom = Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), Buffer.from('{}')]);
    expect(refusal(bom)).toBe('body is not valid JSON');
  });

  it(`takes ${MAX_JSON_DEPTH} levels of nesting and refuses one more, whatever the brackets`, () => {
    expect(parseJsonBody(Buffer.from(nested(MAX_JSON_DEPTH))).text).toHaveLength(
      2 * MAX_JSON_DEPTH,
    );
    expect(refusal(Buffer.from(nested(MAX_JSON_DEPTH + 1)))).toBe(
      `body nests deeper than ${MAX_JSON_DEPTH} levels`,
    );
    const objects = `${'{"a":'.repeat(MAX_JSON_DEPTH + 1)}1${'}'.repeat(MAX_JSON_DEPTH + 1)}`;
    expect(refusal(Buffer.from(objects))).toMatch(/nests deeper/);
    expect(refusal(Buffer.from(nested(10_000)))).toMatch(/nests deeper/);
  });

  it('does not count brackets inside strings (escaped quotes included)', () => {
    const inString = JSON.stringify({ s: `\\"${'['.repeat(MAX_JSON_DEPTH * 2)}` });
    expect(parseJsonBody(Buffer.from(inString)).body).toEqual(JSON.parse(inString));
  });

  it('refuses an empty body and text that is not JSON', () => {
    expect(refusal(Buffer.alloc(0))).toBe('body is not valid JSON');
    expect(refusal(Buffer.from('{"a":1}x'))).toBe('body is not valid JSON');
  });
});
