#!/usr/bin/env node
// The `latchkey` command: runs the TypeScript CLI through tsx, so no build step is needed.
import { register } from 'tsx/esm/api';

register();
const { runCli } = await import('../src/cli/main.ts');
process.exitCode = await runCli(process.argv.slice(2), process.env, {
  stdout: (line) => console.log(line),
  stderr: (line) => console.error(line),
  // Only the commands that read a secret touch standard input (opening it can hold the process open).
  get stdin() {
    return process.stdin;
  },
});
