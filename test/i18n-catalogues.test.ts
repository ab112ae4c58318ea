import fs from 'node:fs';
import path from 'node:path';
import pug from 'pug';
import { describe, expect, it } from 'vitest';
import { catalogues, supportedLanguages } from '../src/i18n/catalogues.js';

type Node = { type: string; val?: unknown; name?: string; buffer?: boolean; mustEscape?: boolean; line?: number;
  attrs?: { name: string; val: unknown; mustEscape?: boolean }[]; block?: Node; nodes?: Node[]; consequent?: Node; alternate?: Node; [key: string]: unknown };

const root = path.resolve(import.meta.dirname, '..');
const english = catalogues.en;

function files(dir: string, ending: string): string[] {
  return fs.readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile() && entry.name.endsWith(ending))
    .map((entry) => path.join(entry.parentPath, entry.name));
}
const views = files(path.join(root, 'views'), '.pug');

/** Every node of a parsed pug file (the parser's own tree, handed over by a pug plugin: no text is guessed at). */
function nodesOf(file: string): Node[] {
  let ast: Node | undefined;
  // Pug's plugin hooks (pugjs.org/api/reference.html#options) are missing from its typings.
  const options = { plugins: [{ postParse: (parsed: Node) => { ast ??= parsed; return parsed; } }] } as pug.Options;
  pug.compileFile(file, options);
  const all: Node[] = [];
  const visit = (node: unknown) => {
    if (!node || typeof node !== 'object') return;
    if (Array.isArray(node)) return node.forEach(visit);
    const typed = node as Node;
    if (typeof typed.type === 'string') all.push(typed);
    for (const [key, value] of Object.entries(typed)) if (key !== 'attrs' && typeof value === 'object') visit(value);
  };
  visit(ast);
  return all;
}

/** Text a person reads: two letters in a row, in any script. */
const words = /\p{L}{2,}/u;
const visibleAttributes = new Set(['title', 'alt', 'placeholder', 'aria-label', 'label', 'content']);
const isLiteral = (value: unknown) => typeof value === 'string' && /^\s*(['"`]).*\1\s*$/s.test(value);

describe('the message catalogues', () => {
  it('have the same keys in every language, with the same placeholders', () => {
    for (const language of supportedLanguages) {
      const catalogue = catalogues[language];
      expect(Object.keys(catalogue).sort(), language).toEqual(Object.keys(english).sort());
      for (const [key, sentence] of Object.entries(catalogue)) {
        const placeholders = (text: string) => [...text.matchAll(/\{([a-zA-Z_]+)\}/g)].map((match) => match[1]).sort();
        expect(placeholders(sentence), `${language} ${key}`).toEqual(placeholders(english[key]!));
        expect(sentence.trim(), `${language} ${key}`).not.toBe('');
        expect(sentence, `${language} ${key}: no markup in a sentence`).not.toMatch(/[<>]/);
      }
    }
  });

  it('hold German, not English copies: a sentence the same as English holds only names and words both spell alike', () => {
    // Product and protocol names, and the few words both languages spell the same.
    const shared = new Set(['Latchkey', 'Details', 'Code', 'Passkeys', 'Name', 'IP']);
    const untranslated = Object.entries(catalogues.de)
      .filter(([key, sentence]) => sentence === english[key])
      .filter(([, sentence]) => (sentence.replace(/\{[a-zA-Z_]+\}/g, '').match(/\p{L}+/gu) ?? []).some((word) => !shared.has(word)))
      .map(([key]) => key);
    expect(untranslated).toEqual([]);
  });

  it('have every key the pages and the code name', () => {
    const named = new Set<string>();
    // Audit event types and log events (`type: 'mfa.enrolled'`, `event: 'mail.sent'`) share the shape; they are not messages.
    const keyShape = /(?<!(?:type|event|kind): )['"]((?:common|login|consent|scope|logout|logged_out|form|error|device|mfa|layout|recovery|mail|federation|account|account_rules)\.[a-z_.]+)['"]/g;
    // The audit trail's list of event names shares the shape of a key.
    const code = files(path.join(root, 'src'), '.ts').filter((file) => !/audit/.test(path.relative(root, file)));
    for (const file of [...views, ...code]) {
      for (const match of fs.readFileSync(file, 'utf8').matchAll(keyShape)) named.add(match[1]!);
    }
    const missing = [...named].filter((key) => !(key in english) && !(`${key}.other` in english) && !key.endsWith('.'));
    expect(missing).toEqual([]);
  });
});

describe('the pages', () => {
  it('hold no text of their own: every word a person reads comes from the catalogue', () => {
    const problems: string[] = [];
    for (const file of views) {
      const where = (node: Node) => `${path.relative(root, file)}:${node.line}`;
      for (const node of nodesOf(file)) {
        if (node.type === 'Text' && typeof node.val === 'string' && words.test(node.val)) problems.push(`${where(node)} text "${node.val.trim()}"`);
        if (node.type === 'Code' && node.buffer && isLiteral(node.val) && words.test(String(node.val))) problems.push(`${where(node)} literal ${String(node.val)}`);
        for (const attribute of node.attrs ?? []) {
          if (visibleAttributes.has(attribute.name) && isLiteral(attribute.val) && /\p{Ll}{2,}/u.test(String(attribute.val))
            && node.name !== 'meta') {
            problems.push(`${where(node)} ${attribute.name}=${String(attribute.val)}`);
          }
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('never print a translation as HTML', () => {
    const problems: string[] = [];
    // A plain-text mail (`.txt.pug`) is not HTML: it prints its values as they are.
    for (const file of views.filter((name) => !name.endsWith('.txt.pug'))) {
      for (const node of nodesOf(file)) {
        // Markup Latchkey builds itself is the only HTML printed as it is: the QR code's SVG and oidc-provider's logout form.
        const isUnescaped = node.type === 'Code' && node.buffer && node.mustEscape === false;
        if (isUnescaped && !['qrSvg', 'form'].includes(String(node.val).trim())) problems.push(`${file}:${node.line} ${String(node.val)}`);
        for (const attribute of node.attrs ?? []) {
          if (attribute.mustEscape === false && /\bt\(/.test(String(attribute.val))) problems.push(`${file}:${node.line} ${attribute.name}`);
        }
      }
    }
    expect(problems).toEqual([]);
  });

  it('would catch a page with words of its own (the check above is not vacuous)', () => {
    const dir = fs.mkdtempSync(path.join(root, 'node_modules', '.i18n-check-'));
    try {
      const file = path.join(dir, 'bad.pug');
      fs.writeFileSync(file, 'p Hello there\np= "Welcome"\ninput(placeholder="your name")\np #{t("ok")} and more\n');
      const found = nodesOf(file).filter((node) => (node.type === 'Text' && words.test(String(node.val)))
        || (node.type === 'Code' && isLiteral(node.val))
        || (node.attrs ?? []).some((attribute) => attribute.name === 'placeholder' && isLiteral(attribute.val)));
      expect(found.length).toBe(4);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
