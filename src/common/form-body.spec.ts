import { parseFormBody } from './form-body';

describe('parseFormBody', () => {
  it('reads fields, decoding + and percent escapes, and collects a repeated field in order', () => {
    const form = parseFormBody('token=a%2Bb+c&item=x&item=y&item=z&empty=');
    expect(form.token).toBe('a+b c');
    expect(form.item).toEqual(['x', 'y', 'z']);
    expect(form.empty).toBe('');
  });

  it('a __proto__ field is data on a prototype-less object: Object.prototype is untouched', () => {
    const form = parseFormBody('__proto__=polluted&__proto__%5Bx%5D=1&constructor=c&toString=t');
    expect(Object.getPrototypeOf(form)).toBeNull();
    expect(Object.keys(form).sort()).toEqual([
      '__proto__',
      '__proto__[x]',
      'constructor',
      'toString',
    ]);
    expect(form['__proto__']).toBe('polluted');
    expect(form.constructor).toBe('c');
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(Object.prototype).not.toHaveProperty('x');
  });

  it('a field named like an Object method does not merge with the inherited method', () => {
    const form = parseFormBody('hasOwnProperty=1&hasOwnProperty=2&valueOf=v');
    expect(form.hasOwnProperty).toEqual(['1', '2']);
    expect(form.valueOf).toBe('v');
  });
});
