import { fileURLToPath } from 'node:url';
import pug from 'pug';
import type { Languages } from '../i18n/languages.js';

const emailsDir = fileURLToPath(new URL('../../views/emails/', import.meta.url));

export type RenderedMail = { subject: string; text: string; html: string };

export type MailTemplates = { render(template: string, subject: string, locals: Record<string, unknown>): RenderedMail };

/**
 * The mails' bodies: `views/emails/<template>.pug` (simple HTML, no images, no remote resources, nothing that
 * tracks) and `<template>.txt.pug` (plain text, written with pug's piped text). Each template is compiled once.
 * Every value is escaped in the HTML; the plain text is not HTML, so its templates use !{…} for values.
 *
 * A mail is rendered when it is queued, in the language of the request that caused it (a reset asked for on a
 * German page is mailed in German); one queued outside a request (an invitation from the CLI) is in English. The
 * subject is a catalogue key like the rest of the words.
 */
export function createMailTemplates(languages: Languages): MailTemplates {
  const compiled = new Map<string, pug.compileTemplate>();
  const compile = (file: string) => {
    let template = compiled.get(file);
    if (!template) {
      template = pug.compileFile(`${emailsDir}${file}`);
      compiled.set(file, template);
    }
    return template;
  };
  return {
    render(template, subjectKey, locals) {
      if (!/^[a-z-]+$/.test(template)) throw new Error(`no mail template "${template}"`);
      const t = languages.translator(languages.current());
      const subject = t(subjectKey, locals as Record<string, string>);
      const all = { ...locals, subject, t, lang: t.language };
      return { subject, html: compile(`${template}.pug`)(all), text: `${compile(`${template}.txt.pug`)(all).trim()}\n` };
    },
  };
}
