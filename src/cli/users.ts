import type { UserLogout } from '../accounts/accounts.js';
import type { UserSession } from '../accounts/sessions.js';
import type { Services } from '../services.js';
import type { User } from '../store/users.js';
import { actor, IncompleteError, required, table, UsageError, type Io, type Output, type Values } from './output.js';
import { secretOption } from './stdin.js';

const publicUser = (user: User) => ({
  id: user.id,
  email: user.email,
  emailVerified: user.emailVerified,
  givenName: user.givenName,
  familyName: user.familyName,
  locale: user.locale,
  zoneinfo: user.zoneinfo,
  isActive: user.isActive,
  isAdmin: user.isAdmin,
  createdAt: new Date(user.createdAt).toISOString(),
});

const isoTime = (epochMs: number | null) => (epochMs === null ? null : new Date(epochMs).toISOString());

const publicSession = (session: UserSession) => ({
  uid: session.uid,
  signedInAt: isoTime(session.signedInAt),
  expiresAt: isoTime(session.expiresAt),
  clients: session.clients,
});

/**
 * Prints what ended and, per client, whether its logout token arrived. A client that could not be told still
 * lost the user's Latchkey session and tokens; the command then exits 1 so scripts notice.
 */
function reportLogout(out: Output, { user, logout }: UserLogout, summary: string): void {
  const { sessionsEnded, deliveries } = logout;
  out.result({ ...publicUser(user), logout: { sessionsEnded, deliveries } }, [
    `${summary} (${sessionsEnded} session${sessionsEnded === 1 ? '' : 's'} ended)`,
    ...deliveries.map((delivery) => delivery.isDelivered
      ? `back-channel logout delivered to ${delivery.clientId}`
      : `back-channel logout NOT delivered to ${delivery.clientId}: ${delivery.error}`),
  ]);
  const failed = deliveries.filter((delivery) => !delivery.isDelivered);
  if (failed.length > 0) {
    throw new IncompleteError(`the sessions of ${user.email} ended, but ${failed.length} of ${deliveries.length} logout tokens were not delivered `
      + `(${failed.map((delivery) => delivery.clientId).join(', ')}): those apps keep their own sessions until they end them`);
  }
}

/** The password of `--password P` or `--password-stdin` (the one to recommend: no argument shows it). */
async function password(values: Values, io: Io): Promise<string> {
  const given = await secretOption(values, 'password', io);
  if (given === undefined || given === '') throw new UsageError('--password-stdin (or --password) is required');
  return given;
}

export const userCommands = {
  create: {
    options: {
      email: { type: 'string' }, password: { type: 'string' }, 'password-stdin': { type: 'boolean' }, 'given-name': { type: 'string' },
      'family-name': { type: 'string' }, admin: { type: 'boolean' }, 'email-verified': { type: 'boolean' },
      locale: { type: 'string' }, zoneinfo: { type: 'string' },
    },
    async run(values: Values, { accounts, audit }: Services, out: Output, io: Io) {
      const user = await accounts.create({
        email: required(values, 'email'),
        password: await password(values, io),
        givenName: values['given-name'] as string | undefined,
        familyName: values['family-name'] as string | undefined,
        isAdmin: values.admin === true,
        emailVerified: values['email-verified'] === true,
        locale: values.locale as string | undefined,
        zoneinfo: values.zoneinfo as string | undefined,
      });
      await audit.record({ type: 'user.created', accountId: user.id, email: user.email, details: { actor: actor(), isAdmin: user.isAdmin } });
      out.result(publicUser(user), [`created user ${user.email} (sub ${user.id})`]);
    },
  },
  invite: {
    options: { email: { type: 'string' }, 'given-name': { type: 'string' }, 'family-name': { type: 'string' }, admin: { type: 'boolean' } },
    async run(values: Values, { recovery }: Services, out: Output) {
      const { user, isResent } = await recovery.invitations.invite({
        email: required(values, 'email'),
        givenName: values['given-name'] as string | undefined,
        familyName: values['family-name'] as string | undefined,
        isAdmin: values.admin === true,
        actor: actor(),
      });
      out.result({ ...publicUser(user), isResent }, [isResent
        ? `sent ${user.email} a new invitation link (the previous one no longer works)`
        : `invited ${user.email} (sub ${user.id}): a link to choose a password is on its way`]);
    },
  },
  update: {
    options: { email: { type: 'string' }, 'given-name': { type: 'string' }, 'family-name': { type: 'string' }, locale: { type: 'string' }, zoneinfo: { type: 'string' } },
    async run(values: Values, { accounts, audit }: Services, out: Output) {
      const email = required(values, 'email');
      const changes = {
        givenName: values['given-name'] as string | undefined,
        familyName: values['family-name'] as string | undefined,
        locale: values.locale as string | undefined,
        zoneinfo: values.zoneinfo as string | undefined,
      };
      const named = Object.entries(changes).filter(([, value]) => value !== undefined).map(([name]) => name);
      if (named.length === 0) throw new UsageError('name at least one of --given-name, --family-name, --locale, --zoneinfo');
      const user = await accounts.updateProfile(email, changes);
      await audit.record({ type: 'user.updated', accountId: user.id, email: user.email, details: { actor: actor(), changed: named } });
      out.result(publicUser(user), [`updated ${named.join(', ')} of ${user.email}`]);
    },
  },
  list: {
    options: {},
    async run(_values: Values, { accounts, connections }: Services, out: Output) {
      const users = await accounts.list();
      const linked = new Map<string, string[]>();
      for (const link of await connections.links()) linked.set(link.userId, [...(linked.get(link.userId) ?? []), link.connectionId]);
      const connectionsOf = (user: User) => linked.get(user.id) ?? [];
      out.result(users.map((user) => ({ ...publicUser(user), connections: connectionsOf(user) })), table(
        ['EMAIL', 'SUB', 'ACTIVE', 'ADMIN', 'NAME', 'CONNECTIONS'],
        users.map((u) => [
          u.email, u.id, u.isActive ? 'yes' : 'no', u.isAdmin ? 'yes' : 'no', [u.givenName, u.familyName].filter(Boolean).join(' '),
          connectionsOf(u).join(',') || '-',
        ]),
      ));
    },
  },
  disable: {
    options: { email: { type: 'string' } },
    async run(values: Values, { accounts, audit }: Services, out: Output) {
      const disabled = await accounts.disable(required(values, 'email'));
      await audit.record({ type: 'user.disabled', accountId: disabled.user.id, email: disabled.user.email, details: { actor: actor() } });
      reportLogout(out, disabled, `disabled ${disabled.user.email}; their sessions and tokens are revoked`);
    },
  },
  enable: {
    options: { email: { type: 'string' } },
    async run(values: Values, { accounts, audit }: Services, out: Output) {
      const user = await accounts.enable(required(values, 'email'));
      await audit.record({ type: 'user.enabled', accountId: user.id, email: user.email, details: { actor: actor() } });
      out.result(publicUser(user), [`enabled ${user.email}`]);
    },
  },
  'set-password': {
    options: { email: { type: 'string' }, password: { type: 'string' }, 'password-stdin': { type: 'boolean' } },
    async run(values: Values, { accounts, audit }: Services, out: Output, io: Io) {
      const email = required(values, 'email');
      const changed = await accounts.setPassword(email, await password(values, io));
      await audit.record({ type: 'user.password_changed', accountId: changed.user.id, email: changed.user.email, details: { actor: actor() } });
      reportLogout(out, changed, `password changed for ${changed.user.email}; their sessions and tokens are revoked`);
    },
  },
  sessions: {
    options: { email: { type: 'string' } },
    async run(values: Values, { accounts }: Services, out: Output) {
      const { sessions } = await accounts.listSessions(required(values, 'email'));
      const shown = sessions.map(publicSession);
      out.result(shown, table(
        ['SESSION', 'SIGNED IN', 'EXPIRES', 'CLIENTS (SID)'],
        shown.map((s) => [s.uid, s.signedInAt ?? '-', s.expiresAt ?? 'never', s.clients.map((c) => `${c.clientId} (${c.sid ?? '-'})`).join(', ') || '(none)']),
      ));
    },
  },
  delete: {
    options: { email: { type: 'string' } },
    async run(values: Values, { accounts, audit }: Services, out: Output) {
      const deleted = await accounts.delete(required(values, 'email'));
      await audit.record({ type: 'user.deleted', accountId: deleted.user.id, email: deleted.user.email, details: { actor: actor() } });
      reportLogout(out, deleted, `deleted user ${deleted.user.email} (sub ${deleted.user.id}); their sessions, grants and tokens are revoked, their audit events are kept`);
    },
  },
  logout: {
    options: { email: { type: 'string' } },
    async run(values: Values, { accounts, audit }: Services, out: Output) {
      const loggedOut = await accounts.logout(required(values, 'email'));
      await audit.record({ type: 'user.signed_out', accountId: loggedOut.user.id, email: loggedOut.user.email, details: { actor: actor() } });
      reportLogout(out, loggedOut, `signed ${loggedOut.user.email} out everywhere; their grants and tokens are revoked`);
    },
  },
} as const;
