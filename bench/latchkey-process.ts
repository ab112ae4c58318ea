import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';

export type BenchServer = { child: ChildProcess; pid: number; origin: string; issuer: string; startupMs: number; stop(): Promise<void> };

const root = path.resolve(import.meta.dirname, '..');

/** The node arguments of `npm start` (its V8 flags and the compiled entry point), read from package.json. */
function startArguments(): string[] {
  const { scripts } = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8')) as { scripts: { start: string } };
  const [command, ...args] = scripts.start.split(/\s+/);
  if (command !== 'node') throw new Error(`bench: expected the start script to run node, got "${scripts.start}"`);
  return args;
}

/**
 * Starts what `npm start` runs (the compiled server; `npm run bench` builds it first) as its own process and
 * waits for every worker to report it is serving, then for the first discovery response: that is the start-up time.
 */
export async function startBenchServer(env: Record<string, string>, workers: number, nodeArgs: string[] = []): Promise<BenchServer> {
  const started = performance.now();
  const child = spawn(process.execPath, [...nodeArgs, ...startArguments()], {
    cwd: root,
    env: { ...process.env, PORT: '0', NODE_ENV: 'production', WORKERS: String(workers), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  // The server logs a JSON line per security event (every token): keep only the tail for error messages, so the
  // load generator's machine does not spend its CPU on the server's log.
  let output = '';
  const keep = (chunk: Buffer) => { output = (output + chunk.toString()).slice(-20_000); };
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  // Requests go to the issuer the server announces: Latchkey answers no other host name (421).
  const origin = await new Promise<string>((resolve, reject) => {
    const issuers: string[] = [];
    let pending = '';
    child.stdout!.on('data', (chunk: Buffer) => {
      keep(chunk);
      if (issuers.length >= workers) return;
      const lines = (pending + chunk.toString()).split('\n');
      pending = lines.pop()!;
      // Each server process writes one JSON line with event server.started (src/main.ts) once it serves.
      for (const line of lines.filter((candidate) => candidate.includes('"server.started"'))) {
        const started = JSON.parse(line) as { event?: string; issuer?: string };
        if (started.event === 'server.started' && started.issuer !== undefined) issuers.push(started.issuer);
      }
      if (issuers.length >= workers) resolve(issuers[0]);
    });
    child.stderr!.on('data', keep);
    exited.then((code) => reject(new Error(`latchkey exited (${code}) before serving:\n${output}`)));
  });
  for (;;) {
    const response = await fetch(`${origin}/.well-known/openid-configuration`).catch(() => null);
    if (response?.ok) {
      const { issuer } = await response.json() as { issuer: string };
      const startupMs = performance.now() - started;
      return {
        child,
        pid: child.pid!,
        origin,
        issuer,
        startupMs,
        async stop() {
          child.kill('SIGTERM');
          const code = await exited;
          if (code !== 0) throw new Error(`latchkey exited with ${code} on SIGTERM:\n${output.slice(-2000)}`);
        },
      };
    }
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}
