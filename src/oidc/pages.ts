import type { Context } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Views } from '../views.js';

/** The provider's own HTML pages (errors and logout), rendered with our pug views instead of its defaults. */
export function createProviderPages(views: Views) {
  const clientName = (ctx: KoaContextWithOIDC) => ctx.oidc?.client?.clientName ?? ctx.oidc?.client?.clientId;
  return {
    async renderError(ctx: KoaContextWithOIDC, out: { error: string; error_description?: string }) {
      ctx.type = 'html';
      ctx.body = views.render('error', {
        title: 'Error',
        message: out.error_description ?? 'The request could not be completed.',
        code: out.error,
      });
    },
    /**
     * A request refused before oidc-provider reads it (another host, parameters over the limit): the OAuth error as
     * JSON, or the error page (with `link`, an address on the issuer's origin, to go to instead) for a client that
     * prefers HTML, as browsers do.
     */
    refuse(ctx: Context, status: number, out: { error: string; error_description: string }, link?: string) {
      ctx.status = status;
      ctx.set('Cache-Control', 'no-store');
      if (ctx.accepts('json', 'html') !== 'html') {
        ctx.body = out;
        return;
      }
      ctx.type = 'html';
      ctx.body = views.render('error', { title: 'Error', message: out.error_description, code: out.error, link });
    },
    async logoutSource(ctx: KoaContextWithOIDC, form: string) {
      ctx.type = 'html';
      ctx.body = views.render('logout', { title: 'Sign out', form, clientName: clientName(ctx) });
    },
    async postLogoutSuccessSource(ctx: KoaContextWithOIDC) {
      ctx.type = 'html';
      ctx.body = views.render('logged-out', { title: 'Signed out', clientName: clientName(ctx) });
    },
  };
}
