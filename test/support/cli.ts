import type { DestinationStream } from 'pino';
import { runCli } from '../../src/cli/main.js';

/** Runs the CLI in-process, exactly as bin/latchkey.js does, capturing its output (and its audit log lines in `log`). */
export async function runCliCapturing(argv: string[], env: Record<string, string | undefined>, log?: DestinationStream) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runCli(argv, env, { stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line), ...(log ? { log } : {}) });
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}
