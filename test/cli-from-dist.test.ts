import { execFile } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);

/**
 * A deployment as the README describes it: `npm run build`'s output, bin/, package.json and production dependencies
 * only (no tsx, no esbuild: `npm ci --omit=dev` leaves them out), and no src/. The `latchkey` command must work there.
 */
let deploy: string;

beforeAll(async () => {
  deploy = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-deploy-'));
  await run(process.execPath, [path.resolve('node_modules/typescript/bin/tsc'), '-p', 'tsconfig.build.json', '--outDir', path.join(deploy, 'dist')]);
  fs.cpSync('bin', path.join(deploy, 'bin'), { recursive: true });
  fs.copyFileSync('package.json', path.join(deploy, 'package.json'));
  // The shared node_modules minus the TypeScript loader: importing tsx there fails as it would after --omit=dev.
  fs.mkdirSync(path.join(deploy, 'node_modules'));
  for (const name of fs.readdirSync('node_modules')) {
    if (['tsx', 'esbuild', '@esbuild', '.bin'].includes(name)) continue;
    fs.symlinkSync(path.resolve('node_modules', name), path.join(deploy, 'node_modules', name));
  }
}, 60_000);
afterAll(() => fs.rmSync(deploy, { recursive: true, force: true }));

function latchkey(...argv: string[]) {
  return run(process.execPath, [path.join(deploy, 'bin/latchkey.js'), ...argv], {
    cwd: deploy,
    env: { ...process.env, DATABASE_URL: `sqlite:${path.join(deploy, 'latchkey.sqlite')}`, KEYS_DIR: path.join(deploy, 'keys') },
  });
}

describe('the latchkey command in a dist/-only deployment', () => {
  it('has no TypeScript loader to fall back on', () => {
    expect(fs.existsSync(path.join(deploy, 'src'))).toBe(false);
    expect(fs.existsSync(path.join(deploy, 'node_modules/tsx'))).toBe(false);
    expect(fs.existsSync(path.join(deploy, 'dist/src/cli/main.js'))).toBe(true);
  });

  it('prints its usage', async () => {
    const { stdout } = await latchkey('help');
    expect(stdout).toContain('usage: latchkey <command>');
  });

  it('migrates a new database from the compiled migrations and manages users in it', async () => {
    await latchkey('users', 'create', '--email', 'ada@example.com', '--password', 'correct horse battery staple');
    const { stdout } = await latchkey('users', 'list', '--json');
    expect(JSON.parse(stdout)).toEqual([expect.objectContaining({ email: 'ada@example.com' })]);
  });
});
