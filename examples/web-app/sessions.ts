import { randomBytes } from 'node:crypto';

/** What the app remembers between the redirect to Latchkey and the callback (RFC 9700 §2.1: state, PKCE, nonce). */
export type PendingSignIn = { state: string; nonce: string; codeVerifier: string; startedAt: number };

export type SignedInUser = {
  sub: string;
  /** Latchkey's session id from the ID token, which a back-channel logout token names. */
  sid?: string;
  idToken: string;
  accessToken: string;
  refreshToken?: string;
  /** When the access token expires (ms since the epoch, by the app's clock). */
  accessTokenExpiresAt: number;
};

export type Session = {
  id: string;
  /** Synchronizer token for the state-changing forms (OWASP CSRF cheat sheet). */
  csrfToken: string;
  lastSeenAt: number;
  pending?: PendingSignIn;
  user?: SignedInUser;
  /** The API's last answer, shown once on the next page. */
  apiAnswer?: { status: number; body: string };
  /** A refresh in progress: concurrent requests wait for it instead of presenting the same refresh token twice. */
  refreshing?: Promise<void>;
};

const randomId = () => randomBytes(32).toString('base64url');

/**
 * Server-side sessions in memory, keyed by an unguessable id that is the only thing the browser holds. Tokens never
 * leave the server. (A real deployment would keep them in Redis or a database so restarts and replicas share them.)
 */
export function createSessionStore(options: { idleTimeoutSeconds: number; now: () => number }) {
  const sessions = new Map<string, Session>();

  function isExpired(session: Session) {
    return options.now() - session.lastSeenAt > options.idleTimeoutSeconds * 1000;
  }

  return {
    create(): Session {
      const session: Session = { id: randomId(), csrfToken: randomId(), lastSeenAt: options.now() };
      sessions.set(session.id, session);
      return session;
    },
    find(id: string | undefined): Session | undefined {
      const session = id ? sessions.get(id) : undefined;
      if (!session) return undefined;
      if (isExpired(session)) {
        sessions.delete(session.id);
        return undefined;
      }
      session.lastSeenAt = options.now();
      return session;
    },
    /** Moves a session to a fresh id and CSRF token (after sign-in: no session fixation). */
    renew(session: Session): Session {
      sessions.delete(session.id);
      const renewed: Session = { ...session, id: randomId(), csrfToken: randomId() };
      sessions.set(renewed.id, renewed);
      return renewed;
    },
    destroy(id: string) {
      sessions.delete(id);
    },
    /** Ends every session whose user matches; returns how many ended (back-channel logout). */
    destroyWhere(matches: (user: SignedInUser) => boolean): number {
      let count = 0;
      for (const [id, session] of sessions) {
        if (session.user && matches(session.user)) {
          sessions.delete(id);
          count += 1;
        }
      }
      return count;
    },
  };
}

export type SessionStore = ReturnType<typeof createSessionStore>;
