import { ConfigError, loadConfig } from './config.js';
import { startServer } from './server.js';

try {
  const config = loadConfig(process.env);
  const server = await startServer(config);
  console.log(`latchkey: serving ${config.issuer} on port ${server.port} (discovery: ${config.issuer}/.well-known/openid-configuration)`);
  const shutdown = (signal: string) => {
    console.log(`latchkey: ${signal} received, shutting down`);
    server.close().then(() => process.exit(0), () => process.exit(1));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
} catch (error) {
  console.error(error instanceof ConfigError ? `latchkey: ${error.message}` : `latchkey: could not start: ${(error as Error).message}`);
  process.exit(1);
}
