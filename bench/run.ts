import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { measureArgon2, measureDocumentServer, measureOidcProviderAlone, measureRs256, type Measured } from './ceilings.js';
import { startInstances, type Instances, type Plan } from './instances.js';
import { sampleTree } from './process-stats.js';
import { renderMarkdown, type BenchReport, type Ceilings, type RunResult } from './report.js';
import { federatedSignInName, isWanted, prepare, runDocumentScenarios, runScenarios, type CeilingName, type Timing } from './scenarios.js';
import { captureDocuments, type StaticDocument } from './static-documents.js';
import { checkTargets } from './targets.js';

const { values } = parseArgs({
  options: {
    smoke: { type: 'boolean' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    connections: { type: 'string' },
    workers: { type: 'string' },
    databases: { type: 'string' },
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
const nodeArgs = values.profile ? ['--cpu-prof', '--cpu-prof-dir', profileDir] : [];
const workerCounts = (values.workers ?? process.env.WORKERS ?? '1,2').split(',').map((raw) => positive('workers', raw, 1));
const databases = (values.databases ?? 'sqlite,postgresql').split(',');
if (databases.some((name) => name !== 'sqlite' && name !== 'postgresql')) {
  console.error(`bench: --databases takes sqlite and/or postgresql, got "${values.databases}"`);
  process.exit(2);
}
// The PostgreSQL server; the bench creates a database of its own on it for every configuration, and drops it after.
const postgresUrl = process.env.BENCH_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
const log = (line: string) => console.log(line);

// SQLite with each worker count; the documents as a newcomer's `npm start` serves them (no NODE_ENV); PostgreSQL with
// one instance, then two instances on the same database behind a round-robin proxy.
const plans: Plan[] = [];
if (databases.includes('sqlite')) {
  for (const workers of workerCounts) {
    plans.push({ label: `SQLite, WORKERS=${workers}`, database: 'sqlite', workers, instances: 1, isProduction: true, documentsOnly: false });
    const wantsDocuments = ['discovery', 'jwks'].some((name) => isWanted(timing.only, name));
    if (workers === 1 && wantsDocuments) plans.push({ label: 'SQLite, WORKERS=1, `npm start` without NODE_ENV', database: 'sqlite', workers, instances: 1, isProduction: false, documentsOnly: true });
  }
}
if (databases.includes('postgresql')) {
  plans.push({ label: 'PostgreSQL, WORKERS=1', database: 'postgresql', workers: 1, instances: 1, isProduction: true, documentsOnly: false });
  plans.push({ label: 'PostgreSQL, two instances (round-robin proxy)', database: 'postgresql', workers: 1, instances: 2, isProduction: true, documentsOnly: false });
}
log(`bench: ${isSmoke ? 'smoke run' : 'full run'}, ${timing.durationSeconds}s per scenario after ${timing.warmupSeconds}s warm-up, ${timing.connections} connections; ${plans.map((plan) => plan.label).join('; ')}`);

// The ceilings, on an idle machine (the first server sits idle meanwhile: the static-document ceilings answer its
// own bytes); a full run measures them again at the end, to show whether the machine kept its speed.
const ceilingSeconds = isSmoke ? 0.5 : 3;
async function measureCeilings(documents: Record<string, StaticDocument>): Promise<Ceilings> {
  const load = { connections: timing.connections, warmupSeconds: timing.warmupSeconds, durationSeconds: ceilingSeconds * 2 };
  const http = await measureDocumentServer('./bare-http.ts', documents, load);
  const koa = await measureDocumentServer('./bare-koa.ts', documents, load);
  const providerAlone = await measureOidcProviderAlone(load);
  const measured: Record<CeilingName, Measured> = {
    httpDiscovery: http.discovery,
    httpJwks: http.jwks,
    koaDiscovery: koa.discovery,
    koaJwks: koa.jwks,
    rs256: await measureRs256(ceilingSeconds * 1000),
    argon2: await measureArgon2(ceilingSeconds * 1000, timing.signInConcurrency),
    providerUserinfo: providerAlone.userinfo,
    providerIntrospection: providerAlone.introspection,
  };
  const rates = Object.fromEntries(Object.entries(measured).map(([name, value]) => [name, value.perSecond])) as Record<CeilingName, number>;
  return { ...rates, cpuSeconds: Object.fromEntries(Object.entries(measured).map(([name, value]) => [name, value.cpuSeconds])) as Record<CeilingName, number> };
}
const describeCeilings = (measured: Ceilings) =>
  `node:http ${Math.round(measured.httpDiscovery)}/${Math.round(measured.httpJwks)} and Koa ${Math.round(measured.koaDiscovery)}/${Math.round(measured.koaJwks)} req/s (discovery/JWKS bytes), ` +
  `RS256 ${Math.round(measured.rs256)} signs/s (one core), argon2id ${Math.round(measured.argon2)} hashes/s (all cores) at ${(measured.cpuSeconds.argon2 * 1000).toFixed(1)} ms CPU each, ` +
  `oidc-provider alone ${Math.round(measured.providerUserinfo)} userinfo and ${Math.round(measured.providerIntrospection)} introspection req/s`;

// The load comes from one address, signing the same eight users in several times a second and minting thousands of
// codes: exactly what the per-IP and per-account rate limits exist to stop. They are lifted so the benchmark measures
// the server (each request still pays for counting itself); the login throttle's failure limits stay at their defaults.
const liftedRateLimits = {
  STATEFUL_REQUESTS_PER_IP_PER_MINUTE: '1000000',
  LOGIN_IP_MAX_ATTEMPTS_PER_MINUTE: '1000000',
  LOGIN_ACCOUNT_MAX_ATTEMPTS_PER_MINUTE: '1000000',
};

const runs: RunResult[] = [];
let documents: Record<string, StaticDocument> | null = null;
let ceilings: Ceilings | null = null;
let failed = false;
for (const plan of plans) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-bench-'));
  const instances = await startInstances(plan, { dir, postgresUrl, env: liftedRateLimits, nodeArgs });
  let upstream: Instances | undefined;
  try {
    // The federated sign-in's upstream provider: another Latchkey started the same way, one process with a database
    // and key directory of its own, on its own port of this machine.
    if (!plan.documentsOnly && isWanted(timing.only, federatedSignInName)) {
      const upstreamDir = path.join(dir, 'upstream');
      fs.mkdirSync(upstreamDir);
      upstream = await startInstances({ ...plan, label: `${plan.label}, upstream`, workers: 1, instances: 1 }, { dir: upstreamDir, postgresUrl, env: liftedRateLimits, nodeArgs });
    }
    await new Promise((resolve) => setTimeout(resolve, 1000));
    const idleRssBytes = sampleTree(instances.target.pids).rssBytes;
    log(`${plan.label}: first discovery response ${Math.round(instances.startupMs)} ms after start, idle RSS ${(idleRssBytes / 2 ** 20).toFixed(0)} MB`);
    if (!ceilings) {
      documents = await captureDocuments(instances.target.origin);
      ceilings = await measureCeilings(documents);
      log(`ceilings: ${describeCeilings(ceilings)}`);
    }
    const scenarios = plan.documentsOnly
      ? await runDocumentScenarios(instances.target, timing, log)
      : await runScenarios(await prepare(instances.target, instances.env, crypto.randomBytes(4).toString('hex'), timing.signInConcurrency, upstream), timing, log);
    runs.push({ ...plan, startupMs: instances.startupMs, idleRssBytes, scenarios });
    failed ||= scenarios.some((scenario) => scenario.failures > 0);
  } finally {
    await upstream?.stop();
    await instances.stop();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
if (!ceilings || !documents) throw new Error('bench: nothing was run');

const ceilingsAtEnd = isSmoke ? null : await measureCeilings(documents);
if (ceilingsAtEnd) log(`ceilings at the end: ${describeCeilings(ceilingsAtEnd)}`);

const report: BenchReport = {
  date: new Date().toISOString(),
  isSmoke,
  machine: { cpus: os.cpus().length, cpuModel: os.cpus()[0]?.model ?? 'unknown', node: process.version, memoryGiB: Math.round(os.totalmem() / 2 ** 30) },
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
