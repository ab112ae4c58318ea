import type { StoredConnection } from '../store/connections.js';
import type { User } from '../store/users.js';

/** What the upstream says about the person, from its validated ID token and (same `sub`) its userinfo. */
export type UpstreamProfile = {
  subject: string;
  /** Normalised; null when the upstream shared none. */
  email: string | null;
  /** Only a JSON `true` counts: a missing claim or the string "true" is not a verification. */
  emailVerified: boolean;
  givenName: string | null;
  familyName: string | null;
};

/** Why a federated sign-in was refused; each has its own page text (routes.ts) and audit reason. */
export type RefusalReason =
  | 'account_disabled' | 'no_email' | 'email_domain' | 'no_account' | 'link_disabled' | 'email_not_verified'
  | 'local_email_not_verified' | 'email_taken';

export type Decision =
  | { kind: 'sign_in'; user: User }
  | { kind: 'link'; user: User }
  | { kind: 'create' }
  | { kind: 'refuse'; reason: RefusalReason };

const domainOf = (email: string) => email.slice(email.lastIndexOf('@') + 1);

/**
 * The linking policy (docs/federation.md, "Linking"). The pair (connection, upstream `sub`) identifies the person,
 * never the email alone. An existing local account is linked by email only when the connection allows it, the
 * upstream vouches for the email (`email_verified: true`) and the local account's own email is verified: linking on
 * an unverified email on either side hands the account to whoever typed that email first.
 *
 * `linked`: the local user of the identity already linked (undefined: none; null: linked to a user that is gone).
 * `emailOwner`: the local user holding the upstream's email, when the identity is not linked.
 */
export function decide(input: {
  connection: StoredConnection; profile: UpstreamProfile; linked: User | null | undefined; emailOwner: User | undefined;
}): Decision {
  const { connection, profile, linked, emailOwner } = input;
  if (connection.emailDomains.length > 0) {
    // Checked on the verified email only: an unverified one could name any domain.
    const isAllowed = profile.email !== null && profile.emailVerified && connection.emailDomains.includes(domainOf(profile.email));
    if (!isAllowed) return { kind: 'refuse', reason: 'email_domain' };
  }
  if (linked !== undefined) {
    return linked?.isActive ? { kind: 'sign_in', user: linked } : { kind: 'refuse', reason: 'account_disabled' };
  }
  if (profile.email === null) return { kind: 'refuse', reason: 'no_email' };
  if (!emailOwner) return connection.createUsers ? { kind: 'create' } : { kind: 'refuse', reason: 'no_account' };
  if (connection.linkByEmail === 'never') return { kind: 'refuse', reason: 'link_disabled' };
  if (!profile.emailVerified) return { kind: 'refuse', reason: 'email_not_verified' };
  if (!emailOwner.emailVerified) return { kind: 'refuse', reason: 'local_email_not_verified' };
  if (!emailOwner.isActive) return { kind: 'refuse', reason: 'account_disabled' };
  return { kind: 'link', user: emailOwner };
}
