import type { Context } from 'koa';
import type { Message } from '../i18n/catalogues.js';
import type { Views } from '../views.js';
import { eventLabel } from './event-labels.js';
import type { AccountOverview } from './overview.js';
import type { SignedIn } from './signed-in.js';

/**
 * What a POST that worked says on the page it returns to (`?done=`), as a catalogue key; anything else in the query
 * says nothing.
 */
const notices = {
  names: 'account.notice.names',
  password: 'account.notice.password',
  'email-sent': 'account.notice.email_sent',
  'session-ended': 'account.notice.session_ended',
  'sessions-ended': 'account.notice.sessions_ended',
  'app-revoked': 'account.notice.app_revoked',
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
    async render(ctx: Context, person: SignedIn, options: { status?: number; notice?: Notice; error?: { form: string; message: string | Message } } = {}) {
      const { user } = person;
      const [sessions, apps, events] = await Promise.all([
        overview.sessions(user.id, person.sessionUid), overview.apps(user.id), overview.events(user.id, user.email),
      ]);
      ctx.status = options.status ?? 200;
      ctx.type = 'html';
      ctx.body = deps.views.render('account', {
        title: 'account.heading',
        user,
        csrf: person.csrf,
        notice: options.notice && Object.hasOwn(notices, options.notice) ? notices[options.notice] : undefined,
        error: options.error,
        needsReauth: needsReauth(person),
        sessions,
        apps,
        events: events.map((event) => ({ ...event, label: eventLabel(event.type) })),
        time,
      });
    },
  };
}
