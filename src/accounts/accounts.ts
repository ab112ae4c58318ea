import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { DuplicateEmailError, type User, type UserStore } from '../store/users.js';
import { UserFacingError } from '../user-facing-error.js';
import { emailProblem, emailSkeleton, normalizeEmail } from './email.js';
import { checkProfile, type ProfileSettings } from './profile.js';
import { maximumPasswordLength, type PasswordPolicy } from './password-policy.js';
import { needsRehash, type PasswordHasher } from './passwords.js';
import type { LogoutReport, Sessions, UserSession } from './sessions.js';

export class AccountError extends UserFacingError {
  constructor(message: string) {
    super(message);
    this.name = 'AccountError';
  }
}

/** The normalised email of a new account; the message says what is wrong with one that cannot be. */
function checkEmail(email: string): string {
  const normalized = normalizeEmail(email);
  const problem = emailProblem(normalized);
  if (problem) throw new AccountError(`"${email}" is not a valid email address: ${problem}`);
  return normalized;
}

export type NewUser = {
  email: string;
  password: string;
  givenName?: string;
  familyName?: string;
  isAdmin?: boolean;
  emailVerified?: boolean;
} & ProfileSettings;

/** What `users update` changes: the profile claims; an empty string clears one. */
export type ProfileChanges = { givenName?: string; familyName?: string } & ProfileSettings;

export type Accounts = ReturnType<typeof createAccounts>;

/** A user whose sessions ended, and which clients were told (Back-Channel Logout). */
export type UserLogout = { user: User; logout: LogoutReport };

export function createAccounts(deps: {
  users: UserStore; sessions: Sessions; passwordPolicy: PasswordPolicy; hasher: PasswordHasher; logger: Logger; now?: () => number;
}) {
  const { users, sessions, passwordPolicy, hasher, logger } = deps;
  const now = deps.now ?? Date.now;
  let decoyHash: Promise<string> | undefined;

  /** Every way of setting a password goes through the policy. */
  function checkPassword(password: string): void {
    const problem = passwordPolicy.problem(password);
    if (problem) throw new AccountError(problem);
  }

  /**
   * A hash made with older or weaker argon2 parameters is replaced while the password is at hand. A failure here
   * must not fail the sign-in: the old hash still works, and the next sign-in tries again.
   */
  async function upgradeHash(user: User, password: string): Promise<void> {
    if (!needsRehash(user.passwordHash)) return;
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
  async function refuseLookAlike(email: string, skeleton: string): Promise<void> {
    const existing = await users.findBySkeleton(skeleton);
    if (existing && existing.email !== email) {
      throw new AccountError(`"${email}" looks like the email of the existing user ${existing.email}`);
    }
  }

  async function requireUser(email: string): Promise<User> {
    const user = await users.findByEmail(normalizeEmail(email));
    if (!user) throw new AccountError(`no user with email ${normalizeEmail(email)}`);
    return user;
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
      if (!user) {
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

    /** The active user with this id, or undefined: a disabled user is as good as gone to the provider. */
    async findActive(id: string): Promise<User | undefined> {
      const user = await users.find(id);
      return user?.isActive ? user : undefined;
    },

    async create(input: NewUser): Promise<User> {
      const email = checkEmail(input.email);
      const skeleton = emailSkeleton(email);
      checkPassword(input.password);
      const profile = checkProfile(input);
      await refuseLookAlike(email, skeleton);
      const timestamp = now();
      const user: User = {
        id: randomUUID(),
        email,
        emailSkeleton: skeleton,
        emailVerified: input.emailVerified ?? false,
        passwordHash: await hasher.hash(input.password),
        givenName: input.givenName ?? null,
        familyName: input.familyName ?? null,
        locale: profile.locale ?? null,
        zoneinfo: profile.zoneinfo ?? null,
        isActive: true,
        isAdmin: input.isAdmin ?? false,
        createdAt: timestamp,
        updatedAt: timestamp,
      };
      try {
        await users.insert(user);
      } catch (error) {
        // The skeleton is unique too: a look-alike created at the same moment loses here, and says so.
        if (!(error instanceof DuplicateEmailError)) throw error;
        await refuseLookAlike(email, skeleton);
        throw new AccountError(error.message);
      }
      return user;
    },

    findByEmail(email: string): Promise<User | undefined> {
      return users.findByEmail(normalizeEmail(email));
    },

    list(): Promise<User[]> {
      return users.list();
    },

    /** Disables the user and ends every session, grant and token they hold, at once. */
    async disable(email: string): Promise<UserLogout> {
      const user = await requireUser(email);
      await users.update(user.id, { isActive: false, updatedAt: now() });
      return { user: { ...user, isActive: false }, logout: await sessions.endAll(user.id) };
    },

    /** Signs the user out everywhere: every session, grant and token ends, and the clients are told. */
    async logout(email: string): Promise<UserLogout> {
      const user = await requireUser(email);
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

    /** Sets a new password and, as after any credential reset, ends every session and token of the user. */
    async setPassword(email: string, password: string): Promise<UserLogout> {
      checkPassword(password);
      const user = await requireUser(email);
      await users.update(user.id, { passwordHash: await hasher.hash(password), updatedAt: now() });
      return { user, logout: await sessions.endAll(user.id) };
    },
  };
}
