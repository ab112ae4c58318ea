import { ceilingRate, cpuPerHash, type BenchReport, type RunResult } from './report.js';
import type { CeilingName } from './scenarios.js';

/** One speed or memory goal from the performance issue, judged against one full run. */
export type TargetCheck = { target: string; measured: string; isMet: boolean };

const megabyte = 2 ** 20;

/** The least share of a ceiling per scenario (names start with these), in the SQLite WORKERS=1 run. */
const minimumShares: Array<[prefix: string, ceiling: CeilingName, share: number]> = [
  ['discovery', 'httpDiscovery', 0.6],
  ['discovery', 'koaDiscovery', 0.8],
  ['jwks', 'httpJwks', 0.6],
  ['jwks', 'koaJwks', 0.8],
  ['client_credentials', 'rs256', 0.6],
  ['refresh_token', 'rs256', 0.45],
  ['authorization_code', 'rs256', 0.45],
  ['userinfo', 'providerUserinfo', 0.65],
  ['introspection', 'providerIntrospection', 0.65],
];
/** On PostgreSQL (WORKERS=1), which pays a network round trip per statement. */
const postgresMinimumShares: Array<[prefix: string, ceiling: CeilingName, share: number]> = [['userinfo', 'providerUserinfo', 0.4]];
const clientCredentialsP99Ms = 25;
/** A sign-in's server CPU may be at most this many times the CPU of the one argon2id hash it needs. */
const signInCpuPerHash = 1.5;
const idleRssLimitBytes = 100 * megabyte;
const peakRssLimitBytes = 220 * megabyte;
const startupLimitMs = 1_500;
/** Where a second worker process must not be slower: the token scenarios, bound by signing. */
const tokenScenarios = ['client_credentials', 'refresh_token', 'authorization_code'];
/** Where a second instance on one PostgreSQL database must not be slower. */
const instanceScenarios = [...tokenScenarios, 'userinfo', 'introspection'];

const percent = (value: number) => `${Math.round(value * 100)} %`;

function shareChecks(run: RunResult, report: BenchReport, shares: typeof minimumShares): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const scenario of run.scenarios) {
    for (const [prefix, ceiling, share] of shares.filter(([candidate]) => scenario.name.startsWith(candidate))) {
      const measured = scenario.requestsPerSecond / ceilingRate(scenario, report.ceilings, ceiling);
      const perRequest = scenario.ceilingOpsPerRequest > 1 ? ` ÷ ${scenario.ceilingOpsPerRequest}` : '';
      checks.push({ target: `${run.label}: ${prefix} ≥ ${percent(share)} of ${ceiling}${perRequest}`, measured: percent(measured), isMet: measured >= share });
    }
  }
  return checks;
}

function runChecks(run: RunResult, report: BenchReport): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const scenario of run.scenarios) {
    if (scenario.name.startsWith('client_credentials')) {
      checks.push({ target: `${run.label}: client_credentials p99 ≤ ${clientCredentialsP99Ms} ms`, measured: `${scenario.latencyP99Ms} ms`, isMet: scenario.latencyP99Ms <= clientCredentialsP99Ms });
    }
    const perHash = scenario.ceilings.includes('argon2') ? cpuPerHash(scenario, report.ceilings) : null;
    // A federated sign-in's one hash is at the upstream: its CPU is Latchkey's and the upstream's together.
    if (perHash !== null) {
      const servers = scenario.upstream ? 'server CPU (Latchkey + upstream)' : 'server CPU';
      checks.push({ target: `${run.label}: ${scenario.name}: ${servers} ≤ ${signInCpuPerHash} × one argon2id hash`, measured: `${perHash.toFixed(2)} ×`, isMet: perHash <= signInCpuPerHash });
    }
    // Memory is judged per Latchkey process: WORKERS=2 runs three (the primary and two workers), reported as a sum.
    if (scenario.peakRssBytes !== null && run.workers === 1) {
      checks.push({
        target: `${run.label}: ${scenario.name}: peak RSS ≤ ${peakRssLimitBytes / megabyte} MB per process`,
        measured: `${Math.round(scenario.peakRssBytes / megabyte / run.instances)} MB`,
        isMet: scenario.peakRssBytes / run.instances <= peakRssLimitBytes,
      });
    }
    const upstreamPeak = scenario.upstream?.peakRssBytes;
    if (upstreamPeak != null) {
      checks.push({
        target: `${run.label}: ${scenario.name}: upstream peak RSS ≤ ${peakRssLimitBytes / megabyte} MB per process`,
        measured: `${Math.round(upstreamPeak / megabyte)} MB`,
        isMet: upstreamPeak <= peakRssLimitBytes,
      });
    }
  }
  if (run.workers === 1) {
    checks.push({ target: `${run.label}: idle RSS ≤ ${idleRssLimitBytes / megabyte} MB per process`, measured: `${Math.round(run.idleRssBytes / megabyte / run.instances)} MB`, isMet: run.idleRssBytes / run.instances <= idleRssLimitBytes });
  }
  checks.push({ target: `${run.label}: start to first response ≤ ${startupLimitMs} ms`, measured: `${Math.round(run.startupMs)} ms`, isMet: run.startupMs <= startupLimitMs });
  return checks;
}

/** `more` (a second worker or instance) is not slower than `base` on the scenarios that scale. */
function scalingChecks(base: RunResult, more: RunResult, prefixes: string[]): TargetCheck[] {
  const checks: TargetCheck[] = [];
  for (const scenario of base.scenarios.filter((candidate) => prefixes.some((prefix) => candidate.name.startsWith(prefix)))) {
    const other = more.scenarios.find((candidate) => candidate.name === scenario.name);
    if (!other) continue;
    const gain = other.requestsPerSecond / scenario.requestsPerSecond;
    checks.push({ target: `${more.label} not slower than ${base.label}: ${scenario.name}`, measured: `${gain.toFixed(2)}×`, isMet: gain >= 1 });
  }
  return checks;
}

/** The targets of the performance issue, for a full run: every figure a ratio to a ceiling measured in the same run. */
export function checkTargets(report: BenchReport): TargetCheck[] {
  const find = (database: RunResult['database'], workers: number, instances: number, isProduction = true) =>
    report.runs.find((run) => run.database === database && run.workers === workers && run.instances === instances && run.isProduction === isProduction);
  const checks: TargetCheck[] = [];
  const sqlite = find('sqlite', 1, 1);
  if (sqlite) checks.push(...shareChecks(sqlite, report, minimumShares));
  const newcomer = find('sqlite', 1, 1, false);
  if (newcomer) checks.push(...shareChecks(newcomer, report, minimumShares));
  const postgres = find('postgresql', 1, 1);
  if (postgres) checks.push(...shareChecks(postgres, report, postgresMinimumShares));
  for (const run of report.runs.filter((candidate) => candidate.isProduction)) checks.push(...runChecks(run, report));
  const sqliteTwoWorkers = find('sqlite', 2, 1);
  if (sqlite && sqliteTwoWorkers) checks.push(...scalingChecks(sqlite, sqliteTwoWorkers, tokenScenarios));
  const postgresTwoInstances = find('postgresql', 1, 2);
  if (postgres && postgresTwoInstances) checks.push(...scalingChecks(postgres, postgresTwoInstances, instanceScenarios));
  return checks;
}
