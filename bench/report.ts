import type { ScenarioResult, Timing } from './scenarios.js';
import type { TargetCheck } from './targets.js';

export type Ceilings = { rs256: number; argon2: number; bareKoa: number; providerUserinfo: number; providerIntrospection: number };
export type WorkersRun = { workers: number; startupMs: number; idleRssBytes: number; scenarios: ScenarioResult[] };
export type BenchReport = {
  date: string;
  isSmoke: boolean;
  machine: { cpus: number; cpuModel: string; node: string; memoryGiB: number };
  database: string;
  timing: Timing;
  /** The ratios use the ceilings measured first; a full run measures them again at its end. */
  ceilings: Ceilings;
  ceilingsAtEnd: Ceilings | null;
  runs: WorkersRun[];
};

/** A ceiling that moved more than this between the start and the end of a run marks the run as disturbed. */
const ceilingDriftLimit = 0.15;

const ceilingLabels: Record<keyof Ceilings, string> = {
  rs256: 'RS256 signs/s (1 core)',
  argon2: 'argon2id hashes/s',
  bareKoa: 'bare Koa req/s',
  providerUserinfo: 'oidc-provider alone, userinfo req/s',
  providerIntrospection: 'oidc-provider alone, introspection req/s',
};

const megabytes = (bytes: number | null) => (bytes === null ? '–' : (bytes / 2 ** 20).toFixed(0));
const round = (value: number, digits = 0) => value.toFixed(digits);

/** The requests/s this scenario could reach if nothing but its ceiling cost anything. */
export function ceilingRate(scenario: ScenarioResult, ceilings: Ceilings): number {
  return ceilings[scenario.ceiling] / scenario.ceilingOpsPerRequest;
}

/** The report as Markdown; `targets` (from a full run) adds the table of goals met and missed. */
export function renderMarkdown(report: BenchReport, targets: TargetCheck[] = []): string {
  const { machine, ceilings, timing } = report;
  const lines = [
    `# Latchkey benchmark${report.isSmoke ? ' (smoke run: not for judging speed)' : ''}`,
    '',
    `${report.date} · ${machine.cpus} × ${machine.cpuModel} · ${machine.memoryGiB} GiB · Node ${machine.node} · ${report.database} · ` +
      `${timing.durationSeconds}s per scenario after ${timing.warmupSeconds}s warm-up · ${timing.connections} connections ` +
      `(sign-in: ${timing.signInConcurrency} browsers) · load generator on the same machine`,
    '',
    '## Ceilings',
    '',
  ];
  const keys = Object.keys(ceilingLabels) as (keyof Ceilings)[];
  const atEnd = report.ceilingsAtEnd;
  if (atEnd) {
    const drift = (key: keyof Ceilings) => atEnd[key] / ceilings[key] - 1;
    lines.push('| Ceiling | Rate at the start | Rate at the end | Change |', '| --- | ---: | ---: | ---: |',
      ...keys.map((key) => `| ${ceilingLabels[key]} | ${round(ceilings[key])} | ${round(atEnd[key])} | ${drift(key) >= 0 ? '+' : ''}${round(drift(key) * 100)} % |`));
    if (keys.some((key) => Math.abs(drift(key)) > ceilingDriftLimit)) {
      lines.push('', `**The machine's speed changed by more than ${ceilingDriftLimit * 100} % during this run**: ratios and ` +
        'requests/s are unreliable; compare CPU s / 1000 req, or run again on a quiet machine.');
    }
  } else {
    lines.push('| Ceiling | Rate |', '| --- | ---: |', ...keys.map((key) => `| ${ceilingLabels[key]} | ${round(ceilings[key])} |`));
  }
  for (const run of report.runs) {
    lines.push(
      '',
      `## WORKERS=${run.workers}`,
      '',
      `Start to first discovery response: ${round(run.startupMs)} ms · idle RSS: ${megabytes(run.idleRssBytes)} MB`,
      '',
      '| Scenario | req/s | p50 ms | p99 ms | non-2xx | CPU s / 1000 req | peak RSS MB | ceiling (req/s) | ratio |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
      ...run.scenarios.map((s) => {
        const limit = ceilingRate(s, ceilings);
        const perRequest = s.ceilingOpsPerRequest > 1 ? ` ÷ ${s.ceilingOpsPerRequest}` : '';
        return `| ${s.name} | ${round(s.requestsPerSecond)} | ${round(s.latencyP50Ms, 1)} | ${round(s.latencyP99Ms, 1)} | ${s.failures} | ` +
          `${s.cpuSecondsPer1000 === null ? '–' : round(s.cpuSecondsPer1000, 2)} | ${megabytes(s.peakRssBytes)} | ` +
          `${round(limit)} (${s.ceiling}${perRequest}) | ${round((s.requestsPerSecond / limit) * 100)} % |`;
      }),
    );
  }
  if (report.runs.length > 1) {
    const [first, ...others] = report.runs;
    lines.push('', '## Scaling', '', `| Scenario | ${others.map((run) => `WORKERS=${run.workers} ÷ WORKERS=${first.workers}`).join(' | ')} |`,
      `| --- | ${others.map(() => '---:').join(' | ')} |`,
      ...first.scenarios.map((scenario, index) => `| ${scenario.name} | ${others.map((run) => `${round(run.scenarios[index].requestsPerSecond / scenario.requestsPerSecond, 2)}×`).join(' | ')} |`));
  }
  if (targets.length > 0) {
    const missed = targets.filter((check) => !check.isMet).length;
    lines.push('', `## Targets (${targets.length - missed} of ${targets.length} met)`, '', '| Target | Measured | Met |', '| --- | ---: | :---: |',
      ...targets.map((check) => `| ${check.target} | ${check.measured} | ${check.isMet ? 'yes' : '**no**'} |`));
  }
  return `${lines.join('\n')}\n`;
}
