import { financeJa } from './finance.ja';

export type FinanceKey = keyof typeof financeJa;

/** English labels of the reconciliation and the reports queue pages (the keys of finance.ja.ts). */
export const financeEn: Record<FinanceKey, string> = {};
