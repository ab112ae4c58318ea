import { describe, expect, it } from 'vitest';
import { renderMarkdown, type BenchReport, type Ceilings } from '../bench/report.js';
import type { ScenarioResult } from '../bench/scenarios.js';
import { checkTargets } from '../bench/targets.js';

// The parts of the benchmark only a full run reaches (CI runs the smoke run): the targets and the drift warning.
const megabyte = 2 ** 20;

function scenario(name: string, ceiling: ScenarioResult['ceiling'], requestsPerSecond: number, peakRssMb: number, ceilingOpsPerRequest = 1): ScenarioResult {
  return {
    name, ceiling, ceilingOpsPerRequest, requestsPerSecond,
    requests: requestsPerSecond * 8, latencyP50Ms: 4, latencyP99Ms: 12, failures: 0,
    cpuSecondsPer1000: 0.6, peakRssBytes: peakRssMb * megabyte, durationSeconds: 8,
  };
}

function report(ceilingsAtEnd: Ceilings | null, signInsPerSecond: { one: number; two: number }): BenchReport {
  const ceilings = { rs256: 2500, argon2: 80, bareKoa: 40_000, providerUserinfo: 3500, providerIntrospection: 4000 };
  const scenarios = (signIns: number) => [
    scenario('discovery', 'bareKoa', 24_000, 110),
    scenario('client_credentials (JWT)', 'rs256', 1500, 130),
    scenario('userinfo (opaque token)', 'providerUserinfo', 2000, 135),
    scenario('sign-in (authorize → login → consent → code)', 'argon2', signIns, 210),
  ];
  return {
    date: '2026-11-30T12:00:00.000Z',
    isSmoke: false,
    machine: { cpus: 2, cpuModel: 'test', node: 'v20', memoryGiB: 24 },
    database: 'sqlite',
    timing: { warmupSeconds: 2, durationSeconds: 8, connections: 10, signInConcurrency: 8 },
    ceilings,
    ceilingsAtEnd,
    runs: [
      { workers: 1, startupMs: 900, idleRssBytes: 100 * megabyte, scenarios: scenarios(signInsPerSecond.one) },
      { workers: 2, startupMs: 1500, idleRssBytes: 290 * megabyte, scenarios: scenarios(signInsPerSecond.two) },
    ],
  };
}

describe('benchmark report', () => {
  it('judges each target of the performance issue from a full run', () => {
    const checks = checkTargets(report(null, { one: 52, two: 50 }));
    const met = (text: string) => checks.find((check) => check.target.includes(text))?.isMet;
    expect(met('discovery ≥ 15000')).toBe(true);
    expect(met('client_credentials (JWT) ≥ 1000')).toBe(true);
    expect(met('client_credentials p99 ≤ 25 ms')).toBe(true);
    expect(met('userinfo (opaque token) ≥ 3000')).toBe(false);
    expect(checks.find((check) => check.target.includes('argon2id'))).toMatchObject({ measured: '65 %', isMet: false });
    expect(met('sign-in (authorize → login → consent → code): peak RSS ≤ 200 MB')).toBe(false);
    expect(met('idle RSS ≤ 120 MB')).toBe(true);
    // Only the CPU-bound scenarios (signing, hashing) must scale with a second worker.
    expect(checks.filter((check) => check.target.startsWith('WORKERS=2 beats')).map((check) => [check.target, check.isMet])).toEqual([
      ['WORKERS=2 beats WORKERS=1: client_credentials (JWT)', false],
      ['WORKERS=2 beats WORKERS=1: sign-in (authorize → login → consent → code)', false],
    ]);
  });

  it('shows the ceilings at both ends of a run and flags a run during which the machine slowed down', () => {
    const steady = renderMarkdown(report({ rs256: 2400, argon2: 82, bareKoa: 38_000, providerUserinfo: 3400, providerIntrospection: 3900 }, { one: 52, two: 56 }));
    expect(steady).toContain('| bare Koa req/s | 40000 | 38000 | -5 % |');
    expect(steady).not.toContain('speed changed');
    // userinfo is read against oidc-provider alone, which is its work without our store and middleware.
    expect(steady).toContain('| oidc-provider alone, userinfo req/s | 3500 | 3400 | -3 % |');
    expect(steady).toMatch(/\| userinfo \(opaque token\) \| 2000 \|.*\| 3500 \(providerUserinfo\) \| 57 % \|/);
    const disturbed = renderMarkdown(report({ rs256: 2400, argon2: 82, bareKoa: 26_000, providerUserinfo: 3400, providerIntrospection: 3900 }, { one: 52, two: 56 }));
    expect(disturbed).toContain('| bare Koa req/s | 40000 | 26000 | -35 % |');
    expect(disturbed).toContain("**The machine's speed changed by more than 15 % during this run**");
  });
});
