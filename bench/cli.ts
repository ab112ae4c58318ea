import { runCli } from '../src/cli/main.js';

/** Runs one `latchkey` command in this process (the same `runCli` the command runs), as an operator would. */
export async function cli(env: Record<string, string>, ...argv: string[]): Promise<void> {
  const errors: string[] = [];
  const code = await runCli(argv, env, { stdout: () => {}, stderr: (line) => errors.push(line) });
  if (code !== 0) throw new Error(`latchkey ${argv.slice(0, 2).join(' ')} failed: ${errors.join(' ')}`);
}
