import type Router from '@koa/router';
import type { Context } from 'koa';
import type { Audit } from '../audit.js';
import { formField } from '../interaction/form.js';
import type { Message } from '../i18n/catalogues.js';
import type { User } from '../store/users.js';
import type { SignedIn } from './account-security.js';
import { passkeyLabel, type Passkeys } from './passkeys.js';
import type { SecondFactors } from './second-factors.js';

type Notice = { error?: string | Message; message?: string | Message };

/** What the account security page shares with its passkey routes (src/mfa/account-security.ts). */
type AccountPage = {
  passkeys: Passkeys;
  secondFactors: SecondFactors;
  audit: Audit;
  requireSignedIn(ctx: Context): Promise<SignedIn | undefined>;
  passwordProblem(ctx: Context, user: User): Promise<{ error: string | Message; status: number } | undefined>;
  overview(ctx: Context, signedIn: SignedIn, notice?: Notice, status?: number): Promise<void>;
  isLastNeededFactor(accountId: string): Promise<boolean>;
  showRecoveryCodes(ctx: Context, codes: string[]): void;
  translate(message: string | Message): string;
};

/** Why a factor cannot be removed: the last one while MFA=required. */
export const lastFactorMessage = (what: 'totp' | 'passkey'): Message => ({ key: `mfa.security.last_factor.${what}` });

/**
 * Passkeys on /account/security: add one (its name, the password again, then the browser's ceremony), rename one,
 * remove one (the password again; never the last factor MFA=required needs). The ceremony's challenge is bound to
 * the Latchkey session and is only issued after the password matched, so a session cookie alone cannot add a
 * passkey. The options answer JSON for public/passkeys.js; everything else answers a page.
 */
export function mountAccountPasskeys(router: Router, page: AccountPage) {
  const { passkeys, secondFactors, audit } = page;

  router.post('/passkeys/options', async (ctx) => {
    const signedIn = await page.requireSignedIn(ctx);
    if (!signedIn) return;
    const problem = await page.passwordProblem(ctx, signedIn.user);
    if (problem) {
      ctx.status = problem.status;
      ctx.body = { error: page.translate(problem.error) };
      return;
    }
    ctx.body = { options: await passkeys.registrationOptions('enrol', signedIn.sessionUid, signedIn.user) };
  });

  router.post('/passkeys', async (ctx) => {
    const signedIn = await page.requireSignedIn(ctx);
    if (!signedIn) return;
    const { user } = signedIn;
    const hadFactor = await secondFactors.hasFactor(user.id);
    const added = await passkeys.register('enrol', signedIn.sessionUid, user, formField(ctx, 'response'), passkeyLabel(formField(ctx, 'name')));
    if (added === 'duplicate') return page.overview(ctx, signedIn, { error: 'mfa.passkey.duplicate' }, 409);
    if (!added) return page.overview(ctx, signedIn, { error: 'mfa.passkey.not_added' }, 400);
    void audit.record({ type: 'mfa.enrolled', accountId: user.id, email: user.email, ip: ctx.ip, details: { kind: 'passkey', where: 'account', passkeyId: added.id } });
    // The first factor comes with recovery codes, as an authenticator app does.
    if (!hadFactor) return page.showRecoveryCodes(ctx, await secondFactors.regenerateRecoveryCodes(user.id));
    await page.overview(ctx, signedIn, { message: { key: 'mfa.passkey.added', params: { name: added.label } } });
  });

  router.post('/passkeys/:id/rename', async (ctx) => {
    const signedIn = await page.requireSignedIn(ctx);
    if (!signedIn) return;
    const isRenamed = await passkeys.rename(signedIn.user.id, ctx.params.id, passkeyLabel(formField(ctx, 'name')));
    if (!isRenamed) return page.overview(ctx, signedIn, { error: 'mfa.passkey.not_yours' }, 404);
    await page.overview(ctx, signedIn, { message: 'mfa.passkey.renamed' });
  });

  router.post('/passkeys/:id/remove', async (ctx) => {
    const signedIn = await page.requireSignedIn(ctx);
    if (!signedIn) return;
    const { user } = signedIn;
    if (!(await passkeys.list(user.id)).some((passkey) => passkey.id === ctx.params.id)) {
      return page.overview(ctx, signedIn, { error: 'mfa.passkey.not_yours' }, 404);
    }
    if (await page.isLastNeededFactor(user.id)) return page.overview(ctx, signedIn, { error: lastFactorMessage('passkey') }, 409);
    const problem = await page.passwordProblem(ctx, user);
    if (problem) return page.overview(ctx, signedIn, { error: problem.error }, problem.status);
    if (await passkeys.remove(user.id, ctx.params.id)) {
      void audit.record({ type: 'mfa.removed', accountId: user.id, email: user.email, ip: ctx.ip, details: { kind: 'passkey', actor: 'self', passkeyId: ctx.params.id } });
    }
    await secondFactors.forgetRecoveryCodesWithoutFactor(user.id);
    await page.overview(ctx, signedIn, { message: 'mfa.passkey.removed' });
  });
}
