import type { Context } from 'koa';
import type { Views } from '../views.js';
import { eventLabels } from './event-labels.js';
import type { AccountOverview } from './overview.js';
import type { SignedIn } from './signed-in.js';

/** What a POST that worked says on the page it returns to (`?done=`); anything else in the query says nothing. */
const notices = {
  names: 'Your name was saved.',
  password: 'Your password was changed. Your other sessions were signed out.',
  'email-sent': 'We sent a link to your new address. Your email changes once you open it.',
  'session-ended': 'The session was ended.',
  'sessions-ended': 'All your other sessions were ended.',
  'app-revoked': 'The app no longer has access to your account.',
};
export type Notice = keyof typeof notices;

/** "2026-12-03 14:05 UTC": one unambiguous format, no locale guessed from the request. */
const time = (epochMs: number | null) => (epochMs === null ? '—' : `${new Date(epochMs).toISOString().slice(0, 16).replace('T', ' ')} UTC`);

export function accountPage(deps: { overview: AccountOverview; views: Views; reauthAfterSeconds: number; now: () => number }) {
  const { overview } = deps;
  /** REAUTH_AFTER: a password or email change from a session signed in longer ago asks for the password again. */
  const needsReauth = (person: SignedIn) => deps.now() - person.signedInAt > deps.reauthAfterSeconds * 1000;
  return {
    needsReauth,
    async render(ctx: Context, person: SignedIn, options: { status?: number; notice?: Notice; error?: { form: string; message: string } } = {}) {
      const { user } = person;
      const [sessions, apps, events] = await Promise.all([
        overview.sessions(user.id, person.sessionUid), overview.apps(user.id), overview.events(user.id, user.email),
      ]);
      ctx.status = options.status ?? 200;
      ctx.type = 'html';
      ctx.body = deps.views.render('account', {
        title: 'Your account',
        user,
        csrf: person.csrf,
        notice: options.notice && Object.hasOwn(notices, options.notice) ? notices[options.notice] : undefined,
        error: options.error,
        needsReauth: needsReauth(person),
        sessions,
        apps,
        events: events.map((event) => ({ ...event, label: eventLabels[event.type] ?? event.type })),
        time,
      });
    },
  };
}
