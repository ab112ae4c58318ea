import { describe, expect, it } from 'vitest';
import { renderMarkdown, type BenchReport, type Ceilings, type RunResult } from '../bench/report.js';
import type { CeilingName, ScenarioResult } from '../bench/scenarios.js';
import { checkTargets } from '../bench/targets.js';

// The parts of the benchmark only a full run reaches (CI runs the smoke run): the targets and the drift warning.
const megabyte = 2 ** 20;

function scenario(name: string, ceilings: CeilingName[], requestsPerSecond: number, options: { peakRssMb?: number; ops?: number; cpuPer1000?: number; p99?: number } = {}): ScenarioResult {
  return {
    name, ceilings, ceilingOpsPerRequest: options.ops ?? 1, requestsPerSecond,
    requests: requestsPerSecond * 8, latencyP50Ms: 4, latencyP99Ms: options.p99 ?? 12, failures: 0,
    cpuSecondsPer1000: options.cpuPer1000 ?? 0.6, peakRssBytes: (options.peakRssMb ?? 130) * megabyte, durationSeconds: 8,
  };
}

const ceilings: Ceilings = {
  httpDiscovery: 40_000, httpJwks: 42_000, koaDiscovery: 30_000, koaJwks: 31_000, rs256: 2500, argon2: 80, providerUserinfo: 4000, providerIntrospection: 4000,
  cpuSeconds: {
    httpDiscovery: 0.000_03, httpJwks: 0.000_02, koaDiscovery: 0.000_04, koaJwks: 0.000_04, rs256: 0.000_4, argon2: 0.025,
    providerUserinfo: 0.000_3, providerIntrospection: 0.000_3,
  },
};

function run(label: string, database: RunResult['database'], workers: number, instances: number, scale: number): RunResult {
  return {
    label, database, workers, instances, isProduction: true, startupMs: 900, idleRssBytes: 95 * megabyte * instances,
    scenarios: [
      scenario('discovery', ['httpDiscovery', 'koaDiscovery'], 25_000),
      scenario('client_credentials (JWT)', ['rs256'], 1600 * scale, { p99: 30 }),
      scenario('refresh_token (rotation, ID token + JWT)', ['rs256'], 600 * scale, { ops: 2 }),
      scenario('userinfo (opaque token)', ['providerUserinfo'], 2800 * scale),
      scenario('sign-in (authorize → login → consent → code)', ['argon2'], 50, { peakRssMb: 230 * instances, cpuPer1000: 35 }),
      // Latchkey's 12 ms and the upstream's 28 ms: together 1.6 hashes, though each alone is within 1.5.
      { ...scenario('sign-in, federated (upstream Latchkey → consent → code)', ['argon2'], 30, { cpuPer1000: 40 }), upstream: { cpuSecondsPer1000: 28, peakRssBytes: 180 * megabyte } },
    ],
  };
}

function report(ceilingsAtEnd: Ceilings | null): BenchReport {
  return {
    date: '2026-12-03T12:00:00.000Z',
    isSmoke: false,
    machine: { cpus: 2, cpuModel: 'test', node: 'v20', memoryGiB: 24 },
    timing: { warmupSeconds: 2, durationSeconds: 8, connections: 10, signInConcurrency: 8 },
    ceilings,
    ceilingsAtEnd,
    runs: [
      run('SQLite, WORKERS=1', 'sqlite', 1, 1, 1),
      run('SQLite, WORKERS=2', 'sqlite', 2, 1, 0.9),
      run('PostgreSQL, WORKERS=1', 'postgresql', 1, 1, 0.5),
      run('PostgreSQL, two instances', 'postgresql', 1, 2, 0.6),
    ],
  };
}

describe('benchmark report', () => {
  it('judges each target of the performance issue as a ratio to a ceiling of the same run', () => {
    const checks = checkTargets(report(null));
    const find = (text: string) => checks.find((check) => check.target.includes(text));
    expect(find('SQLite, WORKERS=1: discovery ≥ 60 % of httpDiscovery')).toMatchObject({ measured: '63 %', isMet: true });
    expect(find('SQLite, WORKERS=1: discovery ≥ 80 % of koaDiscovery')).toMatchObject({ measured: '83 %', isMet: true });
    expect(find('SQLite, WORKERS=1: client_credentials ≥ 60 % of rs256')).toMatchObject({ measured: '64 %', isMet: true });
    expect(find('SQLite, WORKERS=1: client_credentials p99 ≤ 25 ms')).toMatchObject({ isMet: false });
    expect(find('SQLite, WORKERS=1: refresh_token ≥ 45 % of rs256 ÷ 2')).toMatchObject({ measured: '48 %', isMet: true });
    expect(find('SQLite, WORKERS=1: userinfo ≥ 65 % of providerUserinfo')).toMatchObject({ measured: '70 %', isMet: true });
    expect(find('PostgreSQL, WORKERS=1: userinfo ≥ 40 % of providerUserinfo')).toMatchObject({ measured: '35 %', isMet: false });
    // 35 ms of server CPU per sign-in against 25 ms for one hash.
    expect(find('SQLite, WORKERS=1: sign-in (authorize → login → consent → code): server CPU ≤ 1.5 × one argon2id hash')).toMatchObject({ measured: '1.40 ×', isMet: true });
    expect(find('sign-in (authorize → login → consent → code): peak RSS ≤ 220 MB')).toMatchObject({ measured: '230 MB', isMet: false });
    // A federated sign-in's one hash is at the upstream: the CPU judged is both servers'; each one's memory is judged.
    expect(find('SQLite, WORKERS=1: sign-in, federated (upstream Latchkey → consent → code): server CPU (Latchkey + upstream) ≤ 1.5 × one argon2id hash'))
      .toMatchObject({ measured: '1.60 ×', isMet: false });
    expect(find('SQLite, WORKERS=1: sign-in, federated (upstream Latchkey → consent → code): upstream peak RSS ≤ 220 MB per process')).toMatchObject({ measured: '180 MB', isMet: true });
    // Two instances are judged per process.
    expect(find('PostgreSQL, two instances: idle RSS ≤ 100 MB per process')).toMatchObject({ measured: '95 MB', isMet: true });
    // A second worker must not be slower on the token scenarios; a second instance on those and userinfo.
    expect(checks.filter((check) => check.target.startsWith('SQLite, WORKERS=2 not slower')).map((check) => [check.target.split(': ')[1], check.measured])).toEqual([
      ['client_credentials (JWT)', '0.90×'],
      ['refresh_token (rotation, ID token + JWT)', '0.90×'],
    ]);
    expect(checks.filter((check) => check.target.startsWith('PostgreSQL, two instances not slower')).map((check) => [check.target.split(': ')[1], check.isMet])).toEqual([
      ['client_credentials (JWT)', true],
      ['refresh_token (rotation, ID token + JWT)', true],
      ['userinfo (opaque token)', true],
    ]);
  });

  it('shows the ceilings at both ends of a run, a federated sign-in\'s CPU and memory at each server, and flags a run during which the machine slowed down', () => {
    const steady = renderMarkdown(report({ ...ceilings, koaDiscovery: 28_500 }));
    expect(steady).toContain('| bare Koa, discovery bytes, req/s | 30000 | 28500 | -5 % | 40 |');
    expect(steady).toContain('| argon2id hashes/s (all cores) | 80 | 80 | +0 % | 25000 |');
    expect(steady).not.toContain('speed changed');
    // Discovery took 0.6 ms of CPU per request in this made-up run: node:http's 30 µs is 5 % of it.
    expect(steady).toMatch(/\| discovery \| 25000 \|.*\| 63 % of httpDiscovery · 83 % of koaDiscovery \| 5 % of httpDiscovery · 7 % of koaDiscovery \|/);
    expect(steady).toMatch(/\| sign-in \(authorize → login → consent → code\) \| 50 \|.*CPU 1\.40 × one hash \|/);
    expect(steady).toMatch(/\| sign-in, federated \(upstream Latchkey → consent → code\) \| 30 \|.*\| 40\.00 \(Latchkey 12\.00 \+ upstream 28\.00\) \| 130 \(upstream 180\) \|.*CPU 1\.60 × one hash \|/);
    expect(steady).toContain('| Scenario | SQLite, WORKERS=1 | SQLite, WORKERS=2 | PostgreSQL, WORKERS=1 | PostgreSQL, two instances |');
    const disturbed = renderMarkdown(report({ ...ceilings, httpJwks: 26_000 }));
    expect(disturbed).toContain("**The machine's speed changed by more than 15 % during this run**");
  });
});
