import { en } from './en';
import { MessageKey, ja } from './ja';

export type Lang = 'ja' | 'en';
export const LANGS: readonly Lang[] = ['ja', 'en'];
export const LANG_COOKIE = 'cl_lang';

const DICTIONARIES: Record<Lang, Record<MessageKey, string>> = { ja, en };

export type Params = Record<string, string | number | null | undefined>;
export type Translate = (key: MessageKey, params?: Params) => string;

/** A translator for one language; `{name}` placeholders take `params` (missing ones stay visible). */
export function translator(lang: Lang): Translate {
  const dict = DICTIONARIES[lang];
  return (key, params) =>
    dict[key].replace(/\{(\w+)\}/g, (whole, name: string) => {
      const v = params?.[name];
      return v === undefined || v === null ? whole : String(v);
    });
}

/** Whether a message key exists (for keys built from codes, which may name a code without a word). */
export function hasMessage(lang: Lang, key: string): key is MessageKey {
  return Object.hasOwn(DICTIONARIES[lang], key);
}

/** The cl_lang cookie, else the first of Accept-Language we speak, else Japanese. */
export function pickLang(cookie: string | undefined, acceptLanguage: string | undefined): Lang {
  if (cookie === 'ja' || cookie === 'en') return cookie;
  const ranked = (acceptLanguage ?? '')
    .split(',')
    .map((part, i) => {
      const [tag, ...rest] = part.trim().toLowerCase().split(';');
      const q = rest.map((r) => /^q=([\d.]+)$/.exec(r.trim())?.[1]).find(Boolean);
      return { lang: tag.split('-')[0], q: q === undefined ? 1 : Number(q), i };
    })
    .filter((x) => x.q > 0)
    .sort((a, b) => b.q - a.q || a.i - b.i);
  for (const { lang } of ranked) if (lang === 'ja' || lang === 'en') return lang;
  return 'ja';
}

export type { MessageKey };
