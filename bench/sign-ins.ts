import { Secret, TOTP } from 'otpauth';
import { loadConfig } from '../src/config.js';
import { openServices } from '../src/services.js';
import { cli } from './cli.js';
import { inParallel } from './flows.js';
import type { LoadResult } from './load.js';
import { watchTree } from './process-stats.js';

/** The CPU and memory of the upstream Latchkey a federated sign-in passes through (its own process). */
export type UpstreamUsage = { cpuSecondsPer1000: number | null; peakRssBytes: number | null };

/**
 * Fresh browsers signing in for the duration, `concurrency` at a time: `signInOnce` runs one sign-in and returns
 * false when there is nobody left who can sign in now (a worker then stops early). The CPU is the sum of `pids` and
 * `upstreamPids` (judged against one hash); the upstream's own share and memory are reported beside it.
 */
export async function measureSignIns(
  processes: { pids: number[]; upstreamPids?: number[] },
  options: { durationSeconds: number; concurrency: number },
  signInOnce: (worker: number) => Promise<boolean>,
): Promise<LoadResult & { upstream?: UpstreamUsage }> {
  const watch = watchTree(processes.pids);
  const upstreamWatch = processes.upstreamPids && watchTree(processes.upstreamPids);
  const latencies: number[] = [];
  let failures = 0;
  const started = performance.now();
  const deadline = started + options.durationSeconds * 1000;
  await Promise.all(Array.from({ length: options.concurrency }, async (_, worker) => {
    while (performance.now() < deadline) {
      const begun = performance.now();
      try {
        if (!(await signInOnce(worker))) return;
        latencies.push(performance.now() - begun);
      } catch {
        failures += 1;
      }
    }
  }));
  const durationSeconds = (performance.now() - started) / 1000;
  const usage = watch.stop();
  const upstreamUsage = upstreamWatch?.stop();
  const perThousand = (cpuSeconds: number) => (latencies.length ? (cpuSeconds / latencies.length) * 1000 : null);
  latencies.sort((a, b) => a - b);
  const percentile = (p: number) => Math.round(latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? 0);
  return {
    requests: latencies.length,
    requestsPerSecond: latencies.length / durationSeconds,
    latencyP50Ms: percentile(0.5),
    latencyP99Ms: percentile(0.99),
    failures,
    cpuSecondsPer1000: perThousand(usage.cpuSeconds + (upstreamUsage?.cpuSeconds ?? 0)),
    peakRssBytes: usage.peakRssBytes,
    durationSeconds,
    ...(upstreamUsage ? { upstream: { cpuSecondsPer1000: perThousand(upstreamUsage.cpuSeconds), peakRssBytes: upstreamUsage.peakRssBytes } } : {}),
  };
}

/** docs/mfa.md: 30-second steps, 6 digits, SHA-1, as every authenticator app computes them. */
const totpPeriodSeconds = 30;
const totpAt = (secret: string, timestamp: number) =>
  TOTP.generate({ secret: Secret.fromBase32(secret), algorithm: 'SHA1', digits: 6, period: totpPeriodSeconds, timestamp });
const stepAt = (timestamp: number) => TOTP.counter({ period: totpPeriodSeconds, timestamp });

type TotpUser = { email: string; secret: string; lastUsedStep: number; isBusy: boolean };

/**
 * Users with an authenticator app, for the TOTP sign-in. The server accepts a code once per user and time step
 * (a replayed or older step is refused), so a user signs in at most once per step: `take` hands out a user whose
 * last accepted step is behind the clock, and `grow` adds users (created through the CLI, the app enrolled through
 * the services the account page uses) until enough are free for the sign-ins to come.
 */
export function createTotpUsers(env: Record<string, string>, options: { runId: string; password: string }) {
  const users: TotpUser[] = [];
  const freeNow = () => users.filter((user) => !user.isBusy && user.lastUsedStep < stepAt(Date.now()));

  return {
    /** Adds users until `freeWanted` can sign in now. */
    async grow(freeWanted: number): Promise<void> {
      const missing = freeWanted - freeNow().length;
      if (missing <= 0) return;
      const emails = Array.from({ length: missing }, (_, i) => `bench-totp-${users.length + i}-${options.runId}@example.com`);
      // Each `users create` hashes the password: a few at a time, as the bench's cores allow.
      await inParallel(emails.length, 4, (i) => cli(env, 'users', 'create', '--email', emails[i], '--password', options.password));
      const services = await openServices(loadConfig(env), { logDestination: { write: () => undefined } });
      try {
        for (const email of emails) {
          const account = await services.accounts.findByEmail(email);
          if (!account) throw new Error(`bench: ${email} was not created`);
          const { secret } = await services.secondFactors.beginTotp(account.id, { issuer: 'Latchkey bench', account: email });
          // Confirmed with the previous step's code (an app whose clock is a little behind, within the default
          // MFA_TOTP_DRIFT_STEPS of 1), so the current step's code is still unused and the user can sign in at once.
          const previousStep = Date.now() - totpPeriodSeconds * 1000;
          if (!(await services.secondFactors.confirmTotp(account.id, totpAt(secret, previousStep)))) throw new Error(`bench: the authenticator of ${email} was not confirmed`);
          users.push({ email, secret, lastUsedStep: stepAt(previousStep), isBusy: false });
        }
      } finally {
        await services.close();
      }
    },

    /** A user who can sign in now, and their code when the page asks for it; undefined when none is free. */
    take(): { email: string; totpCode: () => string; release: () => void } | undefined {
      const [user] = freeNow();
      if (!user) return undefined;
      user.isBusy = true;
      return {
        email: user.email,
        totpCode() {
          const at = Date.now();
          user.lastUsedStep = stepAt(at);
          return totpAt(user.secret, at);
        },
        release: () => { user.isBusy = false; },
      };
    },
  };
}
