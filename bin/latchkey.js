#!/usr/bin/env node
// The `latchkey` command. In a checkout (src/ and tsx present) it runs the TypeScript sources through tsx, so an
// edit takes effect without a build; in a deployment (`npm run build`, then `dist/` shipped with
// `npm ci --omit=dev`, which leaves out tsx) it runs the compiled CLI in dist/.
import fs from 'node:fs';

async function loadCli() {
  if (fs.existsSync(new URL('../src/cli/main.ts', import.meta.url))) {
    // Only a missing tsx means "deployed without development dependencies"; any other failure is reported.
    const tsx = await import('tsx/esm/api').catch((error) => {
      if (error?.code === 'ERR_MODULE_NOT_FOUND') return undefined;
      throw error;
    });
    if (tsx) {
      tsx.register();
      return import('../src/cli/main.ts');
    }
  }
  const compiled = new URL('../dist/src/cli/main.js', import.meta.url);
  if (!fs.existsSync(compiled)) {
    console.error('latchkey: no dist/src/cli/main.js and no tsx to run the sources: run `npm run build` first');
    process.exit(1);
  }
  return import(compiled.href);
}

const { runCli } = await loadCli();
process.exitCode = await runCli(process.argv.slice(2), process.env, {
  stdout: (line) => console.log(line),
  stderr: (line) => console.error(line),
  // Only the commands that read a secret touch standard input (opening it can hold the process open).
  get stdin() {
    return process.stdin;
  },
});
