import { fileURLToPath } from 'node:url';
import pug from 'pug';

const emailsDir = fileURLToPath(new URL('../../views/emails/', import.meta.url));

export type RenderedMail = { text: string; html: string };

export type MailTemplates = { render(template: string, locals: Record<string, unknown>): RenderedMail };

/**
 * The mails' bodies: `views/emails/<template>.pug` (simple HTML, no images, no remote resources, nothing that
 * tracks) and `<template>.txt.pug` (plain text, written with pug's piped text). Each template is compiled once.
 * Every value is escaped in the HTML; the plain text is not HTML, so its templates use !{…} for values.
 */
export function createMailTemplates(): MailTemplates {
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
    render(template, locals) {
      if (!/^[a-z-]+$/.test(template)) throw new Error(`no mail template "${template}"`);
      return { html: compile(`${template}.pug`)(locals), text: `${compile(`${template}.txt.pug`)(locals).trim()}\n` };
    },
  };
}
