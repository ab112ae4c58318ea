import { ConfigError, loadConfig, type Config } from './config.js';
import { startServer } from './server.js';
import { hashingConcurrency, threadPoolSize } from './thread-pool.js';
import { isWorker, runPrimary } from './workers.js';

const log = (line: string) => console.log(line);

async function serve(config: Config): Promise<void> {
  const server = await startServer(config);
  const shutdown = (signal: string) => {
    log(`latchkey: ${signal} received, finishing requests in flight (pid ${process.pid})`);
    server.close().then(() => process.exit(0), () => process.exit(1));
  };
  // Before the line that says we are up: a supervisor may send SIGTERM the moment it reads it.
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
  // SIGHUP: load KEYS_DIR now instead of at the next KEYS_RELOAD_INTERVAL (after `keys retire`, say).
  process.on('SIGHUP', () => {
    server.reloadSigningKeys().then(
      (isChanged) => log(`latchkey: SIGHUP received, signing keys ${isChanged ? 'reloaded' : 'unchanged'} (pid ${process.pid})`),
      (error: Error) => log(`latchkey: SIGHUP received, reloading the signing keys failed: ${error.message} (pid ${process.pid})`),
    );
  });
  const threads = threadPoolSize(config.threadPoolSize);
  log(`latchkey: serving ${server.issuer} on port ${server.port} (pid ${process.pid}, ${threads} pool threads, password hashing ${hashingConcurrency(config.workers, threads)} at a time)`);
}

try {
  const config = loadConfig(process.env);
  await (config.workers > 1 && !isWorker() ? runPrimary(config, log) : serve(config));
} catch (error) {
  console.error(error instanceof ConfigError ? `latchkey: ${error.message}` : `latchkey: could not start: ${(error as Error).message}`);
  process.exit(1);
}
