import {
  MAX_AMOUNT,
  MoneyError,
  ZERO_DECIMAL_CURRENCIES,
  currencyExponent,
  formatMoney,
  isAmount,
  toAmount,
  toMajorUnits,
  percentOf,
  taxOf,
  toMinorUnits,
} from './money';

describe('currencyExponent', () => {
  it.each(['BIF', 'CLP', 'DJF', 'GNF', 'JPY', 'KMF', 'KRW', 'MGA', 'PYG', 'RWF', 'UGX', 'VND'])(
    '%s is zero-decimal',
    (code) => {
      expect(currencyExponent(code)).toBe(0);
    },
  );

  it('lists exactly the 16 zero-decimal currencies of provider-facts §3.6', () => {
    expect([...ZERO_DECIMAL_CURRENCIES].sort()).toEqual(
      'BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF UGX VND VUV XAF XOF XPF'.split(' '),
    );
  });

  it('is case-insensitive', () => {
    expect(currencyExponent('jpy')).toBe(0);
    expect(currencyExponent('Jpy')).toBe(0);
    expect(currencyExponent('usd')).toBe(2);
  });

  it('is 2 for other currencies, including the three-decimal ones the fact sheet does not list', () => {
    expect(currencyExponent('USD')).toBe(2);
    expect(currencyExponent('EUR')).toBe(2);
    expect(currencyExponent('KWD')).toBe(2);
  });

  it('refuses something that is not a currency code', () => {
    expect(() => currencyExponent('yen!')).toThrow(
      new MoneyError('"yen!" is not a 3-letter ISO 4217 currency code'),
    );
    expect(() => currencyExponent('')).toThrow(MoneyError);
  });
});

describe('toMinorUnits', () => {
  it('reads HubSpot decimal strings as they are written', () => {
    expect(toMinorUnits('300000', 'jpy')).toBe(300000);
    expect(toMinorUnits('1200.5', 'usd')).toBe(120050);
    expect(toMinorUnits('1200.05', 'USD')).toBe(120005);
    expect(toMinorUnits('0.01', 'usd')).toBe(1);
    expect(toMinorUnits('0', 'jpy')).toBe(0);
    expect(toMinorUnits(' 42 ', 'jpy')).toBe(42);
  });

  it('has no floating-point drift', () => {
    // Number('1.15') * 100 is 114.99999999999999; 4.35 * 100 is 434.99999999999994
    expect(toMinorUnits('1.15', 'usd')).toBe(115);
    expect(toMinorUnits('4.35', 'usd')).toBe(435);
    expect(toMinorUnits('1234567890123.45', 'usd')).toBe(123456789012345);
  });

  it('ignores trailing zeros in the fraction', () => {
    expect(toMinorUnits('300000.00', 'jpy')).toBe(300000);
    expect(toMinorUnits('10.500', 'usd')).toBe(1050);
  });

  it('accepts finite non-negative numbers', () => {
    expect(toMinorUnits(300000, 'jpy')).toBe(300000);
    expect(toMinorUnits(1200.5, 'usd')).toBe(120050);
    expect(toMinorUnits(4.35, 'usd')).toBe(435);
  });

  it('refuses more decimals than the currency has', () => {
    expect(() => toMinorUnits('1000.5', 'jpy')).toThrow(
      new MoneyError('JPY has no decimals (got "1000.5")'),
    );
    expect(() => toMinorUnits('1.234', 'usd')).toThrow(
      new MoneyError('USD has at most 2 decimals (got "1.234")'),
    );
    expect(() => toMinorUnits(0.1 + 0.2, 'usd')).toThrow(
      'USD has at most 2 decimals (got "0.30000000000000004")',
    );
  });

  it('refuses negative amounts', () => {
    expect(() => toMinorUnits('-5', 'jpy')).toThrow(
      new MoneyError('amount must not be negative (got "-5")'),
    );
    expect(() => toMinorUnits(-5, 'jpy')).toThrow(
      new MoneyError('amount must not be negative (got -5)'),
    );
  });

  it.each(['1,200', '', '  ', '1e5', '+5', '.5', '5.', '12a', '¥100', '1 000', 'NaN'])(
    'refuses "%s"',
    (text) => {
      expect(() => toMinorUnits(text, 'jpy')).toThrow(MoneyError);
      expect(() => toMinorUnits(text, 'jpy')).toThrow(/is not a plain decimal amount/);
    },
  );

  it('refuses non-finite numbers, tiny numbers in exponent form and unsafe results', () => {
    expect(() => toMinorUnits(Number.NaN, 'jpy')).toThrow(new MoneyError('NaN is not an amount'));
    expect(() => toMinorUnits(Infinity, 'jpy')).toThrow(MoneyError);
    expect(() => toMinorUnits(1e-7, 'usd')).toThrow(/not a plain decimal/);
    expect(() => toMinorUnits('90071992547409.92', 'usd')).toThrow(
      new MoneyError('"90071992547409.92" USD is too large'),
    );
    expect(toMinorUnits('90071992547409.91', 'usd')).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('refuses a bad currency', () => {
    expect(() => toMinorUnits('1', 'en')).toThrow(MoneyError);
  });
});

describe('toMajorUnits', () => {
  it('writes the major unit without grouping: JPY has no decimals, USD two', () => {
    expect(toMajorUnits(400000, 'jpy')).toBe('400000');
    expect(toMajorUnits(123450, 'usd')).toBe('1234.50');
    expect(toMajorUnits(5, 'usd')).toBe('0.05');
    expect(toMajorUnits(-5, 'USD')).toBe('-0.05');
  });

  it('round-trips with toMinorUnits', () => {
    for (const [minor, cur] of [
      [0, 'jpy'],
      [99, 'usd'],
      [100001, 'eur'],
    ] as const) {
      expect(toMinorUnits(toMajorUnits(minor, cur), cur)).toBe(minor);
    }
  });
});

describe('formatMoney', () => {
  it('shows yen without decimals, with the half-width yen sign', () => {
    expect(formatMoney(300000, 'jpy')).toBe('¥300,000');
    expect(formatMoney(0, 'JPY')).toBe('¥0');
  });

  it('divides two-decimal currencies', () => {
    expect(formatMoney(100050, 'usd', 'en-US')).toBe('$1,000.50');
    expect(formatMoney(100000, 'usd', 'en-US')).toBe('$1,000.00');
    expect(formatMoney(5, 'usd', 'en-US')).toBe('$0.05');
  });

  it('refuses non-integer amounts', () => {
    expect(() => formatMoney(1.5, 'jpy')).toThrow(MoneyError);
  });
});

describe('percentOf', () => {
  it('resolves the contract example', () => {
    expect(percentOf(400000, 30)).toBe(120000);
  });

  it('rounds half up', () => {
    expect(percentOf(5, 50)).toBe(3); // 2.5
    expect(percentOf(3, 50)).toBe(2); // 1.5
    expect(percentOf(1, 50)).toBe(1); // 0.5
    expect(percentOf(1, 49)).toBe(0); // 0.49
    expect(percentOf(333, 10)).toBe(33); // 33.3
    expect(percentOf(335, 10)).toBe(34); // 33.5
  });

  it('is exact on decimal percents (no float drift)', () => {
    // 1000 × 33.33 / 100 = 333.3 → 333
    expect(percentOf(1000, 33.33)).toBe(333);
    expect(percentOf(100, 0.5)).toBe(1); // 0.5
    // 12.5% of 1 is 0.125 → 0; of 4 is 0.5 → 1
    expect(percentOf(1, 12.5)).toBe(0);
    expect(percentOf(4, 12.5)).toBe(1);
    // 2.3% of 1500 is 34.5 → 35; in floating point 1500 * 2.3 / 100 is 34.49999999999999
    expect(percentOf(1500, 2.3)).toBe(35);
    expect(percentOf(2500, 1.14)).toBe(29); // 28.5
    expect(percentOf(10, 15)).toBe(2); // 1.5
    expect(percentOf(70, 0.5)).toBe(0); // 0.35
    expect(percentOf(90, 0.5)).toBe(0); // 0.45
    expect(percentOf(110, 0.5)).toBe(1); // 0.55
    expect(percentOf(Number.MAX_SAFE_INTEGER, 100)).toBe(Number.MAX_SAFE_INTEGER);
  });

  it('handles 0 and 100', () => {
    expect(percentOf(400000, 0)).toBe(0);
    expect(percentOf(400000, 100)).toBe(400000);
    expect(percentOf(0, 30)).toBe(0);
  });

  it('refuses bad input', () => {
    expect(() => percentOf(-1, 10)).toThrow(MoneyError);
    expect(() => percentOf(1.5, 10)).toThrow(MoneyError);
    expect(() => percentOf(100, 101)).toThrow(
      new MoneyError('percent must be between 0 and 100 (got 101)'),
    );
    expect(() => percentOf(100, -1)).toThrow(MoneyError);
    expect(() => percentOf(100, Number.NaN)).toThrow(MoneyError);
  });
});

describe('taxOf', () => {
  it('is amount × rate / 100, rounded half up', () => {
    expect(taxOf(120000, 10)).toBe(12000);
    expect(taxOf(300000, 10)).toBe(30000);
    expect(taxOf(1005, 10)).toBe(101); // 100.5 → 101
    expect(taxOf(1004, 10)).toBe(100); // 100.4
    expect(taxOf(999, 8)).toBe(80); // 79.92
    expect(taxOf(12345, 0)).toBe(0);
    expect(taxOf(0, 10)).toBe(0);
  });

  it("agrees with the simulator's Math.round(amount × rate / 100) where that is exact", () => {
    for (const [amount, rate] of [
      [1234567, 7.8],
      [333, 2.2],
      [19999, 8],
      [105, 10],
    ]) {
      expect(taxOf(amount, rate)).toBe(Math.round((amount * rate) / 100));
    }
  });

  it('refuses bad input', () => {
    expect(() => taxOf(-1, 10)).toThrow(MoneyError);
    expect(() => taxOf(10.5, 10)).toThrow(MoneyError);
    expect(() => taxOf(100, 150)).toThrow(
      new MoneyError('tax rate must be between 0 and 100 (got 150)'),
    );
  });
});

describe('amounts of real size (CONTRACT §4: up to 999,999,999,999)', () => {
  it('takes amounts from 0 to 999,999,999,999 and nothing beyond', () => {
    expect(MAX_AMOUNT).toBe(999_999_999_999);
    expect(isAmount(0)).toBe(true);
    expect(isAmount(999_999_999_999)).toBe(true);
    expect(isAmount(1_000_000_000_000)).toBe(false);
    expect(isAmount(-1)).toBe(false);
    expect(isAmount(1.5)).toBe(false);
    expect(isAmount('1000')).toBe(false);
  });

  it('reads an incoming amount up to 999,999,999,999 and refuses more (toAmount)', () => {
    expect(toAmount('3000000000', 'jpy')).toBe(3_000_000_000);
    expect(toAmount('999999999999', 'JPY')).toBe(999_999_999_999);
    expect(toAmount('9999999999.99', 'usd')).toBe(999_999_999_999);
    expect(() => toAmount('1000000000000', 'jpy')).toThrow(
      new MoneyError(
        '1,000,000,000,000 in the smallest unit of JPY is more than the hub takes (at most 999,999,999,999)',
      ),
    );
    expect(() => toAmount('10000000000.00', 'usd')).toThrow(MoneyError);
  });

  it('converts between units exactly at these sizes', () => {
    expect(toMinorUnits('999999999999', 'jpy')).toBe(999_999_999_999);
    expect(toMinorUnits('9999999999.99', 'usd')).toBe(999_999_999_999);
    expect(toMajorUnits(999_999_999_999, 'jpy')).toBe('999999999999');
    expect(toMajorUnits(999_999_999_999, 'usd')).toBe('9999999999.99');
    expect(toMajorUnits(3_000_000_000, 'jpy')).toBe('3000000000');
    expect(() => toMajorUnits(1.5, 'usd')).toThrow(MoneyError);
    expect(formatMoney(3_000_000_000, 'jpy')).toBe('¥3,000,000,000');
    expect(formatMoney(999_999_999_999, 'usd', 'en-US')).toBe('$9,999,999,999.99');
  });

  it('takes percents of large amounts exactly, rounding half up', () => {
    expect(percentOf(3_000_000_000, 30)).toBe(900_000_000);
    expect(percentOf(3_000_000_000, 2.5)).toBe(75_000_000);
    // 999,999,999,999 × 33.33 % = 333,299,999,999.66667 → 333,300,000,000
    expect(percentOf(999_999_999_999, 33.33)).toBe(333_300_000_000);
    // 999,999,999,999 × 0.5 % = 4,999,999,999.995 → 5,000,000,000
    expect(percentOf(999_999_999_999, 0.5)).toBe(5_000_000_000);
    // 999,999,999,995 × 10 % = 99,999,999,999.5 → 100,000,000,000 (half up)
    expect(percentOf(999_999_999_995, 10)).toBe(100_000_000_000);
    expect(percentOf(999_999_999_999, 100)).toBe(999_999_999_999);
  });

  it('takes tax exactly where floating point rounds the wrong way', () => {
    // 999,999,999,500 × 4.1 % = 40,999,999,979.5 → 40,999,999,980; Math.round in floating point
    // gives 40,999,999,979 (the product is a hair below the half).
    expect(Math.round((999_999_999_500 * 4.1) / 100)).toBe(40_999_999_979);
    expect(taxOf(999_999_999_500, 4.1)).toBe(40_999_999_980);
    // 1,500 × 4.1 % = 61.5 → 62 (floating point: 61)
    expect(taxOf(1_500, 4.1)).toBe(62);
    expect(taxOf(3_000_000_000, 10)).toBe(300_000_000);
    expect(taxOf(999_999_999_999, 10)).toBe(100_000_000_000); // 99,999,999,999.9
    expect(taxOf(90_909_090, 10)).toBe(9_090_909); // the largest ¥ item one Stripe invoice takes at 10 %
  });
});
