import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import path from 'node:path';

export type BenchServer = {
  child: ChildProcess;
  pid: number;
  /** The port this process (and its workers) listens on. */
  port: number;
  /** Where requests go: the issuer's origin (this process, or a proxy in front of several). */
  origin: string;
  issuer: string;
  startupMs: number;
  stop(): Promise<void>;
};

export type StartOptions = {
  workers: number;
  /** V8 flags for the server (the profiler). */
  nodeArgs?: string[];
  /** NODE_ENV=production, as a deployment sets it; false runs it as a newcomer's `npm start` does. */
  isProduction?: boolean;
};

const root = path.resolve(import.meta.dirname, '..');

/** The node arguments of `npm start` (its V8 flags and the compiled entry point), read from package.json. */
function startArguments(): string[] {
  const { scripts } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const [command, ...args] = scripts.start.split(/\s+/);
  if (command !== 'node') throw new Error(`bench: expected the start script to run node, got "${scripts.start}"`);
  return args;
}

/** GET `path` from the process on `port` itself, addressed to the issuer's host (a proxy may not route yet). */
function getDirect(port: number, issuer: string, urlPath: string): Promise<number> {
  return new Promise((resolve) => {
    const request = http.get({ host: '127.0.0.1', port, path: urlPath, headers: { host: new URL(issuer).host } }, (response) => {
      response.resume();
      response.on('end', () => resolve(response.statusCode ?? 0));
    });
    request.on('error', () => resolve(0));
  });
}

/**
 * Starts what `npm start` runs (the compiled server; `npm run bench` builds it first) as its own process and
 * waits for every worker to report it is serving, then for the first discovery response: that is the start-up time.
 */
export async function startBenchServer(env: Record<string, string>, options: StartOptions): Promise<BenchServer> {
  const { workers, nodeArgs = [], isProduction = true } = options;
  const started = performance.now();
  const { NODE_ENV: _inherited, ...inherited } = process.env;
  const child = spawn(process.execPath, [...nodeArgs, ...startArguments()], {
    cwd: root,
    env: { ...inherited, PORT: '0', ...(isProduction ? { NODE_ENV: 'production' } : {}), WORKERS: String(workers), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The server logs a JSON line per security event (every token): keep only the tail for error messages, so the
  // load generator's machine does not spend its CPU on the server's log.
  let output = '';
  const keep = (chunk: Buffer) => { output = (output + chunk.toString()).slice(-20_000); };
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const announced = await new Promise<{ issuer: string; port: number }>((resolve, reject) => {
    const seen: Array<{ issuer: string; port: number }> = [];
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      keep(chunk);
      if (seen.length >= workers) return;
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop()!;
      // Each server process writes one JSON line with event server.started (src/main.ts) once it serves.
      for (const line of lines.filter((candidate) => candidate.includes('"server.started"'))) {
        const event = JSON.parse(line) as { event?: string; issuer?: string; port?: number };
        if (event.event === 'server.started' && event.issuer !== undefined && event.port !== undefined) seen.push({ issuer: event.issuer, port: event.port });
      }
      if (seen.length >= workers) resolve(seen[0]);
    });
    child.stderr!.on('data', keep);
    exited.then((code) => reject(new Error(`latchkey exited (${code}) before serving:\n${output}`)));
  });
  while (await getDirect(announced.port, announced.issuer, '/.well-known/openid-configuration') !== 200) {
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return {
    child,
    pid: child.pid!,
    port: announced.port,
    origin: new URL(announced.issuer).origin,
    issuer: announced.issuer,
    startupMs: performance.now() - started,
    async stop() {
      child.kill('SIGTERM');
      const code = await exited;
      if (code !== 0) throw new Error(`latchkey exited with ${code} on SIGTERM:\n${output.slice(-2000)}`);
    },
  };
}
