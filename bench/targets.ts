import { ceilingRate, type BenchReport, type WorkersRun } from './report.js';

/** One speed or memory goal from the performance issue, judged against one full run. */
export type TargetCheck = { target: string; measured: string; isMet: boolean };

const megabyte = 2 ** 20;

/** Minimum requests/s per scenario (scenario names start with these), and the client_credentials p99 limit. */
const minimumRates: Array<[prefix: string, requestsPerSecond: number]> = [
  ['discovery', 15_000],
  ['jwks', 15_000],
  ['client_credentials', 1_000],
  ['refresh_token', 500],
  ['authorization_code', 500],
  ['userinfo', 3_000],
  ['introspection', 3_000],
];
const clientCredentialsP99Ms = 25;
const signInShareOfArgon2 = 0.8;
const idleRssLimitBytes = 120 * megabyte;
const peakRssLimitBytes = 200 * megabyte;
const startupLimitMs = 2_000;
// Scenarios bound by CPU work in Latchkey (signing, hashing), where a second worker process must help.
const cpuBoundCeilings = new Set(['rs256', 'argon2']);

const rate = (value: number) => `${Math.round(value)} req/s`;

function checksForRun(run: WorkersRun, report: BenchReport): TargetCheck[] {
  const label = (text: string) => `WORKERS=${run.workers}: ${text}`;
  const checks: TargetCheck[] = [];
  for (const scenario of run.scenarios) {
    const minimum = minimumRates.find(([prefix]) => scenario.name.startsWith(prefix));
    if (minimum) {
      checks.push({ target: label(`${scenario.name} ≥ ${rate(minimum[1])}`), measured: rate(scenario.requestsPerSecond), isMet: scenario.requestsPerSecond >= minimum[1] });
    }
    if (scenario.name.startsWith('client_credentials')) {
      checks.push({ target: label(`client_credentials p99 ≤ ${clientCredentialsP99Ms} ms`), measured: `${scenario.latencyP99Ms} ms`, isMet: scenario.latencyP99Ms <= clientCredentialsP99Ms });
    }
    if (scenario.ceiling === 'argon2') {
      const share = scenario.requestsPerSecond / ceilingRate(scenario, report.ceilings);
      checks.push({ target: label(`sign-in ≥ ${signInShareOfArgon2 * 100} % of raw argon2id`), measured: `${Math.round(share * 100)} %`, isMet: share >= signInShareOfArgon2 });
    }
    if (scenario.peakRssBytes !== null) {
      checks.push({
        target: label(`${scenario.name}: peak RSS ≤ ${peakRssLimitBytes / megabyte} MB`),
        measured: `${Math.round(scenario.peakRssBytes / megabyte)} MB`,
        isMet: scenario.peakRssBytes <= peakRssLimitBytes,
      });
    }
  }
  checks.push(
    { target: label(`idle RSS ≤ ${idleRssLimitBytes / megabyte} MB`), measured: `${Math.round(run.idleRssBytes / megabyte)} MB`, isMet: run.idleRssBytes <= idleRssLimitBytes },
    { target: label(`start to first response ≤ ${startupLimitMs} ms`), measured: `${Math.round(run.startupMs)} ms`, isMet: run.startupMs <= startupLimitMs },
  );
  return checks;
}

/**
 * The targets of the performance issue, for a full run. The speed targets are set for WORKERS=1 (and the memory ones
 * per process tree, so they are reported for every run); WORKERS=2 must beat WORKERS=1 on every CPU-bound scenario.
 */
export function checkTargets(report: BenchReport): TargetCheck[] {
  const single = report.runs.find((run) => run.workers === 1);
  const checks = single ? checksForRun(single, report) : [];
  const double = report.runs.find((run) => run.workers === 2);
  if (single && double) {
    for (const scenario of single.scenarios.filter((candidate) => cpuBoundCeilings.has(candidate.ceiling))) {
      const other = double.scenarios.find((candidate) => candidate.name === scenario.name);
      if (!other) continue;
      checks.push({
        target: `WORKERS=2 beats WORKERS=1: ${scenario.name}`,
        measured: `${(other.requestsPerSecond / scenario.requestsPerSecond).toFixed(2)}×`,
        isMet: other.requestsPerSecond > scenario.requestsPerSecond,
      });
    }
  }
  return checks;
}
