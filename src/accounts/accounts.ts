import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { inEnglish, type Message } from '../i18n/catalogues.js';
import type { Transaction, Transactions } from '../store/transactions.js';
import { DuplicateEmailError, type User, type UserStore } from '../store/users.js';
import { UserFacingError } from '../user-facing-error.js';
import { emailProblem, emailSkeleton, normalizeEmail } from './email.js';
import { checkProfile, type ProfileSettings } from './profile.js';
import { maximumPasswordLength, type PasswordPolicy } from './password-policy.js';
import { needsRehash, type PasswordHasher } from './passwords.js';
import type { LogoutReport, Sessions, UserSession } from './sessions.js';

/** An account rule refused: `reason` for a page (in the reader's language), `message` its English for the CLI. */
export class AccountError extends UserFacingError {
  constructor(readonly reason: Message) {
    super(inEnglish(reason));
    this.name = 'AccountError';
  }
}

/** The normalised email of a new account; the message says what is wrong with one that cannot be. */
function checkEmail(email: string): string {
  const normalized = normalizeEmail(email);
  const problem = emailProblem(normalized);
  if (problem) throw new AccountError({ key: 'account_rules.email.invalid', params: { email, problem } });
  return normalized;
}

/** Whether a session of `user` signed in at `loginTs` (oidc-provider's, epoch seconds) is still accepted. */
export function isSessionValid(user: Pick<User, 'sessionsValidAfter'>, loginTs: number | undefined): boolean {
  return !user.sessionsValidAfter || (typeof loginTs === 'number' && loginTs * 1000 >= user.sessionsValidAfter);
}

export type NewUser = {
  email: string;
  /** Absent: the account has no password (invited and not yet accepted, or created by an upstream connection). */
  password?: string;
  givenName?: string;
  familyName?: string;
  isAdmin?: boolean;
  emailVerified?: boolean;
  /** Created through the sign-up page (REQUIRE_VERIFIED_EMAIL). */
  isSelfRegistered?: boolean;
} & ProfileSettings;

/** What `users update` changes: the profile claims; an empty string clears one. */
export type ProfileChanges = { givenName?: string; familyName?: string } & ProfileSettings;

export type Accounts = ReturnType<typeof createAccounts>;

/** A user whose sessions ended, and which clients were told (Back-Channel Logout). */
export type UserLogout = { user: User; logout: LogoutReport };

export function createAccounts(deps: {
  users: UserStore; sessions: Sessions; passwordPolicy: PasswordPolicy; hasher: PasswordHasher; transactions: Transactions; logger: Logger; now?: () => number;
}) {
  const { users, sessions, passwordPolicy, hasher, transactions, logger } = deps;
  const now = deps.now ?? Date.now;
  /** The cutoff for sessions (isSessionValid), to the second, as oidc-provider keeps the sign-in time. */
  const thisSecond = () => Math.floor(now() / 1000) * 1000;
  let decoyHash: Promise<string> | undefined;

  /** Every way of setting a password goes through the policy. */
  async function checkPassword(password: string): Promise<void> {
    const problem = await passwordPolicy.problem(password);
    if (problem) throw new AccountError(problem);
  }

  /**
   * A hash made with older or weaker argon2 parameters is replaced while the password is at hand. A failure here
   * must not fail the sign-in: the old hash still works, and the next sign-in tries again.
   */
  async function upgradeHash(user: User, password: string): Promise<void> {
    if (user.passwordHash === null || !needsRehash(user.passwordHash)) return;
    try {
      await users.update(user.id, { passwordHash: await hasher.hash(password), updatedAt: now() });
    } catch (error) {
      logger.warn({ event: 'password.rehash_failed', accountId: user.id, err: (error as Error).message }, 'could not upgrade a password hash');
    }
  }

  /**
   * An email that looks like another account's (the same skeleton: "асе@example.com" in Cyrillic and
   * "ace@example.com") is refused rather than warned about: an identity server that lets one person be mistaken for
   * another on a consent page, in an audit trail or in an app's user list has lost its point.
   */
  async function refuseLookAlike(email: string, skeleton: string, trx?: Transaction): Promise<void> {
    const existing = await users.findBySkeleton(skeleton, trx);
    if (existing && existing.email !== email) {
      throw new AccountError({ key: 'account_rules.email.look_alike', params: { email, existing: existing.email } });
    }
  }

  async function requireUser(email: string): Promise<User> {
    const user = await users.findByEmail(normalizeEmail(email));
    if (!user) throw new AccountError({ key: 'account_rules.no_user', params: { email: normalizeEmail(email) } });
    return user;
  }

  /**
   * The normalised address a person asks to change their email to, and the other account that holds it or an
   * address that looks like it (`owner`), if any; an AccountError when the address itself is unusable. Whether
   * another account holds it is for the caller to keep to itself (account/email-change.ts): telling the person would
   * let anyone with an account find out who else has one.
   */
  async function checkNewEmail(user: User, email: string): Promise<{ email: string; owner?: User }> {
    const normalized = checkEmail(email);
    if (normalized === user.email) throw new AccountError({ key: 'account_rules.email.already_yours', params: { email: normalized } });
    const owner = await users.findByEmail(normalized) ?? await users.findBySkeleton(emailSkeleton(normalized));
    return owner && owner.id !== user.id ? { email: normalized, owner } : { email: normalized };
  }

  return {
    /**
     * Returns the active user whose password matches, or undefined. An unknown email still pays for one
     * argon2id verification against a decoy hash, so timing does not tell which emails exist. Throws
     * HashingBusyError when too many password checks are already waiting.
     */
    async authenticate(email: string, password: string): Promise<User | undefined> {
      // The policy counts code points; one is at most two UTF-16 units.
      if (password.length > 2 * maximumPasswordLength) return undefined;
      const user = await users.findByEmail(normalizeEmail(email));
      // A user without a password (invited, or signs in through a connection) takes the unknown email's path: same
      // answer, same time.
      if (!user || user.passwordHash === null) {
        // A decoy that could not be made (hashing was busy) is made again by the next attempt.
        decoyHash ??= hasher.hash(randomBytes(16).toString('hex')).catch((error: unknown) => {
          decoyHash = undefined;
          throw error;
        });
        await hasher.verify(await decoyHash, password);
        return undefined;
      }
      const isMatch = await hasher.verify(user.passwordHash, password);
      if (!isMatch || !user.isActive) return undefined;
      await upgradeHash(user, password);
      return user;
    },

    /** The user with this id, active or not. */
    findById(id: string): Promise<User | undefined> {
      return users.find(id);
    },

    /** The active user with this id, or undefined: a disabled user is as good as gone to the provider. */
    async findActive(id: string): Promise<User | undefined> {
      const user = await users.find(id);
      return user?.isActive ? user : undefined;
    },

    /** In `trx` when given (with the link and the mail that go with the new account). */
    async create(input: NewUser, trx?: Transaction): Promise<User> {
      const email = checkEmail(input.email);
      const skeleton = emailSkeleton(email);
      if (input.password !== undefined) await checkPassword(input.password);
      const profile = checkProfile(input);
      await refuseLookAlike(email, skeleton, trx);
      const timestamp = now();
      const user: User = {
        id: randomUUID(),
        email,
        emailSkeleton: skeleton,
        emailVerified: input.emailVerified ?? false,
        passwordHash: input.password === undefined ? null : await hasher.hash(input.password),
        givenName: input.givenName ?? null,
        familyName: input.familyName ?? null,
        locale: profile.locale ?? null,
        zoneinfo: profile.zoneinfo ?? null,
        isActive: true,
        isAdmin: input.isAdmin ?? false,
        isSelfRegistered: input.isSelfRegistered ?? false,
        createdAt: timestamp,
        updatedAt: timestamp,
      };
      try {
        await users.insert(user, trx);
      } catch (error) {
        // The skeleton is unique too: a look-alike created at the same moment loses here, and says so. Inside a
        // transaction (aborted by the failed insert on PostgreSQL) without asking who holds it.
        if (!(error instanceof DuplicateEmailError)) throw error;
        if (trx) throw new AccountError({ key: 'account_rules.email.held_or_imitated', params: { email } });
        await refuseLookAlike(email, skeleton);
        throw new AccountError({ key: 'account_rules.email.taken', params: { email } });
      }
      return user;
    },

    /**
     * Moves a user to a new email, verified or not, with the same checks as a new account's; an email another account
     * holds (or imitates) is refused with an AccountError.
     */
    async changeEmail(id: string, newEmail: string, isVerified: boolean, trx?: Transaction): Promise<User> {
      const email = checkEmail(newEmail);
      const skeleton = emailSkeleton(email);
      const user = await users.find(id);
      if (!user) throw new AccountError({ key: 'account_rules.no_such_user' });
      const holder = await users.findBySkeleton(skeleton);
      if (holder && holder.id !== id) throw new AccountError({ key: 'account_rules.email.held_or_imitated', params: { email } });
      const changes = { email, emailSkeleton: skeleton, emailVerified: isVerified, updatedAt: now() };
      try {
        await users.update(id, changes, trx);
      } catch (error) {
        if (!(error instanceof DuplicateEmailError)) throw error;
        throw new AccountError({ key: 'account_rules.email.held', params: { email } });
      }
      return { ...user, ...changes };
    },

    findByEmail(email: string): Promise<User | undefined> {
      return users.findByEmail(normalizeEmail(email));
    },

    list(): Promise<User[]> {
      return users.list();
    },

    /**
     * Disables the user and ends every session, grant and token they hold, at once. A session saved again by a
     * request in flight stays refused when the user is enabled again (isSessionValid).
     */
    async disable(email: string): Promise<UserLogout> {
      const user = await requireUser(email);
      await users.update(user.id, { isActive: false, sessionsValidAfter: thisSecond(), updatedAt: now() });
      return { user: { ...user, isActive: false }, logout: await sessions.endAll(user.id) };
    },

    /** Signs the user out everywhere: every session, grant and token ends, and the clients are told. */
    async logout(email: string): Promise<UserLogout> {
      const user = await requireUser(email);
      // A session saved again by a request in flight is refused all the same (isSessionValid).
      await users.update(user.id, { sessionsValidAfter: thisSecond(), updatedAt: now() });
      return { user, logout: await sessions.endAll(user.id) };
    },

    async listSessions(email: string): Promise<{ user: User; sessions: UserSession[] }> {
      const user = await requireUser(email);
      return { user, sessions: await sessions.list(user.id) };
    },

    /** Changes the profile claims; `updated_at` (the claim) moves with them. */
    async updateProfile(email: string, changes: ProfileChanges): Promise<User> {
      const user = await requireUser(email);
      const cleared = (value: string | undefined) => (value === undefined ? undefined : value || null);
      const updated = {
        givenName: cleared(changes.givenName), familyName: cleared(changes.familyName), ...checkProfile(changes), updatedAt: now(),
      };
      await users.update(user.id, updated);
      const changed = Object.entries(updated).filter(([, value]) => value !== undefined);
      return { ...user, ...Object.fromEntries(changed) };
    },

    async enable(email: string): Promise<User> {
      const user = await requireUser(email);
      await users.update(user.id, { isActive: true, updatedAt: now() });
      return { ...user, isActive: true };
    },

    /**
     * Deletes the user: the one way an account is removed, so everything that belongs to a user goes with it here
     * (tables that reference users do so ON DELETE CASCADE). The account is disabled first, so no sign-in or token
     * request that is in flight gets anything; then every session, grant and token ends and the clients are told
     * (back-channel logout); then the row goes. A failure half-way leaves a disabled user, and the command can be
     * run again. The audit trail keeps the user's events (it holds ids and emails, not references).
     */
    async delete(email: string): Promise<UserLogout> {
      const user = await requireUser(email);
      await users.update(user.id, { isActive: false, updatedAt: now() });
      const logout = await sessions.endAll(user.id);
      await users.delete(user.id);
      return { user: { ...user, isActive: false }, logout };
    },

    /** The reason this password may not be set, or undefined (checked before a mailed link is used up). */
    passwordProblem(password: string): Promise<Message | undefined> {
      return passwordPolicy.problem(password);
    },

    /** Sets a new password and, as after any credential reset, ends every session and token of the user. */
    async setPassword(email: string, password: string): Promise<UserLogout> {
      const user = await requireUser(email);
      return (await changePassword(user, password))!;
    },

    changePassword,

    /** The account page: a person's own names (empty means none). */
    async updateNames(id: string, names: { givenName: string; familyName: string }): Promise<void> {
      const clean = (name: string) => name.trim().slice(0, 100) || null;
      await users.update(id, { givenName: clean(names.givenName), familyName: clean(names.familyName), updatedAt: now() });
    },

    /**
     * The account page: a person sets a new password themselves (through the policy). Sessions signed in before
     * `sessionsValidAfter` (epoch ms) are refused from then on (isSessionValid); ending them is the caller's rule
     * (the account page keeps the session that made the change).
     */
    async setOwnPassword(id: string, password: string, sessionsValidAfter: number, trx?: Transaction): Promise<void> {
      await checkPassword(password);
      await users.update(id, { passwordHash: await hasher.hash(password), sessionsValidAfter, updatedAt: now() }, trx);
    },

    checkNewEmail,
    /** Throws AccountError when `password` breaks the password policy. */
    checkPassword,
  };

  /**
   * The one way a password is replaced (the CLI's set-password, a reset link, an invitation): the policy, the hash,
   * and then — as after any credential reset — every session, grant and token of the user ends, with back-channel
   * logout. `within(trx)` runs in the transaction that stores the hash (a mailed link used up, the mail that
   * announces the change); when it returns false, nothing is changed and undefined is returned.
   */
  async function changePassword(user: User, password: string, within?: (trx: Transaction) => Promise<boolean>, changes: Partial<User> = {}): Promise<UserLogout | undefined> {
    await checkPassword(password);
    const passwordHash = await hasher.hash(password);
    const isChanged = await transactions.run(async (trx) => {
      if (within && !(await within(trx))) return false;
      // Every session ends below; a request still in flight must not write one back (isSessionValid).
      await users.update(user.id, { ...changes, passwordHash, sessionsValidAfter: thisSecond(), updatedAt: now() }, trx);
      return true;
    });
    if (!isChanged) return undefined;
    return { user: { ...user, ...changes, passwordHash }, logout: await sessions.endAll(user.id) };
  }
}
