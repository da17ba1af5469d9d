import type { BillingStatus } from '../../billing/billing.service';
import type { DealStage } from '../../domain/deal-stage';
import type { InvoiceState } from '../../domain/invoice-state';
import type { ContractStatus, ReferralState, ReportStatus } from '../../generated/prisma/client';

/**
 * The hub's own codes in words: deal stages, item billing statuses, invoice states, contract
 * statuses, referral states, and report statuses where the platform has no word of its own (a
 * platform's words live in its profile, src/domain/platforms). Every value of each list has a
 * label (checked by the compiler here and by i18n.spec.ts against the database enums).
 */
export interface CodeLabels {
  stage: Record<DealStage, string>;
  billingStatus: Record<BillingStatus, string>;
  invoiceState: Record<InvoiceState, string>;
  contractStatus: Record<ContractStatus, string>;
  referralState: Record<ReferralState, string>;
  reportStatus: Record<ReportStatus, string>;
}

/** The groups of codes with words (`stage.WON`, `billingStatus.PAID`, …). */
export type CodeGroup = keyof CodeLabels;

type Prefixed<L extends CodeLabels> = {
  [G in keyof L & string as `${G}.${keyof L[G] & string}`]: string;
};

/** `{ stage: { WON: '成約' } }` → `{ 'stage.WON': '成約' }`: message keys of the dictionaries. */
export function prefixed<L extends CodeLabels>(labels: L): Prefixed<L> {
  return Object.fromEntries(
    Object.entries(labels).flatMap(([group, words]) =>
      Object.entries(words as Record<string, string>).map(([code, word]) => [
        `${group}.${code}`,
        word,
      ]),
    ),
  ) as Prefixed<L>;
}

export const CODE_LABELS_JA: CodeLabels = {
  stage: {
    REFERRED: '紹介受付',
    APPOINTMENT: 'アポイント',
    NEGOTIATING: '商談中',
    CONTRACT_SENT: '契約書送付済み',
    WON: '成約',
    DELIVERED: '納品済み',
    CLOSED: '完了',
    LOST: '失注',
    DECLINED: '辞退',
    EXPIRED: '期限切れ',
  },
  billingStatus: {
    NOT_READY: '請求前',
    READY: '請求書発行待ち',
    INVOICE_CREATED: '請求書作成済み',
    INVOICE_POSTED: '請求書送付済み',
    PAID: '入金済み',
    VOID: '無効',
  },
  invoiceState: {
    PENDING: '発行待ち',
    CREATING: '発行中',
    CREATED: '下書き作成済み',
    POSTED: '送付済み',
    PAID: '入金済み',
    VOID: '無効',
    UNCOLLECTIBLE: '回収不能',
  },
  contractStatus: {
    PENDING: '送付待ち',
    CREATING: '作成中',
    SENT: '送付済み',
    DELIVERED: '閲覧済み',
    COMPLETED: '締結済み',
    DECLINED: '署名拒否',
    VOIDED: '無効',
  },
  referralState: {
    OPEN: '回答待ち',
    IN_EVALUATION: '評価中',
    ACCEPTED: '受け入れ済み',
    DECLINED: '辞退',
    SKIPPED: 'スキップ',
    EXPIRED: '期限切れ',
    FAILED: '失敗（期限内に未回答）',
    CLOSED: 'クローズ',
  },
  reportStatus: {
    PENDING: '未報告',
    OVERDUE: '報告期限超過',
    UNDER_REVIEW: '確認中',
    CORRECTION_REQUESTED: '修正依頼',
    REPORTED: '報告済み',
    FEE_ONGOING: '手数料発生中',
    FAILED: '送信失敗',
    DEAD: '送信中止',
    NOT_APPLICABLE: '対象外',
  },
};

export const codesJa = prefixed(CODE_LABELS_JA);
