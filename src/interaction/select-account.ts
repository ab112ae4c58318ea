import type Router from '@koa/router';
import type { Context } from 'koa';
import Provider, { interactionPolicy, type KoaContextWithOIDC } from 'oidc-provider';
import { isSessionValid, type Accounts } from '../accounts/accounts.js';
import { userClaims } from '../oidc/claims.js';
import type { Views } from '../views.js';
import type { Csrf } from './csrf.js';
import type { InteractionDetails } from './form.js';

/** The reason the login prompt gives when the person chose "Use another account" on the chooser page. */
export const anotherAccountReason = 'another_account';

type Choice = { anotherAccount?: boolean };
const choiceOf = (result: unknown): Choice | undefined => (result as { select_account?: Choice } | undefined)?.select_account;

/**
 * `prompt=select_account` (OpenID Connect Core §3.1.2.1), as a prompt placed before oidc-provider's `login`: a
 * browser signed in to a valid session is shown who that is, to continue as them or sign in as someone else.
 * There is nothing to choose without such a session (none, one whose account is no longer active, or one from
 * before the password changed, which the login prompt's cutoff refuses anyway): the login form comes straight away.
 * Signing in settles the choice too, so a person who has just signed in is not asked again. `none` with it is
 * refused by oidc-provider (`invalid_request`: `none` must stand alone).
 *
 * "Use another account" puts one more reason on the login prompt. The login that follows is an ordinary one: when it
 * is someone else, oidc-provider's resume ends the previous person's session first (end_session_confirm: its grants
 * revoked, its apps told by back-channel logout) and then signs the new person in to a new session.
 */
export function addAccountSelection(policy: interactionPolicy.DefaultPolicy) {
  const { Check, Prompt } = interactionPolicy;
  const prompt = new Prompt({ name: 'select_account', requestable: true });
  // A requestable prompt's own check asks whenever the parameter is there; this one asks only when someone is signed in.
  prompt.checks.remove('select_account_prompt');
  prompt.checks.add(new Check('select_account_prompt', 'the End-User is asked to select an account', (ctx: KoaContextWithOIDC) => {
    const { oidc } = ctx;
    if (!oidc.prompts.has('select_account') || !oidc.promptPending('select_account') || oidc.result?.login) return Check.NO_NEED_TO_PROMPT;
    const account = oidc.account as { sessionsValidAfter?: number | null } | undefined;
    if (!account || !isSessionValid({ sessionsValidAfter: account.sessionsValidAfter ?? null }, oidc.session?.loginTs)) return Check.NO_NEED_TO_PROMPT;
    return Check.REQUEST_PROMPT;
  }));
  policy.add(prompt, 0);
  policy.get('login')!.checks.add(new Check(anotherAccountReason, 'the End-User chose to sign in with another account', (ctx: KoaContextWithOIDC) => {
    const { result } = ctx.oidc;
    return choiceOf(result)?.anotherAccount === true && !result?.login ? Check.REQUEST_PROMPT : Check.NO_NEED_TO_PROMPT;
  }));
  return policy;
}

type LoadDetails = (ctx: Context, expectedPrompt?: string) => Promise<InteractionDetails>;

/** The chooser page and its two answers. */
export function createAccountSelection(deps: { provider: Provider; accounts: Accounts; views: Views; csrf: Csrf }) {
  const { provider, accounts, views, csrf } = deps;

  async function choose(ctx: Context, choice: Choice) {
    const redirectTo = await provider.interactionResult(ctx.req, ctx.res, { select_account: choice }, { mergeWithLastSubmission: true });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  }

  return {
    /** Whether the login form comes from "Use another account": then no one's email is filled in. */
    isAnotherAccount: (details: InteractionDetails) => details.prompt.reasons.includes(anotherAccountReason),

    async show(ctx: Context, details: InteractionDetails) {
      const accountId = details.session?.accountId;
      const user = accountId ? await accounts.findActive(accountId) : undefined;
      // Disabled since the prompt was checked: no one to continue as.
      if (!user) return choose(ctx, { anotherAccount: true });
      const client = await provider.Client.find(details.params.client_id as string);
      ctx.type = 'html';
      ctx.body = views.render('select-account', {
        title: 'select_account.title',
        uid: details.uid,
        csrf: csrf.tokenFor(details.uid),
        clientName: client?.clientName ?? client?.clientId,
        name: userClaims(user).name,
        email: user.email,
      });
      return undefined;
    },

    mount(router: Router, loadDetails: LoadDetails) {
      router.post('/select-account/continue', async (ctx) => {
        await loadDetails(ctx, 'select_account');
        await choose(ctx, {});
      });
      router.post('/select-account/another', async (ctx) => {
        await loadDetails(ctx, 'select_account');
        await choose(ctx, { anotherAccount: true });
      });
    },
  };
}
