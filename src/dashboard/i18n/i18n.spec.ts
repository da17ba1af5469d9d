import { en } from './en';
import { pickLang, translator } from './i18n';
import { ja } from './ja';

describe('dashboard i18n', () => {
  it('has every key in both Japanese and English, none empty', () => {
    expect(Object.keys(en).sort()).toEqual(Object.keys(ja).sort());
    for (const [key, value] of [...Object.entries(ja), ...Object.entries(en)]) {
      expect(`${key}=${value.trim()}`).not.toMatch(/=$/);
    }
  });

  it('uses the same placeholders in both languages', () => {
    const names = (s: string) => [...s.matchAll(/\{(\w+)\}/g)].map((m) => m[1]).sort();
    for (const key of Object.keys(ja) as (keyof typeof ja)[]) {
      expect({ key, names: names(en[key]) }).toEqual({ key, names: names(ja[key]) });
    }
  });

  it('fills placeholders and leaves unknown ones visible', () => {
    const t = translator('en');
    expect(t('deal.title', { id: 'cl_deal_1' })).toBe('Deal cl_deal_1');
    expect(t('deal.title')).toBe('Deal {id}');
    expect(translator('ja')('deal.title', { id: 'x' })).toBe('案件 x');
  });

  it('picks the cookie, then Accept-Language, then Japanese', () => {
    expect(pickLang('en', 'ja')).toBe('en');
    expect(pickLang(undefined, 'en-US,en;q=0.9,ja;q=0.8')).toBe('en');
    expect(pickLang(undefined, 'fr-FR, ja;q=0.5, en;q=0.4')).toBe('ja');
    expect(pickLang(undefined, 'en;q=0, de')).toBe('ja');
    expect(pickLang('xx', undefined)).toBe('ja');
  });
});
