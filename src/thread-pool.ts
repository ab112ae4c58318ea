import os from 'node:os';

/** libuv's thread pool size when UV_THREADPOOL_SIZE is not set. */
const libuvDefaultSize = 4;

/**
 * Threads of the pool that password hashes never take: SQLite statements, RSA signatures and file reads run there
 * too, and a sign-in burst must not make every token and userinfo request wait for a 25 ms hash.
 */
export const threadsKeptFromHashing = 2;

/** The thread pool this process has (or will have): libuv reads UV_THREADPOOL_SIZE when it first uses the pool. */
export function threadPoolSize(env: NodeJS.ProcessEnv = process.env): number {
  const configured = Number(env.UV_THREADPOOL_SIZE);
  return Number.isInteger(configured) && configured > 0 ? configured : libuvDefaultSize;
}

/**
 * Each of `workers` processes on this host hashes at most its share of the cores (at least one), and never on the
 * threads kept for the other requests.
 */
export function hashingConcurrency(workers: number, poolSize = threadPoolSize(), cores = os.availableParallelism()): number {
  return Math.max(1, Math.min(Math.floor(cores / workers), poolSize - threadsKeptFromHashing));
}

/**
 * The pool a worker process needs so that its share of the cores can hash while two threads stay free: libuv's 4
 * on up to two cores per worker, more on larger hosts. An operator's own UV_THREADPOOL_SIZE is kept. Node starts
 * the pool while it loads the first ES module, before any of our code runs, so this can only be given to the worker
 * processes the primary forks; a single process has the pool its environment gave it.
 */
export function workerThreadPoolSize(workers: number, env: NodeJS.ProcessEnv = process.env, cores = os.availableParallelism()): number {
  if (env.UV_THREADPOOL_SIZE !== undefined) return threadPoolSize(env);
  return Math.max(libuvDefaultSize, Math.max(1, Math.floor(cores / workers)) + threadsKeptFromHashing);
}
