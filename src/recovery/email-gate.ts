import type { Context } from 'koa';
import type { Audit } from '../audit.js';
import type { User } from '../store/users.js';
import type { Views } from '../views.js';
import type { PageCsrf } from './page-csrf.js';
import { createSignedTickets } from './page-csrf.js';
import type { ReturnToSignIn } from './return-to-sign-in.js';
import type { Verification } from './verification.js';

/** How long the "send the link again" button works after the sign-in that showed it. */
const ticketTtlMs = 3_600_000;

export type EmailGate = ReturnType<typeof createEmailGate>;

/**
 * REQUIRE_VERIFIED_EMAIL at sign-in: a held person (verification.isHeld) who typed the right password is shown
 * "check your inbox", with a button to send the link again, instead of being sent back to the app. The button's
 * form carries a ticket (the account, signed by the server, for an hour) and the page CSRF token.
 */
export function createEmailGate(deps: {
  verification: Verification; views: Views; csrf: PageCsrf; returnTo: ReturnToSignIn; audit: Audit; key: string; now: () => number;
}) {
  const { verification, views, csrf, returnTo, audit, now } = deps;
  const tickets = createSignedTickets(deps.key);

  function render(ctx: Context, accountId: string, email: string, isResent: boolean) {
    ctx.type = 'html';
    ctx.body = views.render('recovery/held', {
      title: 'recovery.inbox.heading', email, isResent, csrf: csrf.fieldFor(ctx), ticket: tickets.issue(accountId, now() + ticketTtlMs),
    });
  }

  return {
    /** Shows the page and returns true when `user` may not be signed in yet (the caller stops there). */
    async hold(ctx: Context, user: User, uid: string): Promise<boolean> {
      if (!verification.isHeld(user)) return false;
      void audit.record({ type: 'sign_in.unverified', accountId: user.id, email: user.email, ip: ctx.ip });
      // Once the address is verified in this browser, the person comes back to this sign-in.
      returnTo.remember(ctx, uid);
      render(ctx, user.id, user.email, false);
      return true;
    },

    /** The button: a new link (within the hourly limit), and the same page again. */
    async resend(ctx: Context, ticket: unknown): Promise<boolean> {
      const accountId = tickets.verify(ticket, now());
      if (!accountId) return false;
      await verification.resend(accountId);
      render(ctx, accountId, '', true);
      return true;
    },
  };
}
