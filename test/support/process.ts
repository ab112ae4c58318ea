import { spawn, type ChildProcess } from 'node:child_process';

export type LatchkeyProcess = {
  child: ChildProcess;
  port: number;
  output: () => string;
  /** Resolves with the exit code (or signal) once the process has exited. */
  exited: Promise<number | string>;
};

/**
 * Starts `npm start`'s entry point as a real process and waits for its "serving" line. Node itself runs the server
 * (tsx as a loader, not as a wrapper process), so a signal sent to `child` reaches the server: a SIGKILL really
 * kills it.
 */
export async function spawnLatchkey(env: Record<string, string>): Promise<LatchkeyProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], { env: { ...process.env, PORT: '0', ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  const exited = new Promise<number | string>((resolve) => child.once('exit', (code, signal) => resolve(code ?? signal ?? -1)));
  const port = await new Promise<number>((resolve, reject) => {
    const onData = (chunk: Buffer) => {
      output += chunk.toString();
      // The whole line: a pipe may deliver it in pieces, and tests read what follows the port.
      const match = /serving \S+ on port (\d+).*\n/.exec(output);
      if (match) resolve(Number(match[1]));
    };
    child.stdout!.on('data', onData);
    child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    exited.then((code) => reject(new Error(`latchkey exited (${code}) before serving:\n${output}`)));
  });
  return { child, port, output: () => output, exited };
}
