/**
 * Characters that must not reach an operator's terminal or log viewer as they are, since an attacker can type them
 * (into the login form's email field, a client_id, a grant_type): C0 and C1 controls and DEL (ESC and CSI start the
 * sequences that recolour text, move the cursor, clear the screen, retitle the window or make some terminals answer
 * back), line and paragraph separators, and the invisible format and default-ignorable characters, among them the
 * bidi overrides and isolates (U+202A–202E, U+2066–2069) that reorder what a line shows (CVE-2021-42574).
 */
const unprintable = /[\p{Cc}\p{Cf}\p{Cs}\p{Zl}\p{Zp}\p{Default_Ignorable_Code_Point}]/gu;

const hex = (value: number, digits: number) => value.toString(16).padStart(digits, '0');

/** `text` with each such character written out visibly, as \x1b or \u{202e}: for lines a person reads. */
export function escapeUnprintable(text: string): string {
  return text.replace(unprintable, (char) => {
    const codePoint = char.codePointAt(0)!;
    return codePoint <= 0xff ? `\\x${hex(codePoint, 2)}` : `\\u{${hex(codePoint, 4)}}`;
  });
}

/**
 * A JSON text with each such character as a \u escape: the same JSON value, safe to show. JSON.stringify escapes
 * the C0 controls in strings itself but leaves DEL, C1, U+2028/2029 and the format characters raw; a raw C0 control
 * in its output (a newline) is formatting between values and stays.
 */
export function escapeUnprintableInJson(json: string): string {
  // split('') splits into UTF-16 units: a character beyond U+FFFF becomes its two surrogate escapes, as JSON wants.
  return json.replace(unprintable, (char) => (char < ' ' ? char : char.split('').map((unit) => `\\u${hex(unit.charCodeAt(0), 4)}`).join('')));
}
