import cluster from 'node:cluster';
import type { Logger } from 'pino';
import type { Config } from './config.js';
import { openServices } from './services.js';
import { workerThreadPoolSize } from './thread-pool.js';

/**
 * WORKERS=N: the primary migrates the database and creates the keys once (no start-up races), then forks N worker
 * processes that share the listening port (node:cluster) and each run a full server. A worker that dies is replaced.
 * SIGTERM/SIGINT are passed to every worker; the primary exits 0 once all have shut down gracefully. SIGHUP (reload
 * the signing keys now) is passed on too.
 */
export async function runPrimary(config: Config, log: Logger): Promise<void> {
  const services = await openServices(config);
  await services.providerHost.ensureKeys();
  await services.close();

  let isStopping = false;
  // Each worker's thread pool has room for its share of the hashes and two threads more (libuv reads this at start).
  const workerEnv = { UV_THREADPOOL_SIZE: String(workerThreadPoolSize(config.workers, config.threadPoolSize)) };
  const fork = () => cluster.fork(workerEnv);
  cluster.on('exit', (worker, code, signal) => {
    if (isStopping) {
      if (Object.keys(cluster.workers ?? {}).length === 0) process.exit(0);
      return;
    }
    log.warn({ event: 'worker.replaced', workerPid: worker.process.pid, exit: signal ?? code }, `worker ${worker.process.pid} exited (${signal ?? code}); starting a new one`);
    fork();
  });
  const stop = (signal: NodeJS.Signals) => {
    if (isStopping) return;
    isStopping = true;
    log.info({ event: 'workers.stopping', signal, workers: config.workers }, `${signal} received, stopping ${config.workers} workers`);
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill(signal);
  };
  process.once('SIGTERM', () => stop('SIGTERM'));
  process.once('SIGINT', () => stop('SIGINT'));
  process.on('SIGHUP', () => {
    for (const worker of Object.values(cluster.workers ?? {})) worker?.process.kill('SIGHUP');
  });
  for (let i = 0; i < config.workers; i++) fork();
}

export const isWorker = () => cluster.isWorker;
