#!/usr/bin/env node
// The `latchkey` command: runs the TypeScript CLI through tsx, so no build step is needed.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli/main.ts');
const { readFirstLine } = await import('../src/cli/stdin.ts');
process.exitCode = await runCli(process.argv.slice(2), process.env, {
  stdout: (line) => console.log(line),
  stderr: (line) => console.error(line),
  readStdinLine: () => readFirstLine(process.stdin),
});
