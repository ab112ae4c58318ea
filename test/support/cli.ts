import { Readable } from 'node:stream';
import type { DestinationStream } from 'pino';
import { runCli } from '../../src/cli/main.js';

/**
 * Runs the CLI in-process, exactly as bin/latchkey.js does, capturing its output (and its audit log lines in `log`).
 * `stdin` is what a pipe into the command would carry.
 */
export async function runCliCapturing(argv: string[], env: Record<string, string | undefined>, log?: DestinationStream, stdin?: string) {
  const stdout: string[] = [];
  const stderr: string[] = [];
  const code = await runCli(argv, env, {
    stdout: (line) => stdout.push(line), stderr: (line) => stderr.push(line), ...(log ? { log } : {}), ...(stdin !== undefined ? { stdin: Readable.from([stdin]) } : {}),
  });
  return { code, stdout: stdout.join('\n'), stderr: stderr.join('\n') };
}
