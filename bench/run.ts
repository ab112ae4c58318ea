import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { measureArgon2HashesPerSecond, measureBareKoa, measureOidcProviderAlone, measureRs256SignsPerSecond } from './ceilings.js';
import { startBenchServer } from './latchkey-process.js';
import { sampleTree } from './process-stats.js';
import { renderMarkdown, type BenchReport, type Ceilings, type WorkersRun } from './report.js';
import { prepare, runScenarios, type Timing } from './scenarios.js';
import { checkTargets } from './targets.js';

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    workers: { type: 'string' },
    only: { type: 'string' },
    profile: { type: 'boolean' },
  },
});

function positive(name: string, raw: string | undefined, fallback: number): number {
  if (raw === undefined) return fallback;
  const value = Number(raw);
  if (!Number.isFinite(value) || value <= 0) {
    console.error(`bench: --${name} must be a positive number, got "${raw}"`);
    process.exit(2);
  }
  return value;
}

const isSmoke = values.smoke === true;
const timing: Timing = {
  warmupSeconds: positive('warmup', values.warmup, isSmoke ? 0.5 : 2),
  durationSeconds: positive('duration', values.duration, isSmoke ? 1 : 8),
  connections: positive('connections', values.connections, 10),
  signInConcurrency: 8,
  only: values.only,
};
// --profile: the server writes a V8 CPU profile (open it in Chrome DevTools or speedscope) when it stops.
const profileDir = path.join(import.meta.dirname, 'results', 'profiles');
const serverNodeArgs = values.profile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
const workerCounts = (values.workers ?? process.env.WORKERS ?? (isSmoke ? '1' : '1,2')).split(',').map((raw) => positive('workers', raw, 1));
const databaseUrl = process.env.DATABASE_URL;
const log = (line: string) => console.log(line);

log(`bench: ${isSmoke ? 'smoke run' : 'full run'}, ${timing.durationSeconds}s per scenario after ${timing.warmupSeconds}s warm-up, ${timing.connections} connections, WORKERS=${workerCounts.join(' and ')}, ${databaseUrl ? 'DATABASE_URL' : 'a fresh SQLite file'}`);

// The ceilings first, on an idle machine; a full run measures them again at the end, to show whether the machine
// kept its speed (a VM's neighbours can take a third of it away for minutes).
const ceilingSeconds = isSmoke ? 0.5 : 3;
async function measureCeilings(): Promise<Ceilings> {
  const load = { connections: timing.connections, warmupSeconds: timing.warmupSeconds, durationSeconds: ceilingSeconds * 2 };
  const bareKoa = await measureBareKoa(load);
  const providerAlone = await measureOidcProviderAlone(load);
  return {
    rs256: await measureRs256SignsPerSecond(ceilingSeconds * 1000),
    argon2: await measureArgon2HashesPerSecond(ceilingSeconds * 1000, timing.signInConcurrency),
    bareKoa: bareKoa.requestsPerSecond,
    providerUserinfo: providerAlone.userinfo,
    providerIntrospection: providerAlone.introspection,
  };
}
const describeCeilings = (measured: Ceilings) =>
  `RS256 ${Math.round(measured.rs256)} signs/s (one core), argon2id ${Math.round(measured.argon2)} hashes/s (all cores), bare Koa ${Math.round(measured.bareKoa)} req/s, ` +
  `oidc-provider alone ${Math.round(measured.providerUserinfo)} userinfo and ${Math.round(measured.providerIntrospection)} introspection req/s`;
const ceilings = await measureCeilings();
log(`ceilings: ${describeCeilings(ceilings)}`);

// The load comes from one address, signing the same eight users in several times a second and minting thousands of
// codes: exactly what the per-IP and per-account rate limits exist to stop. They are lifted so the benchmark measures
// the server (each request still pays for counting itself); the login throttle's failure limits stay at their defaults.
const liftedRateLimits = {
  STATEFUL_REQUESTS_PER_IP_PER_MINUTE: '1000000',
  LOGIN_IP_MAX_ATTEMPTS_PER_MINUTE: '1000000',
  LOGIN_ACCOUNT_MAX_ATTEMPTS_PER_MINUTE: '1000000',
};

const runs: WorkersRun[] = [];
let failed = false;
for (const workers of workerCounts) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-'));
  const env = { DATABASE_URL: databaseUrl ?? `sqlite:${path.join(dir, 'bench.sqlite')}`, KEYS_DIR: path.join(dir, 'keys'), ...liftedRateLimits };
  const server = await startBenchServer(env, workers, serverNodeArgs);
  try {
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idleRssBytes = sampleTree(server.pid).rssBytes;
    log(`WORKERS=${workers}: first discovery response ${Math.round(server.startupMs)} ms after start, idle RSS ${(idleRssBytes / 2 ** 20).toFixed(0)} MB`);
    const fixture = await prepare(server, env, crypto.randomBytes(4).toString('hex'), timing.signInConcurrency);
    const scenarios = await runScenarios(fixture, timing, log);
    runs.push({ workers, startupMs: server.startupMs, idleRssBytes, scenarios });
    failed ||= scenarios.some((scenario) => scenario.failures > 0);
  } finally {
    await server.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const ceilingsAtEnd = isSmoke ? null : await measureCeilings();
if (ceilingsAtEnd) log(`ceilings at the end: ${describeCeilings(ceilingsAtEnd)}`);

const report: BenchReport = {
  date: new Date().toISOString(),
  isSmoke,
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, memoryGiB: Math.round(os.totalmem() / 2 ** 30) },
  database: databaseUrl ? databaseUrl.replace(/\/\/[^@/]*@/, '//***@').split(':')[0] : 'sqlite',
  timing,
  ceilings,
  ceilingsAtEnd,
  runs,
};
// Speed is judged on full runs only; a smoke run's seconds say nothing.
const targets = isSmoke || timing.only ? [] : checkTargets(report);
const markdown = renderMarkdown(report, targets);
const resultsDir = path.join(import.meta.dirname, 'results');
const stamp = `${report.date.replace(/[:.]/g, '-')}${isSmoke ? '-smoke' : ''}`;
fs.mkdirSync(resultsDir, { recursive: true });
fs.writeFileSync(path.join(resultsDir, `${stamp}.md`), markdown);
fs.writeFileSync(path.join(resultsDir, `${stamp}.json`), `${JSON.stringify({ ...report, targets }, null, 2)}\n`);
log(`\n${markdown}`);
log(`bench: wrote bench/results/${stamp}.md and .json${values.profile ? `; CPU profiles in ${path.relative(process.cwd(), profileDir)}/` : ''}`);
if (failed) {
  console.error('bench: some requests failed (non-2xx, errors or timeouts): see the failures column');
  process.exit(1);
}
