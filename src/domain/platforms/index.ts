/**
 * The referral platform registry: a platform's name (any alias, any case) → its profile. A name
 * no profile claims is a generic platform (signed webhook or manual queue, CONTRACT §3.5 `generic`).
 */
import { AIMITSU } from './aimitsu';
import { genericProfile } from './generic';
import { PARTNER_CENTER } from './partner-center';
import type { PlatformProfile } from './profile';

export type {
  Label,
  PlatformProfile,
  ReferralAnswer,
  ReferralFacts,
  ResponseClockKind,
} from './profile';
export { REFERRAL_ANSWERS } from './profile';

/** The platforms with a profile of their own. */
export const PLATFORM_PROFILES: readonly PlatformProfile[] = [PARTNER_CENTER, AIMITSU];

const squash = (name: string) =>
  name
    .normalize('NFKC')
    .toLowerCase()
    .replace(/[\s_-]+/g, '');

const BY_NAME = new Map<string, PlatformProfile>(
  PLATFORM_PROFILES.flatMap((p) => [p.id, ...p.aliases].map((n) => [squash(n), p] as const)),
);

/** The profile of a platform named any way it is known (`proni`, `PRONI`, `aimitsu` are one). */
export function platformProfile(name: string): PlatformProfile {
  return BY_NAME.get(squash(name)) ?? genericProfile(name);
}

/** The name the hub stores for a platform: the profile's id (`proni` → `aimitsu`), else as given. */
export function canonicalPlatform(name: string): string {
  return BY_NAME.get(squash(name))?.id ?? name;
}
