import type { Context } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import type { Message } from '../i18n/catalogues.js';
import { describedScopes, describeScope } from '../interaction/consent.js';
import type { Views } from '../views.js';

type ErrorOut = { error?: string; error_description?: string };

/**
 * The form secret oidc-provider checks on POST /device. It keeps it in the (anonymous) session and puts it in the
 * form HTML it hands to the page sources; our pages build their own forms (no inline script, so the CSP holds), with
 * the same secret.
 */
const xsrfOf = (ctx: KoaContextWithOIDC) => (ctx.oidc.session?.state as { secret?: string } | undefined)?.secret ?? '';

const clientNameOf = (client?: { clientName?: string; clientId: string }) => client?.clientName ?? client?.clientId;

/**
 * The user code page's outcomes, by the name of oidc-provider's re-render error (helpers/re_render_errors.js): a
 * page of its own for the end of a flow, the code page again with a message for a code that can be corrected.
 */
const endings: Record<string, { outcome: string; heading: string; message: string }> = {
  AbortedError: { outcome: 'denied', heading: 'device.denied.heading', message: 'device.denied.message' },
  ExpiredError: { outcome: 'expired', heading: 'device.expired.heading', message: 'device.expired.message' },
};
/** Any other error: the form secret was missing or wrong (a form from another site), or Latchkey failed. */
function otherProblem(out?: ErrorOut): string {
  if (/xsrf|form details/.test(out?.error_description ?? '')) return 'device.form_expired';
  if (out?.error === 'server_error') return 'device.server_error';
  return 'device.not_checked';
}

const retryMessages: Record<string, string> = {
  NotFoundError: 'device.not_found',
  AlreadyUsedError: 'device.already_used',
  NoCodeError: 'device.no_code',
};

/** Renders one of the end pages (success, denied, expired, too many attempts). */
export function renderDeviceResult(ctx: Context, views: Views, page: { outcome: string; heading: string; message: string | Message; again?: boolean }) {
  ctx.type = 'html';
  ctx.set('Cache-Control', 'no-store');
  ctx.body = views.render('device-result', { title: page.heading, ...page });
}

/**
 * The hosted pages of the device flow (RFC 8628 §3.3), rendered with our layout: enter the code, confirm the app
 * and what it asks for, and the end pages. The sign-in between confirmation and success is the normal hosted login
 * and consent (/interaction), which oidc-provider sends the browser to.
 */
export function createDevicePages(views: Views) {
  return {
    async userCodeInputSource(ctx: KoaContextWithOIDC, _form: string, out?: ErrorOut, error?: Error & { userCode?: string }) {
      const ending = error && endings[error.name];
      if (ending) {
        renderDeviceResult(ctx, views, { ...ending, again: ending.outcome === 'expired' });
        return;
      }
      ctx.type = 'html';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = views.render('device-enter', {
        title: 'device.enter.heading',
        xsrf: xsrfOf(ctx),
        userCode: error?.userCode,
        error: error && (retryMessages[error.name] ?? otherProblem(out)),
      });
    },

    /** Names the app and everything it asks for, with the phishing warning this grant needs (RFC 8628 §5.4). */
    async userCodeConfirmSource(ctx: KoaContextWithOIDC, _form: string, client: { clientName?: string; clientId: string }, _deviceInfo: unknown, userCode: string) {
      const params = (ctx.oidc.entities.DeviceCode?.params ?? {}) as { scope?: string; resource?: string | string[] };
      const asked = (params.scope ?? '').split(' ').filter(Boolean);
      const openidScopes = asked.filter((scope) => describedScopes.has(scope));
      const apiScopes = asked.filter((scope) => !describedScopes.has(scope));
      const audiences = [params.resource ?? []].flat();
      ctx.type = 'html';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = views.render('device-confirm', {
        title: 'device.enter.heading',
        clientName: clientNameOf(client),
        userCode,
        xsrf: xsrfOf(ctx),
        scopes: openidScopes.map(describeScope),
        apis: audiences.map((audience) => ({ audience, scopes: apiScopes })),
      });
    },

    async successSource(ctx: KoaContextWithOIDC) {
      renderDeviceResult(ctx, views, {
        outcome: 'success',
        heading: 'device.success.heading',
        message: ctx.oidc.client ? { key: 'device.success.message', params: { client: clientNameOf(ctx.oidc.client)! } } : 'device.success.message_no_client',
      });
    },
  };
}
