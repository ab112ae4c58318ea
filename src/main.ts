import { ConfigError, loadConfig, type Config } from './config.js';
import { createLifecycleLogger } from './logger.js';
import { startServer } from './server.js';
import { isWorker, runPrimary } from './workers.js';

const log = createLifecycleLogger();

async function serve(config: Config): Promise<void> {
  const server = await startServer(config);
  const shutdown = (signal: string) => {
    log.info({ event: 'server.stopping', signal }, `${signal} received, finishing requests in flight`);
    server.close().then(() => process.exit(0), () => process.exit(1));
  };
  // Before the line that says we are up: a supervisor may send SIGTERM the moment it reads it.
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  // SIGHUP: load KEYS_DIR now instead of at the next KEYS_RELOAD_INTERVAL (after `keys retire`, say).
  process.on('SIGHUP', () => {
    server.reloadSigningKeys().then(
      (isChanged) => log.info({ event: 'keys.sighup', isChanged }, `SIGHUP received, signing keys ${isChanged ? 'reloaded' : 'unchanged'}`),
      (error: Error) => log.error({ event: 'keys.sighup', err: error.message }, 'SIGHUP received, reloading the signing keys failed'),
    );
  });
  const { size, hashingConcurrency } = server.services.threadPool;
  log.info({ event: 'server.started', issuer: server.issuer, port: server.port, threadPoolSize: size, hashingConcurrency },
    `serving ${server.issuer} on port ${server.port}`);
}

try {
  const config = loadConfig(process.env);
  await (config.workers > 1 && !isWorker() ? runPrimary(config, log) : serve(config));
} catch (error) {
  console.error(error instanceof ConfigError ? `latchkey: ${error.message}` : `latchkey: could not start: ${(error as Error).message}`);
  process.exit(1);
}
