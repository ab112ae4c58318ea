import type { Message } from '../i18n/catalogues.js';

/**
 * What an email address is to Latchkey, which uses it as the user name: the one spelling it is stored and compared
 * in, what may not be in one, and the key that makes look-alikes of one address collide.
 */

/** RFC 5321 §4.5.3.1: a local part of 64 octets, an @ and a domain of 255. */
const maxEmailLength = 320;

/** text@text without spaces: the shape of an email, before any rule about what the text may hold. */
const emailShape = /^[^\s@]+@[^\s@]+$/;

/**
 * The one spelling of an email that is stored, compared, looked up and throttled: trimmed, NFKC, lower case.
 *
 * RFC 8265 (PRECIS) §3.4, UsernameCaseMapped, maps full-width and half-width forms to their plain ones, lower-cases
 * (toLowerCase, as here) and refuses the other compatibility characters (ligatures, circled and mathematical
 * letters: RFC 8264 §9.17 HasCompat). NFKC maps those too instead of refusing them, the way UTS #46 maps a domain
 * name (its mapping is NFKC_Casefold): "ａｄａ@ｅｘａｍｐｌｅ.ｃｏｍ" and "𝐚da@example.com" are ada@example.com, so
 * one address has one account and a pasted odd form still signs in. Case mapping can leave a string that NFKC
 * would change again, hence the second NFKC: the function is idempotent. U+3002, the ideographic full stop that
 * Japanese input methods type, separates domain labels like "." (RFC 3490 §3.1, and UTS #46 maps it to ".").
 */
export function normalizeEmail(email: string): string {
  return email.trim().normalize('NFKC').toLowerCase().normalize('NFKC').replaceAll('\u3002', '.');
}

/**
 * The normalised email if what was typed has the shape of one, else undefined: for recording what someone typed
 * at the login form (a password typed into the email field does not look like an email). What it may contain is
 * not checked; whatever prints it escapes it.
 */
export function emailShaped(email: string): string | undefined {
  const normalized = normalizeEmail(email);
  return normalized.length <= maxEmailLength && emailShape.test(normalized) ? normalized : undefined;
}

const codePoint = (char: string) => `U+${char.codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0')}`;

/**
 * Characters no email of a new account may hold, with the reason. Control characters rewrite an operator's
 * terminal; invisible ones (zero-width space and joiners, BOM, soft hyphen, bidi overrides, Hangul fillers: the
 * format characters and every Default_Ignorable_Code_Point: UTS #39 §3.1, RFC 8264 §9.13) make two addresses
 * that look the same; a code point that Unicode has not assigned yet may normalise differently once it is
 * (PRECIS refuses them for that reason: RFC 8264 §9.10).
 */
const forbiddenCharacters: Array<[RegExp, string]> = [
  [/\p{Cc}/u, 'account_rules.email.control_character'],
  [/[\p{Cf}\p{Default_Ignorable_Code_Point}\p{Zl}\p{Zp}]/u, 'account_rules.email.invisible_character'],
  [/[\s\p{Zs}]/u, 'account_rules.email.space'],
  [/[\p{Cn}\p{Co}\p{Cs}]/u, 'account_rules.email.unassigned_code_point'],
];

/**
 * The scripts whose letters imitate one another (each with the catalogue key of its name); a name that mixes them is
 * a spoof or a typo (UTS #39 §5.1).
 */
const lookAlikeScripts: Array<[string, RegExp]> = [
  ['account_rules.script.latin', /\p{Script=Latin}/u],
  ['account_rules.script.cyrillic', /\p{Script=Cyrillic}/u],
  ['account_rules.script.greek', /\p{Script=Greek}/u],
  ['account_rules.script.armenian', /\p{Script=Armenian}/u],
];

function mixedScripts(text: string): Message[] {
  const scripts = lookAlikeScripts.filter(([, letters]) => letters.test(text)).map(([key]) => ({ key }));
  return scripts.length > 1 ? scripts : [];
}

/**
 * Why a normalised email cannot name a new account (a page says it in the reader's language, the CLI in English), or
 * undefined when it can.
 */
export function emailProblem(normalized: string): Message | undefined {
  for (const [characters, key] of forbiddenCharacters) {
    const found = characters.exec(normalized);
    if (found) return { key, params: { codePoint: codePoint(found[0]) } };
  }
  if (normalized.length > maxEmailLength) return { key: 'account_rules.email.too_long', params: { max: maxEmailLength } };
  if (!emailShape.test(normalized)) return { key: 'account_rules.email.no_at' };
  const [localPart, domain] = normalized.split('@');
  // "example.com." names the same host as "example.com" in DNS (RFC 1034 §3.1) but is another string here.
  if (domain.endsWith('.')) return { key: 'account_rules.email.trailing_dot' };
  if (domain.split('.').includes('')) return { key: 'account_rules.email.empty_label' };
  const mixed = mixedScripts(localPart);
  if (mixed.length > 0) return { key: 'account_rules.email.mixed_local_part', params: { scripts: mixed } };
  for (const label of domain.split('.')) {
    const mixedLabel = mixedScripts(label);
    if (mixedLabel.length > 0) return { key: 'account_rules.email.mixed_domain_label', params: { label, scripts: mixedLabel } };
  }
  return undefined;
}

/** Pairs each look-alike (first string) with the Latin letter it imitates (second string). */
const pairs = (lookAlikes: string, latin: string) => [...lookAlikes].map((char, i): [string, string] => [char, latin[i]]);

/**
 * Lower-case letters of other scripts, and odd Latin ones, that look like a Latin letter, after NFKC (which has
 * already turned U+03F2 GREEK LUNATE SIGMA into ς, and mathematical and full-width letters into plain ones). The
 * common cases of Unicode's confusables.txt (UTS #39 §4), not all of it. Written as escapes: in the source, the
 * look-alikes would look exactly like what they imitate.
 * Changing this list changes stored skeletons: it needs a migration that recomputes users.email_skeleton.
 */
const latinLookAlikes = new Map<string, string>([
  // Cyrillic а с ԁ е г һ і ј ӏ о р ԛ ѕ ԝ х у
  ...pairs('\u0430\u0441\u0501\u0435\u0433\u04bb\u0456\u0458\u04cf\u043e\u0440\u051b\u0455\u051d\u0445\u0443', 'acderhijlopqswxy'),
  // Greek α ο ν ρ ι κ υ χ γ ς ϳ η
  ...pairs('\u03b1\u03bf\u03bd\u03c1\u03b9\u03ba\u03c5\u03c7\u03b3\u03c2\u03f3\u03b7', 'aovpikuxycjn'),
  // Armenian օ ս հ ո ց զ
  ...pairs('\u0585\u057d\u0570\u0578\u0581\u0566', 'ouhngq'),
  // Latin dotless ı and ȷ, alpha ɑ, script ɡ
  ...pairs('\u0131\u0237\u0251\u0261', 'ijag'),
]);

/**
 * The skeleton of a normalised email (UTS #39 §4: decompose, map each confusable to its prototype, recompose):
 * two emails with the same skeleton look alike, such as "ace@example.com" and the Cyrillic "асе@example.com".
 * Latin letters map to themselves, so two different plain ASCII emails never share one.
 */
export function emailSkeleton(normalized: string): string {
  return [...normalized.normalize('NFD')].map((char) => latinLookAlikes.get(char) ?? char).join('').normalize('NFC');
}
