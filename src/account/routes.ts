import Router from '@koa/router';
import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import { AccountError, type Accounts } from '../accounts/accounts.js';
import { BadFormError, formField } from '../interaction/form.js';
import { hostedPageMiddleware } from '../interaction/routes.js';
import type { Views } from '../views.js';
import { returnPath, signedInPath, signInUrl } from './account-client.js';
import { confirmPath } from './email-change.js';
import type { AccountServices } from './account-services.js';
import type { PasswordRefusal } from './password-change.js';
import { createSignedInGuard, type SignedIn } from './signed-in.js';
import { accountPage, type Notice } from './page.js';

type Deps = { provider: Provider; account: AccountServices; accounts: Accounts; views: Views; csrfKey: string; now: () => number };

/** The account pages (`/account`, docs/account.md): every one for the person signed in, never another. */
export function createAccountRoutes(deps: Deps) {
  const { provider, account, views } = deps;
  const guard = createSignedInGuard({ provider, accounts: deps.accounts, activity: account.activity, csrfKey: deps.csrfKey });
  const router = new Router({ prefix: '/account' });
  const page = accountPage({ overview: account.overview, views, reauthAfterSeconds: account.reauthAfterSeconds, now: deps.now });

  router.use(...hostedPageMiddleware(views));

  /** The signed-in person, after the CSRF check of a POST; undefined once the answer (go and sign in) is set. */
  async function signedIn(ctx: Context): Promise<SignedIn | undefined> {
    const person = await guard.load(ctx);
    if (!person) {
      ctx.status = 303;
      ctx.redirect(signInUrl(provider.issuer, ctx.method === 'GET' ? ctx.path : '/account'));
      return undefined;
    }
    if (ctx.method === 'POST' && !guard.isValidCsrf(person, formField(ctx, 'csrf'))) {
      throw new BadFormError('recovery.form_expired');
    }
    return person;
  }

  const done = (ctx: Context, notice: string) => {
    ctx.status = 303;
    ctx.redirect(`/account?done=${notice}`);
  };
  const refuse = async (ctx: Context, person: SignedIn, form: string, refusal: PasswordRefusal) => {
    if (refusal.retryAfterSeconds) ctx.set('Retry-After', String(refusal.retryAfterSeconds));
    await page.render(ctx, person, { status: refusal.status, error: { form, message: refusal.message } });
  };
  /** An AccountError (a bad password or address) is shown next to its form; anything else is a real error. */
  async function orShow(ctx: Context, person: SignedIn, form: string, action: () => Promise<void>) {
    try {
      await action();
    } catch (error) {
      if (!(error instanceof AccountError)) throw error;
      await page.render(ctx, person, { status: 400, error: { form, message: error.reason } });
    }
  }

  router.get('/', async (ctx) => {
    const person = await signedIn(ctx);
    if (person) await page.render(ctx, person, { notice: ctx.query.done as Notice | undefined });
  });

  // The sign-in's redirect URI: the session is what counts; the code is left unredeemed (account-client.ts).
  router.get(signedInPath.slice('/account'.length), async (ctx) => {
    if (typeof ctx.query.error === 'string') {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = views.render('error', { title: 'account.not_signed_in.heading', message: 'account.not_signed_in.message', link: `${provider.issuer}/account` });
      return;
    }
    ctx.status = 303;
    ctx.redirect(returnPath(ctx.query.state));
  });

  router.post('/names', async (ctx) => {
    const person = await signedIn(ctx);
    if (!person) return;
    await account.selfService.updateNames(person, { givenName: formField(ctx, 'given_name') ?? '', familyName: formField(ctx, 'family_name') ?? '' });
    done(ctx, 'names');
  });

  router.post('/password', async (ctx) => {
    const person = await signedIn(ctx);
    if (!person) return;
    const next = formField(ctx, 'new_password') ?? '';
    if (next !== formField(ctx, 'confirm_password')) {
      await page.render(ctx, person, { status: 400, error: { form: 'password', message: 'account.password.mismatch' } });
      return;
    }
    await orShow(ctx, person, 'password', async () => {
      const refusal = await account.passwordChange.change(person.user, { uid: person.sessionUid, renew: () => guard.renew(ctx) }, { current: formField(ctx, 'current_password') ?? '', next }, ctx.ip);
      if (refusal) await refuse(ctx, person, 'password', refusal);
      else done(ctx, 'password');
    });
  });

  router.post('/email', async (ctx) => {
    const person = await signedIn(ctx);
    if (!person) return;
    // A sensitive change: a session signed in longer than REAUTH_AFTER ago must show the password again.
    if (page.needsReauth(person)) {
      const refusal = await account.passwordChange.verify(person.user, formField(ctx, 'password') ?? '', ctx.ip);
      if (refusal) {
        await refuse(ctx, person, 'email', refusal);
        return;
      }
    }
    await orShow(ctx, person, 'email', async () => {
      const requested = await account.emailChange.request(person.user, formField(ctx, 'email') ?? '', ctx.ip);
      if (!requested.isSent) {
        await refuse(ctx, person, 'email', {
          status: 429, retryAfterSeconds: requested.retryAfterSeconds,
          message: { key: 'recovery.too_many', params: { count: Math.ceil(requested.retryAfterSeconds / 60) } },
        });
        return;
      }
      done(ctx, 'email-sent');
    });
  });

  router.post('/sessions/end', async (ctx) => {
    const person = await signedIn(ctx);
    if (!person) return;
    const ended = await account.selfService.endSession(person, formField(ctx, 'session') ?? '', ctx.ip);
    if (!ended) throw new BadFormError('account.sessions.not_yours');
    done(ctx, 'session-ended');
  });

  router.post('/sessions/end-others', async (ctx) => {
    const person = await signedIn(ctx);
    if (!person) return;
    await account.selfService.endOtherSessions(person, ctx.ip);
    done(ctx, 'sessions-ended');
  });

  router.post('/apps/revoke', async (ctx) => {
    const person = await signedIn(ctx);
    if (!person) return;
    const revoked = await account.selfService.revokeApp(person, formField(ctx, 'client') ?? '', ctx.ip);
    if (!revoked) throw new BadFormError('account.apps.not_granted');
    done(ctx, 'app-revoked');
  });

  // The mailed link: anyone holding it may confirm (it proves the new mailbox); the page asks before it changes
  // anything, so a mail scanner that follows links uses nothing up. The link's token is the form's secret.
  router.get(confirmPath.slice('/account'.length), async (ctx) => {
    const token = typeof ctx.query.token === 'string' ? ctx.query.token : '';
    const pending = await account.emailChange.pending(token);
    if (!pending) throw new BadFormError('account.email_confirm.expired');
    ctx.type = 'html';
    ctx.body = views.render('account-email-confirm', { title: 'account.email_confirm.heading', token, ...pending });
  });
  router.post(confirmPath.slice('/account'.length), async (ctx) => {
    const changed = await account.emailChange.confirm(formField(ctx, 'token') ?? '', ctx.ip);
    if (!changed) throw new BadFormError('account.email_confirm.expired');
    ctx.type = 'html';
    ctx.body = views.render('account-email-confirm', { title: 'account.email_changed.heading', ...changed, isDone: true });
  });

  return router.routes();
}
