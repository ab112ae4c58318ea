import { bodyParser } from '@koa/bodyparser';
import Router from '@koa/router';
import type { Context, Middleware, Next } from 'koa';
import Provider, { errors } from 'oidc-provider';
import type { Accounts } from '../accounts/accounts.js';
import type { LoginThrottle } from '../accounts/login-throttle.js';
import type { Audit } from '../audit.js';
import { isDatabaseUnavailable } from '../database.js';
import type { SecondFactorStep } from '../mfa/sign-in-step.js';
import { createPasskeySignIn } from '../mfa/passkey-sign-in.js';
import type { Passkeys } from '../mfa/passkeys.js';
import type { SignInTicket } from '../recovery/sign-in-ticket.js';
import { answerUnavailable } from '../unavailable.js';
import { oauthErrorMessage } from '../oidc/pages.js';
import { useUiLocales } from '../i18n/request-language.js';
import type { Views } from '../views.js';
import { createConsent } from './consent.js';
import { createCsrf } from './csrf.js';
import { BadFormError, type InteractionDetails } from './form.js';
import { createLogin, type HoldUnverified } from './login.js';
import { createAccountSelection } from './select-account.js';

type Deps = {
  provider: Provider; accounts: Accounts; throttle: LoginThrottle; audit: Audit; views: Views; csrfKey: string;
  /** The second step after the first factor (src/mfa/sign-in-step.ts), shared with sign-ins through a connection. */
  secondFactor: SecondFactorStep; holdUnverified: HoldUnverified; passkeys: Passkeys | undefined;
  /** The sign-in an accepted invitation left in this browser (src/recovery/sign-in-ticket.ts). */
  signInTicket: Pick<SignInTicket, 'take'>;
};

/**
 * The error page's locals: our own refusals (BadFormError) carry a catalogue key; oidc-provider's errors are
 * explained by their code in the reader's language, with the library's (English, for developers) description below.
 */
function errorPage(error: unknown, isClientError: boolean, description: string | undefined) {
  if (!isClientError) return { title: 'error.title', message: 'error.server', code: 'server_error' };
  if (error instanceof BadFormError) return { title: 'error.title', message: { key: error.message, params: error.params } };
  const code = (error as { error?: string }).error;
  return { title: 'error.title', message: oauthErrorMessage(code), code, detail: description };
}

/** The one error handler of the hosted pages: a readable page with a 4xx status, never a stack trace. */
export function renderErrors(views: Views) {
  return async (ctx: Context, next: Next) => {
    try {
      await next();
    } catch (error) {
      const { status, statusCode, expose, error_description: description, message } = error as {
        status?: number; statusCode?: number; expose?: boolean; error_description?: string; message?: string;
      };
      ctx.type = 'html';
      if (isDatabaseUnavailable(error)) {
        answerUnavailable(ctx, views, 'html');
        return;
      }
      const code = status ?? statusCode ?? 500;
      const isClientError = code >= 400 && code < 500 && (expose || error instanceof errors.OIDCProviderError);
      if (!isClientError) ctx.app.emit('error', error, ctx);
      ctx.status = isClientError ? code : 500;
      ctx.body = views.render('error', errorPage(error, isClientError, description ?? message));
    }
  };
}

/**
 * What every router of hosted pages puts first: the error page, `Cache-Control: no-store`, and the form parser. A
 * form over the limit is 413 Content Too Large (RFC 9110 §15.5.14), as the body parser reports it; any other
 * unreadable body is a 400.
 */
export function hostedPageMiddleware(views: Views): Middleware[] {
  return [
    renderErrors(views),
    async (ctx, next) => {
      ctx.set('Cache-Control', 'no-store');
      await next();
    },
    bodyParser({
      enableTypes: ['form'],
      formLimit: '16kb',
      onError: (error) => {
        if ((error as { status?: number }).status === 413) throw new BadFormError('form.too_large', 413);
        throw new BadFormError('form.unreadable');
      },
    }),
  ];
}

export function createInteractionRoutes(deps: Deps) {
  const { provider, views } = deps;
  const csrf = createCsrf(deps.csrfKey);
  const { secondFactor } = deps;
  const passkeySignIn = createPasskeySignIn({ provider, accounts: deps.accounts, audit: deps.audit, passkeys: deps.passkeys });
  const login = createLogin({
    provider, accounts: deps.accounts, throttle: deps.throttle, audit: deps.audit, views, csrf, secondFactor,
    holdUnverified: deps.holdUnverified, offersPasskeys: passkeySignIn.isOffered,
  });
  const consent = createConsent({ provider, accounts: deps.accounts, views, csrf });
  const selectAccount = createAccountSelection({ provider, accounts: deps.accounts, views, csrf });
  const router = new Router({ prefix: '/interaction/:uid' });

  /** Loads the interaction bound to this browser's cookie; the uid in the URL must be that interaction. */
  async function loadDetails(ctx: Context, expectedPrompt?: string): Promise<InteractionDetails> {
    const details = await provider.interactionDetails(ctx.req, ctx.res);
    if (details.uid !== ctx.params.uid) throw new errors.SessionNotFound('interaction does not match this browser');
    useUiLocales(ctx, details.params);
    if (expectedPrompt && details.prompt.name !== expectedPrompt) {
      throw new BadFormError('form.step_done');
    }
    if (ctx.method === 'POST' && !csrf.isValid(details.uid, (ctx.request as { body?: Record<string, unknown> }).body?.csrf)) {
      throw new BadFormError('form.expired');
    }
    return details;
  }

  router.use(...hostedPageMiddleware(views));

  router.get('/', async (ctx) => {
    const details = await loadDetails(ctx);
    const invited = details.prompt.name === 'login' ? await deps.signInTicket.take(ctx) : undefined;
    if (invited) return secondFactor.afterFirstFactor(ctx, details, invited, { amr: ['pwd'] });
    if (details.prompt.name === 'select_account') return selectAccount.show(ctx, details);
    if (details.prompt.name === 'login' && await secondFactor.showStepUp(ctx, details)) return undefined;
    if (details.prompt.name === 'login') return login.show(ctx, details, { isAnotherAccount: selectAccount.isAnotherAccount(details) });
    if (details.prompt.name === 'consent') return consent.show(ctx, details);
    throw new BadFormError('form.unsupported_step', 400, { step: details.prompt.name });
  });
  router.post('/login', async (ctx) => login.submit(ctx, await loadDetails(ctx, 'login')));
  selectAccount.mount(router, loadDetails);
  secondFactor.mount(router, loadDetails);
  passkeySignIn.mount(router, loadDetails);
  router.post('/confirm', async (ctx) => consent.submit(ctx, await loadDetails(ctx, 'consent')));
  router.post('/abort', async (ctx) => {
    await loadDetails(ctx);
    const redirectTo = await provider.interactionResult(ctx.req, ctx.res, {
      error: 'access_denied',
      error_description: 'The user cancelled the sign-in.',
    }, { mergeWithLastSubmission: false });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  });

  return router.routes();
}
