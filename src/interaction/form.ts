import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Params } from '../i18n/catalogues.js';

export type InteractionDetails = Awaited<ReturnType<Provider['interactionDetails']>>;

/** A request from the hosted pages that cannot be carried out; `message` is a catalogue key (locales/en.json). */
export class BadFormError extends Error {
  readonly expose = true;
  constructor(message: string, readonly status: 400 | 413 = 400, readonly params: Params = {}) {
    super(message);
    this.name = 'BadFormError';
  }
}

/** A single-valued text field of the posted form; a repeated field is refused rather than guessed at. */
export function formField(ctx: Context, name: string): string | undefined {
  const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new BadFormError('form.repeated_field', 400, { name });
  return value;
}
