import type { Context } from 'koa';
import type Provider from 'oidc-provider';
import type { Message } from '../i18n/catalogues.js';
import type { Accounts } from '../accounts/accounts.js';
import { scopeClaims } from '../oidc/claims.js';
import type { Views } from '../views.js';
import type { Csrf } from './csrf.js';
import type { InteractionDetails } from './form.js';

/** The OpenID scopes whose meaning the consent and device confirmation pages explain (`scope.<name>` in locales/). */
export const describedScopes = new Set(['openid', 'email', 'profile', 'offline_access']);

/** What a scope lets an app do, in the reader's language; another scope is shown by its name. */
export const describeScope = (scope: string): Message => (describedScopes.has(scope) ? { key: `scope.${scope}` } : { key: 'scope.other', params: { scope } });

type ConsentDetails = {
  missingOIDCScope?: string[];
  missingOIDCClaims?: string[];
  missingResourceScopes?: Record<string, string[]>;
};

/**
 * "Not you?": the same authorization request again with prompt=login, so someone else can sign in. oidc-provider
 * itself signs the current account out first when another one signs in to its session (end_session_confirm), and
 * its apps are told. The hint naming the current person (login_hint, id_token_hint) is left out.
 */
function switchAccountUrl(details: InteractionDetails): string {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(details.params)) {
    if (typeof value === 'string' && name !== 'prompt' && name !== 'login_hint' && name !== 'id_token_hint') params.set(name, value);
  }
  params.set('prompt', 'login');
  return `/auth?${params}`;
}

/**
 * The lines of the consent page: what each missing scope allows, and each claim the app asked for by name (the
 * `claims` parameter, OpenID Connect Core §5.5) said the way its scope says it, so "email" asked for with only the
 * `openid` scope still reads "See your email address" before it is given.
 */
function requestedAccess(missing: ConsentDetails): Message[] {
  const claimScope = (claim: string) => Object.entries(scopeClaims).find(([, claims]) => claims.includes(claim))?.[0] ?? claim;
  const asked = [...(missing.missingOIDCScope ?? []), ...(missing.missingOIDCClaims ?? []).map(claimScope)];
  return [...new Set(asked)].map(describeScope);
}

export function createConsent(deps: { provider: Provider; accounts: Accounts; views: Views; csrf: Csrf }) {
  const { provider, views, csrf } = deps;

  /** Grants exactly what the prompt says is missing, extending the user's existing grant for this client. */
  async function grantRequested(details: InteractionDetails): Promise<string> {
    const missing = details.prompt.details as ConsentDetails;
    const accountId = details.session?.accountId;
    const grant = (details.grantId && await provider.Grant.find(details.grantId))
      || new provider.Grant({ accountId, clientId: details.params.client_id as string });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    for (const [indicator, scopes] of Object.entries(missing.missingResourceScopes ?? {})) {
      grant.addResourceScope(indicator, scopes.join(' '));
    }
    return grant.save();
  }

  async function finish(ctx: Context, details: InteractionDetails) {
    const grantId = await grantRequested(details);
    const redirectTo = await provider.interactionResult(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    ctx.status = 303;
    ctx.redirect(redirectTo);
  }

  /**
   * Every API a token may be issued for from this authorization (each requested `resource`), with the scopes asked
   * of it: the ones this consent grants and the ones the user granted this app before. The authorization endpoint
   * refuses an API asked without any of its scopes (oidc/api-access.ts), so none is left off the page.
   */
  async function requestedApis(details: InteractionDetails) {
    const missing = (details.prompt.details as ConsentDetails).missingResourceScopes ?? {};
    const grant = details.grantId ? await provider.Grant.find(details.grantId) : undefined;
    const asked = new Set(typeof details.params.scope === 'string' ? details.params.scope.split(' ') : []);
    const audiences = [details.params.resource].flat().filter((value): value is string => typeof value === 'string');
    return [...new Set([...audiences, ...Object.keys(missing)])].map((audience) => {
      const granted = (grant?.getResourceScope(audience) ?? '').split(' ').filter((scope) => asked.has(scope));
      return { audience, scopes: [...new Set([...(missing[audience] ?? []), ...granted])] };
    });
  }

  return {
    /**
     * A client registered with --skip-consent has its grant extended before the consent prompt is checked
     * (oidc/skip-consent.ts), so it reaches this page only when the request itself asks for the prompt
     * (prompt=consent); it is still not shown a page.
     */
    async show(ctx: Context, details: InteractionDetails) {
      const client = await provider.Client.find(details.params.client_id as string);
      if (client?.['skip_consent'] === true) {
        await finish(ctx, details);
        return;
      }
      const missing = details.prompt.details as ConsentDetails;
      ctx.type = 'html';
      ctx.body = views.render('consent', {
        title: 'consent.title',
        uid: details.uid,
        csrf: csrf.tokenFor(details.uid),
        clientName: client?.clientName ?? client?.clientId,
        scopes: requestedAccess(missing),
        apis: await requestedApis(details),
        signedInAs: details.session?.accountId ? (await deps.accounts.findActive(details.session.accountId))?.email : undefined,
        switchAccountUrl: switchAccountUrl(details),
      });
    },
    submit: finish,
  };
}
