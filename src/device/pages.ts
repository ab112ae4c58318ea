import type { Context } from 'koa';
import type { KoaContextWithOIDC } from 'oidc-provider';
import { scopeDescriptions } from '../interaction/consent.js';
import type { Views } from '../views.js';

type ErrorOut = { error?: string; error_description?: string };

/**
 * The form secret oidc-provider checks on POST /device. It keeps it in the (anonymous) session and puts it in the
 * form HTML it hands to the page sources; our pages build their own forms (no inline script, so the CSP holds), with
 * the same secret.
 */
const xsrfOf = (ctx: KoaContextWithOIDC) => (ctx.oidc.session?.state as { secret?: string } | undefined)?.secret ?? '';

const clientNameOf = (client?: { clientName?: string; clientId: string }) => client?.clientName ?? client?.clientId ?? 'An app';

/**
 * The user code page's outcomes, by the name of oidc-provider's re-render error (helpers/re_render_errors.js): a
 * page of its own for the end of a flow, the code page again with a message for a code that can be corrected.
 */
const endings: Record<string, { outcome: string; heading: string; message: string }> = {
  AbortedError: { outcome: 'denied', heading: 'Sign-in cancelled', message: 'The device was not connected. You can close this page.' },
  ExpiredError: {
    outcome: 'expired', heading: 'Code expired', message: 'This code has expired. Start the sign-in again on your device to get a new code.',
  },
};
/** Any other error: the form secret was missing or wrong (a form from another site), or Latchkey failed. */
function otherProblem(out?: ErrorOut): string {
  if (/xsrf|form details/.test(out?.error_description ?? '')) return 'The form has expired or did not come from this site. Enter the code again.';
  if (out?.error === 'server_error') return 'Latchkey could not check the code right now. Try again in a moment.';
  return out?.error_description ?? 'The code could not be checked. Try again.';
}

const retryMessages: Record<string, string> = {
  NotFoundError: 'That code is not right. Check the code on your device and type it again.',
  AlreadyUsedError: 'That code has already been used. Start the sign-in again on your device to get a new code.',
  NoCodeError: 'Enter the code shown on your device.',
};

/** Renders one of the end pages (success, denied, expired, too many attempts). */
export function renderDeviceResult(ctx: Context, views: Views, page: { outcome: string; heading: string; message: string; again?: boolean }) {
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
        title: 'Connect a device',
        xsrf: xsrfOf(ctx),
        userCode: error?.userCode,
        error: error && (retryMessages[error.name] ?? otherProblem(out)),
      });
    },

    /** Names the app and everything it asks for, with the phishing warning this grant needs (RFC 8628 §5.4). */
    async userCodeConfirmSource(ctx: KoaContextWithOIDC, _form: string, client: { clientName?: string; clientId: string }, _deviceInfo: unknown, userCode: string) {
      const params = (ctx.oidc.entities.DeviceCode?.params ?? {}) as { scope?: string; resource?: string | string[] };
      const asked = (params.scope ?? '').split(' ').filter(Boolean);
      const openidScopes = asked.filter((scope) => scope in scopeDescriptions);
      const apiScopes = asked.filter((scope) => !(scope in scopeDescriptions));
      const audiences = [params.resource ?? []].flat();
      ctx.type = 'html';
      ctx.set('Cache-Control', 'no-store');
      ctx.body = views.render('device-confirm', {
        title: 'Connect a device',
        clientName: clientNameOf(client),
        userCode,
        xsrf: xsrfOf(ctx),
        scopes: openidScopes.map((scope) => scopeDescriptions[scope]),
        apis: audiences.map((audience) => ({ audience, scopes: apiScopes })),
      });
    },

    async successSource(ctx: KoaContextWithOIDC) {
      renderDeviceResult(ctx, views, {
        outcome: 'success',
        heading: 'Device connected',
        message: `${clientNameOf(ctx.oidc.client)} is signed in. You can close this page and go back to your device.`,
      });
    },
  };
}
