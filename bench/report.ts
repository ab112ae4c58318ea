import type { CeilingName, ScenarioResult, Timing } from './scenarios.js';
import type { TargetCheck } from './targets.js';

/** Each ceiling's rate (per second), and in `cpuSeconds` the CPU one of its operations costs. */
export type Ceilings = Record<CeilingName, number> & { cpuSeconds: Record<CeilingName, number> };

/** One configuration measured: a database, a number of worker processes and of instances, NODE_ENV. */
export type RunResult = {
  label: string;
  database: 'sqlite' | 'postgresql';
  workers: number;
  instances: number;
  isProduction: boolean;
  startupMs: number;
  idleRssBytes: number;
  scenarios: ScenarioResult[];
};

export type BenchReport = {
  date: string;
  isSmoke: boolean;
  machine: { cpus: number; cpuModel: string; node: string; memoryGiB: number };
  timing: Timing;
  /** The ratios use the ceilings measured first; a full run measures them again at its end. */
  ceilings: Ceilings;
  ceilingsAtEnd: Ceilings | null;
  runs: RunResult[];
};

/** A ceiling that moved more than this between the start and the end of a run marks the run as disturbed. */
const ceilingDriftLimit = 0.15;

const ceilingLabels: Record<CeilingName, string> = {
  httpDiscovery: 'bare node:http, discovery bytes, req/s',
  httpJwks: 'bare node:http, JWKS bytes, req/s',
  koaDiscovery: 'bare Koa, discovery bytes, req/s',
  koaJwks: 'bare Koa, JWKS bytes, req/s',
  rs256: 'RS256 signs/s (1 core)',
  argon2: 'argon2id hashes/s (all cores)',
  providerUserinfo: 'oidc-provider alone, userinfo req/s',
  providerIntrospection: 'oidc-provider alone, introspection req/s',
};

const megabytes = (bytes: number | null) => (bytes === null ? '–' : (bytes / 2 ** 20).toFixed(0));
const round = (value: number, digits = 0) => value.toFixed(digits);
const microseconds = (seconds: number) => round(seconds * 1e6);

/** The requests/s this scenario could reach if nothing but the ceiling cost anything. */
export function ceilingRate(scenario: ScenarioResult, ceilings: Ceilings, name = scenario.ceilings[0]): number {
  return ceilings[name] / scenario.ceilingOpsPerRequest;
}

/** A sign-in's server CPU as a multiple of one argon2id hash's CPU. */
export function cpuPerHash(scenario: ScenarioResult, ceilings: Ceilings): number | null {
  return scenario.cpuSecondsPer1000 === null ? null : scenario.cpuSecondsPer1000 / 1000 / ceilings.cpuSeconds.argon2;
}

/**
 * The ceiling's CPU per request (its operations' CPU) as a share of the scenario's server CPU per request: the same
 * comparison by CPU time, which other work on the machine moves much less than requests per second.
 */
export function cpuShare(scenario: ScenarioResult, ceilings: Ceilings, name = scenario.ceilings[0]): number | null {
  if (!scenario.cpuSecondsPer1000 || !ceilings.cpuSeconds[name]) return null;
  return (ceilings.cpuSeconds[name] * scenario.ceilingOpsPerRequest) / (scenario.cpuSecondsPer1000 / 1000);
}

/** The two ratio cells of a row: by requests per second, and by CPU per request. */
function ratioCells(scenario: ScenarioResult, ceilings: Ceilings): string {
  const shares = scenario.ceilings.map((name) => {
    const perRequest = scenario.ceilingOpsPerRequest > 1 ? ` ÷ ${scenario.ceilingOpsPerRequest}` : '';
    return `${round((scenario.requestsPerSecond / ceilingRate(scenario, ceilings, name)) * 100)} % of ${name}${perRequest}`;
  });
  const cpu = scenario.ceilings.map((name) => cpuShare(scenario, ceilings, name)).map((share, index) => (share === null ? '' : `${round(share * 100)} % of ${scenario.ceilings[index]}`)).filter(Boolean);
  const perHash = scenario.ceilings.includes('argon2') ? cpuPerHash(scenario, ceilings) : null;
  return `${[...shares, ...(perHash === null ? [] : [`CPU ${round(perHash, 2)} × one hash`])].join(' · ')} | ${cpu.length > 0 ? cpu.join(' · ') : '–'}`;
}

// A federated sign-in runs on two Latchkeys: its CPU is their sum (judged against the one hash, at the upstream),
// shown with each one's part; its memory is each one's peak.
const cpuCell = (s: ScenarioResult) => {
  if (s.cpuSecondsPer1000 === null) return '–';
  const upstream = s.upstream?.cpuSecondsPer1000;
  return upstream == null ? round(s.cpuSecondsPer1000, 2)
    : `${round(s.cpuSecondsPer1000, 2)} (Latchkey ${round(s.cpuSecondsPer1000 - upstream, 2)} + upstream ${round(upstream, 2)})`;
};
const rssCell = (s: ScenarioResult) => (s.upstream ? `${megabytes(s.peakRssBytes)} (upstream ${megabytes(s.upstream.peakRssBytes)})` : megabytes(s.peakRssBytes));

function runTable(run: RunResult, ceilings: Ceilings): string[] {
  return [
    '| Scenario | req/s | p50 ms | p99 ms | failures | CPU s / 1000 req | peak RSS MB | ratio to ceilings (req/s) | ratio by CPU per request |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | --- | --- |',
    ...run.scenarios.map((s) => `| ${s.name} | ${round(s.requestsPerSecond)} | ${round(s.latencyP50Ms, 1)} | ${round(s.latencyP99Ms, 1)} | ${s.failures} | ` +
      `${cpuCell(s)} | ${rssCell(s)} | ${ratioCells(s, ceilings)} |`),
  ];
}

/** The report as Markdown; `targets` (from a full run) adds the table of goals met and missed. */
export function renderMarkdown(report: BenchReport, targets: TargetCheck[] = []): string {
  const { machine, ceilings, timing } = report;
  const lines = [
    `# Latchkey benchmark${report.isSmoke ? ' (smoke run: not for judging speed)' : ''}`,
    '',
    `${report.date} · ${machine.cpus} × ${machine.cpuModel} · ${machine.memoryGiB} GiB · Node ${machine.node} · ` +
      `${timing.durationSeconds}s per scenario after ${timing.warmupSeconds}s warm-up · ${timing.connections} connections ` +
      `(sign-in: ${timing.signInConcurrency} browsers) · load generator on the same machine`,
    '',
    '## Ceilings',
    '',
  ];
  const keys = Object.keys(ceilingLabels) as CeilingName[];
  const atEnd = report.ceilingsAtEnd;
  const cpuCell = (key: CeilingName) => microseconds(ceilings.cpuSeconds[key]);
  if (atEnd) {
    const drift = (key: CeilingName) => atEnd[key] / ceilings[key] - 1;
    lines.push('| Ceiling | At the start | At the end | Change | CPU µs per operation (start) |', '| --- | ---: | ---: | ---: | ---: |',
      ...keys.map((key) => `| ${ceilingLabels[key]} | ${round(ceilings[key])} | ${round(atEnd[key])} | ${drift(key) >= 0 ? '+' : ''}${round(drift(key) * 100)} % | ${cpuCell(key)} |`));
    if (keys.some((key) => Math.abs(drift(key)) > ceilingDriftLimit)) {
      lines.push('', `**The machine's speed changed by more than ${ceilingDriftLimit * 100} % during this run**: ratios and ` +
        'requests/s are unreliable; compare CPU s / 1000 req and the ratios by CPU, or run again on a quiet machine.');
    }
  } else {
    lines.push('| Ceiling | Rate | CPU µs per operation |', '| --- | ---: | ---: |', ...keys.map((key) => `| ${ceilingLabels[key]} | ${round(ceilings[key])} | ${cpuCell(key)} |`));
  }
  for (const run of report.runs) {
    lines.push('', `## ${run.label}`, '', `Start to first discovery response: ${round(run.startupMs)} ms · idle RSS: ${megabytes(run.idleRssBytes)} MB`, '',
      ...runTable(run, ceilings));
  }
  const full = report.runs.filter((run) => run.scenarios.length > 2);
  if (full.length > 1) {
    const [first] = full;
    lines.push('', '## Side by side (req/s)', '', `| Scenario | ${full.map((run) => run.label).join(' | ')} |`, `| --- | ${full.map(() => '---:').join(' | ')} |`,
      ...first.scenarios.map((scenario) => {
        const cells = full.map((run) => {
          const other = run.scenarios.find((candidate) => candidate.name === scenario.name);
          return other ? round(other.requestsPerSecond) : '–';
        });
        return `| ${scenario.name} | ${cells.join(' | ')} |`;
      }));
  }
  if (targets.length > 0) {
    const missed = targets.filter((check) => !check.isMet).length;
    lines.push('', `## Targets (${targets.length - missed} of ${targets.length} met)`, '', '| Target | Measured | Met |', '| --- | ---: | :---: |',
      ...targets.map((check) => `| ${check.target} | ${check.measured} | ${check.isMet ? 'yes' : '**no**'} |`));
  }
  return `${lines.join('\n')}\n`;
}
