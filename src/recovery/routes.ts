import Router from '@koa/router';
import type { Context } from 'koa';
import { AccountError } from '../accounts/accounts.js';
import { emailShaped } from '../accounts/email.js';
import { BadFormError, formField } from '../interaction/form.js';
import { hostedPageMiddleware } from '../interaction/routes.js';
import type { Message } from '../i18n/catalogues.js';
import { useUiLocales } from '../i18n/request-language.js';
import type { Views } from '../views.js';
import type { EmailGate } from './email-gate.js';
import type { Invitations } from './invitations.js';
import type { PageCsrf } from './page-csrf.js';
import type { LinkOutcome, PasswordReset } from './password-reset.js';
import type { ReturnToSignIn } from './return-to-sign-in.js';
import type { SignInTicket } from './sign-in-ticket.js';
import type { SignUp } from './sign-up.js';
import type { Verification } from './verification.js';

export type RecoveryRouteDeps = {
  views: Views; csrf: PageCsrf; returnTo: ReturnToSignIn; emailGate: EmailGate; signInTicket: SignInTicket;
  /** Absent when the feature is off (PASSWORD_RESET=false, REGISTRATION=closed): its pages are not there. */
  passwordReset?: PasswordReset; signUp?: SignUp; invitations: Invitations; verification: Verification;
};

/** The same words for every address, known or not (docs/security.md, "Mailed links"). */
const sentNotice = 'recovery.sent';

/**
 * The pages a person reaches from the login page or from a mailed link: forgot password, reset, invitation,
 * email verification and sign-up. Every form carries the page CSRF token; every link's token is checked before
 * its page asks for anything, and used up only by the form's submission. The token is in the query string, never
 * the path: error log lines name the path of a request, not its query.
 */
export function createRecoveryRoutes(deps: RecoveryRouteDeps) {
  const { views, csrf, returnTo } = deps;
  const router = new Router();

  const page = (ctx: Context, name: string, locals: Record<string, unknown>, status = 200) => {
    ctx.status = status;
    ctx.type = 'html';
    ctx.body = views.render(`recovery/${name}`, { csrf: csrf.fieldFor(ctx), ...locals });
  };
  // Titles and messages are catalogue keys (locales/en.json).
  const notice = (ctx: Context, title: string, message: string | Message, status = 200) => page(ctx, 'notice', { title, message }, status);
  const linkInvalid = (ctx: Context) => notice(ctx, 'recovery.link_invalid.heading', 'recovery.link_invalid.message', 400);
  const tooMany = (ctx: Context, retryAfterSeconds: number) => {
    ctx.set('Retry-After', String(retryAfterSeconds));
    notice(ctx, 'error.too_many_title', { key: 'recovery.too_many', params: { count: Math.ceil(retryAfterSeconds / 60) } }, 429);
  };
  /** After a password is set or an address verified: back to the app's sign-in if it started there. */
  const finish = (ctx: Context, title: string, message: string) => {
    const back = returnTo.take(ctx);
    if (back) {
      ctx.status = 303;
      ctx.redirect(back);
      return;
    }
    notice(ctx, title, message);
  };

  router.use(...hostedPageMiddleware(views));
  // These pages are reached from the sign-in (its links) and from each other (their forms), outside the interaction
  // whose ui_locales chose its language: the links and forms carry that language on, as `ui_locales`.
  router.use(async (ctx, next) => {
    useUiLocales(ctx, { ui_locales: ctx.method === 'POST' ? formField(ctx, 'ui_locales') : ctx.query.ui_locales });
    await next();
  });
  router.use(async (ctx, next) => {
    if (ctx.method === 'POST' && !csrf.isValid(ctx, formField(ctx, 'csrf'))) {
      throw new BadFormError('recovery.form_expired');
    }
    await next();
  });

  /** A page that sets a password through a mailed link (reset or invitation). */
  function passwordLink(path: string, what: { title: string; lead: string; isValid(token: unknown): Promise<boolean>; use(token: string, password: string, ip: string): Promise<LinkOutcome>; done: string }) {
    router.get(path, async (ctx) => {
      if (!(await what.isValid(ctx.query.token))) return linkInvalid(ctx);
      page(ctx, 'set-password', { title: what.title, lead: what.lead, action: path, token: ctx.query.token });
    });
    router.post(path, async (ctx) => {
      const token = formField(ctx, 'token') ?? '';
      const password = formField(ctx, 'password') ?? '';
      let outcome: LinkOutcome;
      try {
        outcome = await what.use(token, password, ctx.ip);
      } catch (error) {
        if (!(error instanceof AccountError)) throw error;
        return page(ctx, 'set-password', { title: what.title, lead: what.lead, action: path, token, error: error.reason }, 400);
      }
      if (!outcome.isDone) return linkInvalid(ctx);
      // An accepted invitation signs this browser in (sign-in-ticket.ts).
      if (outcome.signInTicket) return deps.signInTicket.hand(ctx, outcome.signInTicket, returnTo.take(ctx));
      finish(ctx, 'recovery.password_set', what.done);
    });
  }

  if (deps.passwordReset) {
    const reset = deps.passwordReset;
    router.get('/password/forgot', (ctx) => {
      returnTo.remember(ctx, ctx.query.interaction);
      page(ctx, 'forgot', { title: 'recovery.forgot.heading' });
    });
    router.post('/password/forgot', async (ctx) => {
      const email = emailShaped(formField(ctx, 'email') ?? '');
      if (!email) return page(ctx, 'forgot', { title: 'recovery.forgot.heading', error: 'recovery.forgot.no_email' }, 400);
      const retryAfterSeconds = await reset.request(email, ctx.ip);
      if (retryAfterSeconds !== undefined) return tooMany(ctx, retryAfterSeconds);
      notice(ctx, 'recovery.inbox.heading', sentNotice);
    });
    passwordLink('/password/reset', {
      title: 'recovery.reset.heading', lead: 'recovery.reset.lead',
      isValid: (token) => reset.isValid(token), use: (token, password, ip) => reset.complete(token, password, ip),
      done: 'recovery.reset.done',
    });
  }

  passwordLink('/invitation', {
    title: 'recovery.invitation.heading', lead: 'recovery.invitation.lead',
    isValid: (token) => deps.invitations.isValid(token), use: (token, password, ip) => deps.invitations.accept(token, password, ip),
    done: 'recovery.invitation.done',
  });

  router.get('/email/verify', async (ctx) => {
    if (!(await deps.verification.isValid(ctx.query.token))) return linkInvalid(ctx);
    page(ctx, 'confirm-email', { title: 'recovery.confirm.heading', token: ctx.query.token });
  });
  router.post('/email/verify', async (ctx) => {
    if (!(await deps.verification.confirm(formField(ctx, 'token') ?? ''))) return linkInvalid(ctx);
    finish(ctx, 'recovery.confirmed.heading', 'recovery.confirmed.message');
  });
  router.post('/email/verify/resend', async (ctx) => {
    if (!(await deps.emailGate.resend(ctx, formField(ctx, 'ticket')))) {
      notice(ctx, 'recovery.link_invalid.heading', 'recovery.held.expired', 400);
    }
  });

  if (deps.signUp) {
    const signUp = deps.signUp;
    const fields = (ctx: Context) => ({
      email: formField(ctx, 'email') ?? '', password: formField(ctx, 'password') ?? '',
      givenName: formField(ctx, 'given_name') ?? '', familyName: formField(ctx, 'family_name') ?? '',
    });
    router.get('/sign-up', (ctx) => {
      returnTo.remember(ctx, ctx.query.interaction);
      page(ctx, 'sign-up', { title: 'recovery.sign_up.heading', form: {} });
    });
    router.post('/sign-up', async (ctx) => {
      const form = fields(ctx);
      const problem = await signUp.problem(form);
      if (problem) return page(ctx, 'sign-up', { title: 'recovery.sign_up.heading', form: { ...form, password: '' }, error: problem }, 400);
      const retryAfterSeconds = await signUp.request(form, ctx.ip);
      if (retryAfterSeconds !== undefined) return tooMany(ctx, retryAfterSeconds);
      notice(ctx, 'recovery.inbox.heading', 'recovery.sign_up.sent');
    });
  }

  return router.routes();
}
