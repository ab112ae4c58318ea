import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import path from 'node:path';
import readline from 'node:readline';
import pg from 'pg';
import { startBenchServer, type BenchServer } from './latchkey-process.js';
import type { Target } from './scenarios.js';

/** One configuration to measure. */
export type Plan = {
  label: string;
  database: 'sqlite' | 'postgresql';
  workers: number;
  /** Latchkey processes on one database; more than one stand behind a round-robin proxy (one issuer). */
  instances: number;
  isProduction: boolean;
  /** Only discovery and the JWKS (the configuration a newcomer starts). */
  documentsOnly: boolean;
};

export type Instances = { target: Target; env: Record<string, string>; startupMs: number; stop(): Promise<void> };

/** `serverUrl` with its path replaced by `/name`: the same server, user and options, another database. */
function withDatabase(serverUrl: string, name: string): string {
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return url.href;
}

/** A fresh PostgreSQL database on the server of `serverUrl` (its maintenance database), and how to drop it. */
async function createPostgresDatabase(serverUrl: string): Promise<{ url: string; drop(): Promise<void> }> {
  const name = `latchkey_bench_${crypto.randomBytes(6).toString('hex')}`;
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: withDatabase(serverUrl, 'postgres') });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`create database ${name}`);
  return { url: withDatabase(serverUrl, name), drop: () => admin(`drop database if exists ${name} with (force)`) };
}

/** The round-robin proxy in its own process: its port first, then the backends' ports it is given. */
async function startProxy() {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(import.meta.dirname, 'round-robin-proxy.ts')], { stdio: ['pipe', 'pipe', 'inherit'] });
  const lines = readline.createInterface({ input: child.stdout! });
  const nextLine = () => new Promise<string>((resolve, reject) => {
    lines.once('line', resolve);
    child.once('exit', (code) => reject(new Error(`the round-robin proxy exited (${code})`)));
  });
  const port = Number(await nextLine());
  return {
    port,
    async route(ports: number[]) {
      child.stdin!.write(`${ports.join(' ')}\n`);
      await nextLine();
    },
    stop: () => child.kill('SIGKILL'),
  };
}

/**
 * Starts the plan's Latchkey process(es) on a fresh database (SQLite in `dir`, or a new PostgreSQL database) with a
 * key directory in `dir`; several instances share both, with ISSUER set to the proxy in front of them.
 */
export async function startInstances(plan: Plan, options: { dir: string; postgresUrl: string; env: Record<string, string>; nodeArgs: string[] }): Promise<Instances> {
  const database = plan.database === 'postgresql'
    ? await createPostgresDatabase(options.postgresUrl)
    : { url: `sqlite:${path.join(options.dir, 'bench.sqlite')}`, drop: async () => undefined };
  const proxy = plan.instances > 1 ? await startProxy() : null;
  const env: Record<string, string> = {
    DATABASE_URL: database.url, KEYS_DIR: path.join(options.dir, 'keys'), ...options.env,
    ...(proxy ? { ISSUER: `http://localhost:${proxy.port}` } : {}),
  };
  const servers: BenchServer[] = [];
  const stop = async () => {
    proxy?.stop();
    await Promise.all(servers.map((server) => server.stop()));
    await database.drop();
  };
  try {
    // One after the other: the first migrates the database and creates the keys.
    for (let i = 0; i < plan.instances; i++) {
      servers.push(await startBenchServer(env, { workers: plan.workers, nodeArgs: options.nodeArgs, isProduction: plan.isProduction }));
    }
    await proxy?.route(servers.map((server) => server.port));
  } catch (error) {
    await stop().catch(() => {});
    throw error;
  }
  return { target: { origin: servers[0].origin, pids: servers.map((server) => server.pid) }, env, startupMs: servers[0].startupMs, stop };
}
