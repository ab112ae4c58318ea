import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Accounts } from '../accounts/accounts.js';
import type { Views } from '../views.js';
import type { Csrf } from './csrf.js';
import { formField, type InteractionDetails } from './form.js';

// One message for an unknown email, a wrong password and a disabled account: nothing tells which it was.
const failedSignIn = 'Incorrect email or password.';

export function createLogin(deps: { provider: Provider; accounts: Accounts; views: Views; csrf: Csrf }) {
  const { provider, accounts, views, csrf } = deps;

  async function clientName(clientId: unknown): Promise<string | undefined> {
    const client = typeof clientId === 'string' ? await provider.Client.find(clientId) : undefined;
    return client?.clientName ?? client?.clientId;
  }

  function render(ctx: Context, details: InteractionDetails, locals: { email?: string; error?: string; name?: string }) {
    ctx.type = 'html';
    ctx.body = views.render('login', {
      title: 'Sign in',
      uid: details.uid,
      csrf: csrf.tokenFor(details.uid),
      clientName: locals.name,
      email: locals.email ?? (typeof details.params.login_hint === 'string' ? details.params.login_hint : ''),
      error: locals.error,
    });
  }

  return {
    async show(ctx: Context, details: InteractionDetails) {
      render(ctx, details, { name: await clientName(details.params.client_id) });
    },

    async submit(ctx: Context, details: InteractionDetails) {
      const email = formField(ctx, 'email');
      const password = formField(ctx, 'password');
      const user = email && password ? await accounts.authenticate(email, password) : undefined;
      if (!user) {
        render(ctx, details, { email, error: failedSignIn, name: await clientName(details.params.client_id) });
        return;
      }
      const redirectTo = await provider.interactionResult(ctx.req, ctx.res, {
        login: { accountId: user.id, amr: ['pwd'] },
      }, { mergeWithLastSubmission: false });
      ctx.status = 303;
      ctx.redirect(redirectTo);
    },
  };
}
