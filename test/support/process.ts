import { spawn, type ChildProcess } from 'node:child_process';

/** The JSON line a server process writes once it serves (src/main.ts); one per worker with WORKERS=N. */
export type ServingLine = { event: 'server.started'; issuer: string; port: number; pid: number; threadPoolSize: number; hashingConcurrency: number };

export type LatchkeyProcess = {
  child: ChildProcess;
  port: number;
  output: () => string;
  /** The complete serving lines written so far. */
  servingLines: () => ServingLine[];
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<number | string>;
};

/** Only whole lines (a pipe may deliver one in pieces) that parse: stderr shares `output`. */
function servingLinesOf(output: string): ServingLine[] {
  return output.split('\n').slice(0, -1).filter((line) => line.includes('"server.started"')).flatMap((line) => {
    try {
      const parsed = JSON.parse(line) as { event?: string };
      return parsed.event === 'server.started' ? [parsed as ServingLine] : [];
    } catch {
      return [];
    }
  });
}

/**
 * Starts `npm start`'s entry point as a real process and waits for its serving line. Node itself runs the server
 * (tsx as a loader, not as a wrapper process), so a signal sent to `child` reaches the server: a SIGKILL really
 * kills it.
 */
export async function spawnLatchkey(env: Record<string, string>): Promise<LatchkeyProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: { ...process.env, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  let isServing = false;
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      const [serving] = isServing ? [] : servingLinesOf(output);
      if (serving) {
        isServing = true;
        resolve(serving.port);
      }
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    exited.then((code) => reject(new Error(`latchkey exited (${code}) before serving:\n${output}`)));
  });
  return { child, port, output: () => output, servingLines: () => servingLinesOf(output), exited };
}
