import { randomBytes, randomUUID } from 'node:crypto';
import type { Logger } from 'pino';
import { DuplicateEmailError, type User, type UserStore } from '../store/users.js';
import { UserFacingError } from '../user-facing-error.js';
import { emailProblem, emailSkeleton, normalizeEmail } from './email.js';
import { maximumPasswordLength, type PasswordPolicy } from './password-policy.js';
import { needsRehash, type PasswordHasher } from './passwords.js';
import type { LogoutReport, Sessions, UserSession } from './sessions.js';
import type { Transaction } from '../store/transactions.js';

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

/** The password hash of an account that has no password yet (invited, `users invite`): nothing matches it. */
export const noPassword = '';

/** Whether a session of `user` signed in at `loginTs` (oidc-provider's, epoch seconds) is still accepted. */
export function isSessionValid(user: Pick<User, 'sessionsValidAfter'>, loginTs: number | undefined): boolean {
  return !user.sessionsValidAfter || (typeof loginTs === 'number' && loginTs * 1000 >= user.sessionsValidAfter);
}

export type NewUser = {
  email: string;
  password: string;
  givenName?: string;
  familyName?: string;
  isAdmin?: boolean;
  emailVerified?: boolean;
};

export type Accounts = ReturnType<typeof createAccounts>;

/** A user whose sessions ended, and which clients were told (Back-Channel Logout). */
export type UserLogout = { user: User; logout: LogoutReport };

export function createAccounts(deps: {
  users: UserStore; sessions: Sessions; passwordPolicy: PasswordPolicy; hasher: PasswordHasher; logger: Logger; now?: () => number;
}) {
  const { users, sessions, passwordPolicy, hasher, logger } = deps;
  const now = deps.now ?? Date.now;
  /** The cutoff for sessions (isSessionValid), to the second, as oidc-provider keeps the sign-in time. */
  const thisSecond = () => Math.floor(now() / 1000) * 1000;
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

  /** The normalised address a person may change their email to, or an AccountError saying why not. */
  async function checkNewEmail(user: User, email: string): Promise<string> {
    const normalized = checkEmail(email);
    if (normalized === user.email) throw new AccountError(`${normalized} is already your email address`);
    await refuseLookAlike(normalized, emailSkeleton(normalized));
    if (await users.findByEmail(normalized)) throw new AccountError(`a user with email ${normalized} already exists`);
    return normalized;
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
      // An invited account has no password until its invitation is accepted; it costs the same as an unknown one.
      if (!user || user.passwordHash === noPassword) {
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
      // A session saved again by a request in flight is refused all the same (isSessionValid).
      await users.update(user.id, { sessionsValidAfter: thisSecond(), updatedAt: now() });
      return { user, logout: await sessions.endAll(user.id) };
    },

    async listSessions(email: string): Promise<{ user: User; sessions: UserSession[] }> {
      const user = await requireUser(email);
      return { user, sessions: await sessions.list(user.id) };
    },

    async enable(email: string): Promise<User> {
      const user = await requireUser(email);
      await users.update(user.id, { isActive: true, updatedAt: now() });
      return { ...user, isActive: true };
    },

    /** Sets a new password and, as after any credential reset, ends every session and token of the user. */
    async setPassword(email: string, password: string): Promise<UserLogout> {
      checkPassword(password);
      const user = await requireUser(email);
      await users.update(user.id, { passwordHash: await hasher.hash(password), sessionsValidAfter: thisSecond(), updatedAt: now() });
      return { user, logout: await sessions.endAll(user.id) };
    },

    /** The account page: a person's own names (empty means none). */
    async updateNames(id: string, names: { givenName: string; familyName: string }): Promise<void> {
      const clean = (name: string) => name.trim().slice(0, 100) || null;
      await users.update(id, { givenName: clean(names.givenName), familyName: clean(names.familyName), updatedAt: now() });
    },

    /**
     * Sets a new password (through the policy). Sessions signed in before `sessionsValidAfter` (epoch ms) are refused
     * from then on (isSessionValid); ending them is the caller's rule.
     */
    async changePassword(id: string, password: string, sessionsValidAfter: number, trx?: Transaction): Promise<void> {
      checkPassword(password);
      await users.update(id, { passwordHash: await hasher.hash(password), sessionsValidAfter, updatedAt: now() }, trx);
    },

    checkNewEmail,
    /** Throws AccountError when `password` breaks the password policy. */
    checkPassword,

    /** Replaces the email with one its owner has just verified (checked again: it may have been taken meanwhile). */
    async changeEmail(user: User, email: string, trx?: Transaction): Promise<void> {
      const normalized = await checkNewEmail(user, email);
      try {
        await users.update(user.id, { email: normalized, emailSkeleton: emailSkeleton(normalized), emailVerified: true, updatedAt: now() }, trx);
      } catch (error) {
        if (!(error instanceof DuplicateEmailError)) throw error;
        throw new AccountError(error.message);
      }
    },
  };
}
