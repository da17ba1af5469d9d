/** Japanese labels of the dashboard's reconciliation and the reports queue pages. */
export const financeJa = {} as const;
