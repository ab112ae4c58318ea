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
