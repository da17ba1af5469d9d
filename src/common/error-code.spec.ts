import { AdminErrorCode } from '../admin/admin-error-code';
import { ReferralErrorCode } from '../lifecycle/referral-error-code';
import { WebhookErrorCode } from '../webhooks/webhook-error-code';
import { CommonErrorCode } from './error-code';

/** Every enum of error codes (src/common/error-code.ts: ErrorCodes). */
const ENUMS: Record<string, Record<string, string>> = {
  CommonErrorCode,
  AdminErrorCode,
  WebhookErrorCode,
  ReferralErrorCode,
};

describe('error codes', () => {
  const all = Object.entries(ENUMS).flatMap(([name, codes]) =>
    Object.entries(codes).map(([member, value]) => ({ name, member, value })),
  );

  it('are SCREAMING_SNAKE strings', () => {
    const bad = all.filter((c) => !/^[A-Z][A-Z0-9_]*$/.test(c.value));
    expect(bad).toEqual([]);
  });

  it('belong to one enum each: no value is declared twice, within a module or across modules', () => {
    const owners = new Map<string, string[]>();
    for (const c of all)
      owners.set(c.value, [...(owners.get(c.value) ?? []), `${c.name}.${c.member}`]);
    const twice = [...owners].filter(([, where]) => where.length > 1);
    expect(twice).toEqual([]);
  });

  it('keep the codes the answers have always carried', () => {
    // The codes are part of the public contract: renaming a member must not change its value.
    expect(CommonErrorCode.NotFound).toBe('NOT_FOUND');
    expect(CommonErrorCode.ValidationFailed).toBe('VALIDATION_FAILED');
    expect(AdminErrorCode.InvalidBillingPlan).toBe('INVALID_BILLING_PLAN');
    expect(WebhookErrorCode.InvalidSignature).toBe('INVALID_SIGNATURE');
    expect(ReferralErrorCode.ReferralAnswered).toBe('REFERRAL_ANSWERED');
  });
});
