import { BILLING_STATUSES } from '../../billing/billing.service';
import { DEAL_STAGES } from '../../domain/deal-stage';
import { INVOICE_STATES } from '../../domain/invoice-state';
import { AIMITSU } from '../../domain/platforms/aimitsu';
import { platformProfile } from '../../domain/platforms';
import {
  PARTNER_CENTER,
  PARTNER_CENTER_STATUSES,
  PARTNER_CENTER_SUBSTATUSES,
} from '../../domain/platforms/partner-center';
import {
  ContractStatus,
  DealStage,
  ReferralState,
  ReportStatus,
} from '../../generated/prisma/client';
import { codeLabeler, labelParams } from '../code-labels';
import { en } from './en';
import { Lang, pickLang, translator } from './i18n';
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

  describe('codes in words', () => {
    /** Every value of every list the dashboard prints, from the database enums and the domain. */
    const CODES: Record<string, readonly string[]> = {
      stage: [...new Set([...Object.values(DealStage), ...DEAL_STAGES])],
      billingStatus: BILLING_STATUSES,
      invoiceState: INVOICE_STATES,
      contractStatus: Object.values(ContractStatus),
      referralState: Object.values(ReferralState),
      reportStatus: Object.values(ReportStatus),
    };

    it.each(Object.entries(CODES))(
      'has a Japanese and an English word for every %s, none the raw code',
      (group, codes) => {
        expect(codes.length).toBeGreaterThan(0);
        for (const code of codes) {
          const key = `${group}.${code}`;
          for (const dict of [ja, en] as Record<string, string>[]) {
            expect({ key, word: dict[key] }).toEqual({ key, word: expect.any(String) });
            expect(dict[key].trim()).not.toBe('');
            expect(dict[key]).not.toBe(code);
          }
          expect(ja[key as keyof typeof ja]).not.toBe(en[key as keyof typeof en]);
        }
      },
    );

    it('has a word for every Partner Center status and substatus, in both languages', () => {
      for (const [values, words] of [
        [PARTNER_CENTER_STATUSES, PARTNER_CENTER.platformStatusLabels],
        [PARTNER_CENTER_SUBSTATUSES, PARTNER_CENTER.platformSubstatusLabels],
      ] as const) {
        for (const value of values) {
          expect({ value, ja: words?.[value]?.ja, en: words?.[value]?.en }).toEqual({
            value,
            ja: expect.stringMatching(/\S/),
            en: expect.stringMatching(/\S/),
          });
        }
      }
    });

    it('names report statuses only the hub has, in PRONI アイミツ’s profile, by real statuses', () => {
      const statuses: string[] = Object.values(ReportStatus);
      for (const status of Object.keys(AIMITSU.reportStatusLabels ?? {})) {
        expect(statuses).toContain(status);
      }
    });

    const label = (lang: Lang) => codeLabeler(lang, translator(lang));

    it('speaks the hub’s words for stages and billing statuses in each language', () => {
      expect(label('ja')('stage', 'WON')).toBe('成約');
      expect(label('en')('stage', 'WON')).toBe('Won');
      expect(label('ja')('stage', 'CONTRACT_SENT')).toBe('契約書送付済み');
      expect(label('ja')('billingStatus', 'INVOICE_POSTED')).toBe('請求書送付済み');
      expect(label('en')('billingStatus', 'NOT_READY')).toBe('Not ready');
      expect(label('ja')('referralState', 'IN_EVALUATION')).toBe('評価中');
      // Unknown codes and missing values stay visible as they are.
      expect(label('ja')('stage', 'SOMETHING_NEW')).toBe('SOMETHING_NEW');
      expect(label('ja')('billingStatus', null)).toBe('—');
    });

    it('takes a platform’s own words for report statuses and referral statuses, the hub’s otherwise', () => {
      const ja = label('ja');
      expect(ja('reportStatus', 'PENDING', 'aimitsu')).toBe('報告期限前');
      expect(ja('reportStatus', 'PENDING', 'proni')).toBe('報告期限前');
      expect(ja('reportStatus', 'OVERDUE', 'aimitsu')).toBe('報告期限超過');
      expect(ja('reportStatus', 'UNDER_REVIEW', 'aimitsu')).toBe('事務局確認中');
      expect(ja('reportStatus', 'CORRECTION_REQUESTED', 'aimitsu')).toBe('修正依頼');
      expect(ja('reportStatus', 'REPORTED', 'aimitsu')).toBe('報告済み');
      expect(ja('reportStatus', 'FEE_ONGOING', 'aimitsu')).toBe('成約手数料発生中');
      // PRONI has no word for a delivery failure; the hub's is used. Other platforms: the hub's.
      expect(ja('reportStatus', 'DEAD', 'aimitsu')).toBe('送信中止');
      expect(ja('reportStatus', 'PENDING', 'partner-center')).toBe(ja('reportStatus', 'PENDING'));
      expect(ja('reportStatus', 'PENDING')).not.toBe('報告期限前');
      expect(label('en')('reportStatus', 'UNDER_REVIEW', 'aimitsu')).toBe(
        'Under review by the secretariat',
      );

      expect(ja('platformStatus', 'Closed', 'partner-center')).toBe('クローズ済み');
      expect(ja('platformSubstatus', 'Won', 'partner-center')).toBe('受注');
      expect(label('en')('platformSubstatus', 'Won', 'partner-center')).toBe('Won');
      // A generic platform's own status words are shown as it sent them.
      expect(platformProfile('acme-leads').platformStatusLabels).toBeUndefined();
      expect(ja('platformStatus', 'qualified', 'acme-leads')).toBe('qualified');
      // Object keys are not words.
      expect(ja('platformStatus', 'constructor', 'partner-center')).toBe('constructor');
    });

    it('puts a billing line’s stage, invoice state and contract status into words', () => {
      expect(
        labelParams(label('ja'), {
          stage: 'NEGOTIATING',
          state: 'POSTED',
          contract: 'SENT',
          label: 'WON',
        }),
      ).toEqual({ stage: '商談中', state: '送付済み', contract: '送付済み', label: 'WON' });
    });
  });
});
