import argon2 from 'argon2';

/**
 * argon2id with OWASP's Password Storage Cheat Sheet minimum (m = 19 MiB, t = 2, p = 1).
 * The parameters are stored in each hash, so raising them later still verifies old hashes.
 */
export const passwordHashOptions = {
  type: argon2.argon2id,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
} as const;

/** Thrown instead of queueing a hash when `queueLength` hashes already wait: the caller answers 503. */
export class HashingBusyError extends Error {
  constructor() {
    super('too many password checks are waiting');
    this.name = 'HashingBusyError';
  }
}

/**
 * The queue every password hash waits in (not a rate limit: it bounds how many hashes run at once, not how often
 * anyone may try; that is login-throttle.ts). Runs at most `concurrency` tasks at once; up to `queueLength` more wait in order, and any beyond that are refused with
 * HashingBusyError at once. argon2 computes on libuv's thread pool, which SQLite statements and RSA signing share:
 * one hash per core already uses every core, and more would only hold 19 MiB each and take the threads the
 * requests that are not signing in need (`hashingConcurrency` in thread-pool.ts). An unbounded queue would let one
 * burst of sign-ins make every sign-in wait for all of it; a bounded one keeps the wait to `queueLength` hashes.
 */
export function createHashingQueue(concurrency: number, queueLength: number) {
  let running = 0;
  const waiting: (() => void)[] = [];
  return async function runInQueue<T>(task: () => Promise<T>): Promise<T> {
    if (running >= concurrency) {
      if (waiting.length >= queueLength) throw new HashingBusyError();
      await new Promise<void>((resolve) => waiting.push(resolve));
    } else {
      running += 1;
    }
    try {
      return await task();
    } finally {
      const next = waiting.shift();
      if (next) next();
      else running -= 1;
    }
  };
}

/**
 * Hashes and verifies passwords, at most `concurrency` at a time in this process, with at most `queueLength`
 * waiting (more: HashingBusyError). The server gives each worker process its share of the host's cores
 * (cores ÷ WORKERS, within its thread pool), so the whole host hashes at most one password per core.
 */
export function createPasswordHasher(options: { concurrency: number; queueLength: number }) {
  const runInQueue = createHashingQueue(options.concurrency, options.queueLength);
  return {
    hash(password: string): Promise<string> {
      return runInQueue(() => argon2.hash(password, passwordHashOptions));
    },
    /** Whether the password matches; a malformed hash is a mismatch, never an error (a full queue is). */
    verify(hash: string, password: string): Promise<boolean> {
      return runInQueue(() => argon2.verify(hash, password).catch(() => false));
    },
  };
}

export type PasswordHasher = ReturnType<typeof createPasswordHasher>;

/** Whether a stored hash was made with other parameters than today's (older, weaker settings or another variant). */
export function needsRehash(hash: string): boolean {
  try {
    return argon2.needsRehash(hash, passwordHashOptions);
  } catch {
    return true;
  }
}
