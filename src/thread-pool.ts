import os from 'node:os';
import type { Config } from './config.js';

/** libuv's thread pool size when UV_THREADPOOL_SIZE is not set. */
const libuvDefaultSize = 4;

/**
 * Threads of the pool that password hashes never take: SQLite statements, RSA signatures and file reads run there
 * too, and a sign-in burst must not make every token and userinfo request wait for a 25 ms hash.
 */
const threadsKeptFromHashing = 2;

/** The thread pool of a process whose UV_THREADPOOL_SIZE is `configured` (null: not set). */
export function threadPoolSize(configured: number | null): number {
  return configured ?? libuvDefaultSize;
}

/** Each of `workers` processes on this host gets an equal share of its cores, at least one. */
const coreShare = (workers: number, cores: number) => Math.max(1, Math.floor(cores / workers));

/** A process hashes at most its share of the cores, and never on the threads kept for the other requests. */
export function hashingConcurrency(workers: number, poolSize: number, cores = os.availableParallelism()): number {
  return Math.max(1, Math.min(coreShare(workers, cores), poolSize - threadsKeptFromHashing));
}

/**
 * The pool a worker process needs so that its share of the cores can hash while two threads stay free: libuv's 4
 * on up to two cores per worker, more on larger hosts. An operator's own UV_THREADPOOL_SIZE is kept. Node starts
 * the pool while it loads the first ES module, before any of our code runs, so this can only be given to the worker
 * processes the primary forks; a single process has the pool its environment gave it.
 */
export function workerThreadPoolSize(workers: number, configured: number | null, cores = os.availableParallelism()): number {
  return configured ?? Math.max(libuvDefaultSize, coreShare(workers, cores) + threadsKeptFromHashing);
}

/** This process's thread pool and how many password hashes run on it at once. */
export type ThreadPoolPlan = { size: number; hashingConcurrency: number };

/** Decided once, by the composition root: the hasher runs by it and the start-up line reports it. */
export function planThreadPool(config: Pick<Config, 'workers' | 'threadPoolSize'>): ThreadPoolPlan {
  const size = threadPoolSize(config.threadPoolSize);
  return { size, hashingConcurrency: hashingConcurrency(config.workers, size) };
}
