import { platformProfile } from '../domain/platforms';
import type { Label } from '../domain/platforms';
import { CodeGroup } from './i18n/codes.ja';
import { Lang, Params, Translate, hasMessage } from './i18n/i18n';

/** The codes a page shows in words: the hub's (i18n/codes.*.ts) and a platform's (its profile). */
export type LabelGroup = CodeGroup | 'platformStatus' | 'platformSubstatus';

/**
 * A code in the page's language: `label('stage', 'WON')` → 成約 / Won. A report status or a
 * referral's platform status takes the platform's own words when its profile has them (PRONI's
 * 報告期限前, Partner Center's 受注); a code without a word is shown as it is. Templates keep the
 * code itself beside the word (`data-code`, `title`) so operators and tests can match it.
 */
export type CodeLabel = (
  group: LabelGroup,
  code: string | null | undefined,
  platform?: string | null,
) => string;

export function codeLabeler(lang: Lang, t: Translate): CodeLabel {
  return (group, code, platform) => {
    if (code === null || code === undefined || code === '') return '—';
    const own = platform ? platformWord(group, code, platform) : undefined;
    if (own) return own[lang];
    const key = `${group}.${code}`;
    return hasMessage(lang, key) ? t(key) : code;
  };
}

function platformWord(group: LabelGroup, code: string, platform: string): Label | undefined {
  const profile = platformProfile(platform);
  const words =
    group === 'reportStatus'
      ? profile.reportStatusLabels
      : group === 'platformStatus'
        ? profile.platformStatusLabels
        : group === 'platformSubstatus'
          ? profile.platformSubstatusLabels
          : undefined;
  return words && Object.hasOwn(words, code) ? words[code] : undefined;
}

/** Message parameters that carry codes (a billing line's stage, invoice state, contract status), in words. */
const CODE_PARAMS: Readonly<Record<string, CodeGroup>> = {
  stage: 'stage',
  state: 'invoiceState',
  contract: 'contractStatus',
};

export function labelParams(label: CodeLabel, params: Params): Params {
  return Object.fromEntries(
    Object.entries(params).map(([name, value]) => {
      const group = CODE_PARAMS[name];
      return [name, group && typeof value === 'string' ? label(group, value) : value];
    }),
  );
}
