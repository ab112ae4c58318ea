import type { MfaSettings } from '../config.js';

/** RFC 8176 and OpenID Connect Core §2: the `acr` values Latchkey issues and accepts in `acr_values`. */
export const acrValues = { password: 'urn:latchkey:acr:pwd', mfa: 'urn:latchkey:acr:mfa' } as const;

/** What a sign-in needs after the password: nothing more, the person's second factor, or enrolling one first. */
export type SecondFactorNeed = 'none' | 'verify' | 'enrol';

/**
 * The one rule for when a second factor is asked for. Someone who has a factor always gives it when signing in
 * with a password. Someone who has none must enrol one first when MFA=required or the app was registered with
 * --require-mfa; an app that only asks (`acr_values`) gets `acr` = pwd and decides itself (acr_values is voluntary,
 * OpenID Connect Core §3.1.2.1).
 */
export function secondFactorNeed(input: { hasFactor: boolean; policy: MfaSettings['policy']; clientRequiresMfa: boolean }): SecondFactorNeed {
  if (input.hasFactor) return 'verify';
  return input.policy === 'required' || input.clientRequiresMfa ? 'enrol' : 'none';
}

/** Whether the app's `acr_values` (space-separated) ask for a second factor. */
export const asksForMfa = (requested: unknown) => typeof requested === 'string' && requested.split(' ').includes(acrValues.mfa);
