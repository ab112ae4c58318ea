import { UserFacingError } from '../user-facing-error.js';

/** The profile claims an operator sets on an account beyond its name (OpenID Connect Core §5.1). */
export type ProfileSettings = { locale?: string | null; zoneinfo?: string | null };

export class ProfileError extends UserFacingError {
  constructor(message: string) {
    super(message);
    this.name = 'ProfileError';
  }
}

/** A BCP 47 language tag in its canonical spelling ("en-us" becomes "en-US"), as `locale` must be. */
function checkLocale(locale: string): string {
  try {
    const [canonical] = Intl.getCanonicalLocales(locale);
    if (canonical) return canonical;
  } catch {
    // falls through to the error below
  }
  throw new ProfileError(`"${locale}" is not a BCP 47 language tag (like en-US or fr-CA)`);
}

/** An IANA time zone name ("Europe/Paris"), as `zoneinfo` must be; no offsets or abbreviations. */
function checkZoneinfo(zoneinfo: string): string {
  const isName = /^[A-Za-z][A-Za-z0-9_+-]*(\/[A-Za-z0-9_+-]+)*$/.test(zoneinfo);
  try {
    if (isName) return new Intl.DateTimeFormat('en', { timeZone: zoneinfo }).resolvedOptions().timeZone;
  } catch {
    // falls through to the error below
  }
  throw new ProfileError(`"${zoneinfo}" is not an IANA time zone name (like Europe/Paris or America/New_York)`);
}

/** The settings as stored: each one given checked and canonical, an empty one cleared (null), a missing one left out. */
export function checkProfile(settings: ProfileSettings): ProfileSettings {
  const checked: ProfileSettings = {};
  if (settings.locale !== undefined) checked.locale = settings.locale ? checkLocale(settings.locale) : null;
  if (settings.zoneinfo !== undefined) checked.zoneinfo = settings.zoneinfo ? checkZoneinfo(settings.zoneinfo) : null;
  return checked;
}
