import Router from '@koa/router';
import type { Context } from 'koa';
import { AccountError } from '../accounts/accounts.js';
import { emailShaped } from '../accounts/email.js';
import { BadFormError, formField } from '../interaction/form.js';
import { hostedPageMiddleware } from '../interaction/routes.js';
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
const sentNotice = 'If an account exists for that address, we sent a link to it. Check your inbox (and your spam folder).';

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
  const notice = (ctx: Context, title: string, message: string, status = 200) => page(ctx, 'notice', { title, message }, status);
  const linkInvalid = (ctx: Context) => notice(ctx, 'Link no longer valid',
    'This link has expired or was already used. Links work once, for a limited time; the newest one you were sent replaces the older ones.', 400);
  const tooMany = (ctx: Context, retryAfterSeconds: number) => {
    ctx.set('Retry-After', String(retryAfterSeconds));
    notice(ctx, 'Too many requests', `Too many requests, try again in ${Math.ceil(retryAfterSeconds / 60)} minutes.`, 429);
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
  router.use(async (ctx, next) => {
    if (ctx.method === 'POST' && !csrf.isValid(ctx, formField(ctx, 'csrf'))) {
      throw new BadFormError('The form has expired or did not come from this site. Go back, reload the page and try again.');
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
        return page(ctx, 'set-password', { title: what.title, lead: what.lead, action: path, token, error: error.message }, 400);
      }
      if (!outcome.isDone) return linkInvalid(ctx);
      // An accepted invitation signs this browser in (sign-in-ticket.ts).
      if (outcome.signInTicket) return deps.signInTicket.hand(ctx, outcome.signInTicket, returnTo.take(ctx));
      finish(ctx, 'Password set', what.done);
    });
  }

  if (deps.passwordReset) {
    const reset = deps.passwordReset;
    router.get('/password/forgot', (ctx) => {
      returnTo.remember(ctx, ctx.query.interaction);
      page(ctx, 'forgot', { title: 'Forgot your password?' });
    });
    router.post('/password/forgot', async (ctx) => {
      const email = emailShaped(formField(ctx, 'email') ?? '');
      if (!email) return page(ctx, 'forgot', { title: 'Forgot your password?', error: 'Enter the email address of your account.' }, 400);
      const retryAfterSeconds = await reset.request(email, ctx.ip);
      if (retryAfterSeconds !== undefined) return tooMany(ctx, retryAfterSeconds);
      notice(ctx, 'Check your inbox', sentNotice);
    });
    passwordLink('/password/reset', {
      title: 'Choose a new password', lead: 'Every device and app signed in to your account will be signed out.',
      isValid: (token) => reset.isValid(token), use: (token, password, ip) => reset.complete(token, password, ip),
      done: 'Your password was changed, and you were signed out everywhere. Sign in to your apps with the new password.',
    });
  }

  passwordLink('/invitation', {
    title: 'Choose your password', lead: 'Welcome! Choose the password for your new account.',
    isValid: (token) => deps.invitations.isValid(token), use: (token, password, ip) => deps.invitations.accept(token, password, ip),
    done: 'Your account is ready. Sign in to your apps with your email address and this password.',
  });

  router.get('/email/verify', async (ctx) => {
    if (!(await deps.verification.isValid(ctx.query.token))) return linkInvalid(ctx);
    page(ctx, 'confirm-email', { title: 'Confirm your email address', token: ctx.query.token });
  });
  router.post('/email/verify', async (ctx) => {
    if (!(await deps.verification.confirm(formField(ctx, 'token') ?? ''))) return linkInvalid(ctx);
    finish(ctx, 'Address confirmed', 'Your email address is confirmed. You can now sign in to your apps.');
  });
  router.post('/email/verify/resend', async (ctx) => {
    if (!(await deps.emailGate.resend(ctx, formField(ctx, 'ticket')))) {
      notice(ctx, 'Link no longer valid', 'This page has expired. Sign in again to get a new link.', 400);
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
      page(ctx, 'sign-up', { title: 'Create an account', form: {} });
    });
    router.post('/sign-up', async (ctx) => {
      const form = fields(ctx);
      const problem = signUp.problem(form);
      if (problem) return page(ctx, 'sign-up', { title: 'Create an account', form: { ...form, password: '' }, error: problem }, 400);
      const retryAfterSeconds = await signUp.request(form, ctx.ip);
      if (retryAfterSeconds !== undefined) return tooMany(ctx, retryAfterSeconds);
      notice(ctx, 'Check your inbox', 'To finish, open the link we sent to your address. If you already have an account, we sent you a mail about that instead.');
    });
  }

  return router.routes();
}
