import type { Sessions } from '../accounts/sessions.js';
import type { Message } from '../i18n/catalogues.js';
import type { Clients } from '../registry/clients.js';
import type { AuditEventStore } from '../store/audit-events.js';
import type { OidcPayloadStore } from '../store/oidc-payloads.js';
import { accountClientId } from './account-client.js';
import type { SessionActivityLog } from './session-activity.js';
import { describeUserAgent } from './user-agent.js';

export type SessionView = {
  uid: string; device: Message; ip: string | null; signedInAt: number | null; lastUsedAt: number | null; isThisDevice: boolean;
};
export type AppView = { clientId: string; name: string; scopes: string[]; grantedAt: number | null };
export type EventView = { type: string; occurredAt: number; ip: string | null; clientId: string | null };

/** The audit events a person is shown about their own account. */
export const securityEventTypes = [
  'sign_in.success', 'sign_in.failure', 'sign_in.locked', 'user.password_changed', 'user.email_changed',
  'email.change_requested', 'session.ended', 'app.revoked', 'user.signed_out', 'logout',
];

type GrantPayload = { clientId?: string; iat?: number; openid?: { scope?: string }; resources?: Record<string, string> };

/** What the account page shows: sessions, the apps given access, recent security events. Only of `accountId`. */
export function createAccountOverview(deps: {
  sessions: Sessions; activity: SessionActivityLog; payloads: OidcPayloadStore; clients: Pick<Clients, 'find'>; auditEvents: AuditEventStore;
  now: () => number; eventCount: number;
}) {
  return {
    async sessions(accountId: string, currentUid: string): Promise<SessionView[]> {
      const sessions = await deps.sessions.list(accountId);
      const views = await Promise.all(sessions.map(async (session) => {
        const activity = await deps.activity.find(session.uid);
        return {
          uid: session.uid,
          device: describeUserAgent(activity?.userAgent),
          ip: activity?.ip ?? null,
          signedInAt: session.signedInAt,
          lastUsedAt: activity?.lastUsedAt ?? null,
          isThisDevice: session.uid === currentUid,
        };
      }));
      // This device first, then the most recently used.
      return views.sort((a, b) => Number(b.isThisDevice) - Number(a.isThisDevice) || (b.lastUsedAt ?? 0) - (a.lastUsedAt ?? 0));
    },

    /** One entry per app (a person signed in on two devices has two grants for it), with every scope given. */
    async apps(accountId: string): Promise<AppView[]> {
      const byClient = new Map<string, { scopes: Set<string>; grantedAt: number | null }>();
      for (const { payload } of await deps.payloads.listGrants(accountId, deps.now())) {
        const grant = payload as GrantPayload;
        if (!grant.clientId || grant.clientId === accountClientId) continue;
        const entry = byClient.get(grant.clientId) ?? { scopes: new Set<string>(), grantedAt: null };
        for (const scope of (grant.openid?.scope ?? '').split(' ').filter(Boolean)) entry.scopes.add(scope);
        for (const [audience, scope] of Object.entries(grant.resources ?? {})) {
          for (const one of scope.split(' ').filter(Boolean)) entry.scopes.add(`${one} (${audience})`);
        }
        const at = typeof grant.iat === 'number' ? grant.iat * 1000 : null;
        if (at !== null && (entry.grantedAt === null || at < entry.grantedAt)) entry.grantedAt = at;
        byClient.set(grant.clientId, entry);
      }
      const apps = await Promise.all([...byClient].map(async ([clientId, entry]) => ({
        clientId, name: (await deps.clients.find(clientId))?.name ?? clientId, scopes: [...entry.scopes], grantedAt: entry.grantedAt,
      })));
      return apps.sort((a, b) => a.name.localeCompare(b.name));
    },

    /** Whether the account has given this app anything (a revocation of another's app, or none, is refused). */
    async hasApp(accountId: string, clientId: string): Promise<boolean> {
      if (clientId === accountClientId) return false;
      return (await deps.payloads.listGrants(accountId, deps.now())).some(({ payload }) => (payload as GrantPayload).clientId === clientId);
    },

    /** The newest security events of the account (or naming its email), newest first. */
    async events(accountId: string, email: string): Promise<EventView[]> {
      const events = await deps.auditEvents.list({ accountId, email, types: securityEventTypes, limit: deps.eventCount });
      return events.reverse().map((event) => ({ type: event.type, occurredAt: event.occurredAt, ip: event.ip ?? null, clientId: event.clientId ?? null }));
    },
  };
}

export type AccountOverview = ReturnType<typeof createAccountOverview>;
