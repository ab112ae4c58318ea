import type { Context } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Message } from '../i18n/catalogues.js';
import type { Views } from '../views.js';

/** OAuth error codes a person may meet on a page, explained in their language (`error.oauth.<code>` in locales/). */
const explainedCodes = new Set([
  'invalid_request', 'invalid_client', 'invalid_redirect_uri', 'invalid_scope', 'invalid_target', 'unauthorized_client',
  'access_denied', 'login_required', 'consent_required', 'unsupported_response_type', 'request_not_supported', 'server_error',
  'temporarily_unavailable', 'session_not_found',
]);

/** The sentence that explains an OAuth error code to a person; the code's (English) description is shown beside it. */
export function oauthErrorMessage(code: string | undefined): Message {
  return { key: code && explainedCodes.has(code) ? `error.oauth.${code}` : 'error.generic' };
}

/** The provider's own HTML pages (errors and logout), rendered with our pug views instead of its defaults. */
export function createProviderPages(views: Views) {
  const clientName = (ctx: KoaContextWithOIDC) => ctx.oidc?.client?.clientName ?? ctx.oidc?.client?.clientId;
  return {
    async renderError(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }) {
      ctx.type = 'html';
      ctx.body = views.render('error', {
        title: 'error.title',
        message: oauthErrorMessage(out.error),
        detail: out.error_description,
        code: out.error,
      });
    },
    /**
     * A request refused before oidc-provider reads it (another host, parameters over the limit): the OAuth error as
     * JSON, or the error page (with `link`, an address on the issuer's origin, to go to instead) for a client that
     * prefers HTML, as browsers do. `message` says it to a person; without one, the error code is explained.
     */
    refuse(ctx: Context, status: number, out: { error: string; error_description: string }, link?: string, message?: Message) {
      ctx.status = status;
      ctx.set('Cache-Control', 'no-store');
      if (ctx.accepts('json', 'html') !== 'html') {
        ctx.body = out;
        return;
      }
      ctx.type = 'html';
      ctx.body = views.render('error', {
        title: 'error.title', message: message ?? oauthErrorMessage(out.error), detail: message ? undefined : out.error_description, code: out.error, link,
      });
    },
    async logoutSource(ctx: KoaContextWithOIDC, form: string) {
      ctx.type = 'html';
      ctx.body = views.render('logout', { title: 'logout.heading', form, clientName: clientName(ctx) });
    },
    async postLogoutSuccessSource(ctx: KoaContextWithOIDC) {
      ctx.type = 'html';
      ctx.body = views.render('logged-out', { title: 'logged_out.heading', clientName: clientName(ctx) });
    },
  };
}
