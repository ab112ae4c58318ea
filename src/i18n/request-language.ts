import type { Context } from 'koa';
import { supportedLanguages } from './catalogues.js';
import { negotiateLanguage } from './negotiation.js';

/**
 * Remembers the authorization request's `ui_locales` for the pages of its interaction (login, consent, second
 * factor), which oidc-provider keeps in the interaction's params rather than in the request the browser sends.
 */
export function useUiLocales(ctx: Context, params: Record<string, unknown>): void {
  ctx.state.uiLocales = params.ui_locales;
}

/**
 * The language of the pages answering this request: `ui_locales` of the interaction (see useUiLocales) or of the
 * request oidc-provider is serving (an error of /auth, the logout page), then Accept-Language, then English.
 */
export function requestLanguage(ctx: Context): string {
  const oidcParams = (ctx as Context & { oidc?: { params?: Record<string, unknown> } }).oidc?.params;
  return negotiateLanguage({
    uiLocales: ctx.state.uiLocales ?? oidcParams?.ui_locales,
    acceptLanguage: ctx.get('Accept-Language'),
  }, supportedLanguages);
}
