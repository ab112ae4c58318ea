import type { Context } from 'koa';
import type Provider from 'oidc-provider';

export type InteractionDetails = Awaited<ReturnType<Provider['interactionDetails']>>;

export class BadFormError extends Error {
  readonly expose = true;
  constructor(message: string, readonly status: 400 | 413 = 400) {
    super(message);
    this.name = 'BadFormError';
  }
}

/** A single-valued text field of the posted form; a repeated field is refused rather than guessed at. */
export function formField(ctx: Context, name: string): string | undefined {
  const body = (ctx.request as { body?: Record<string, unknown> }).body ?? {};
  const value = body[name];
  if (value === undefined) return undefined;
  if (typeof value !== 'string') throw new BadFormError(`the form field "${name}" must be given once, as text`);
  return value;
}
