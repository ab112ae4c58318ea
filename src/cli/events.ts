import { normalizeEmail } from '../accounts/email.js';
import type { Services } from '../services.js';
import type { AuditEvent } from '../store/audit-events.js';
import { table, UsageError, type Output, type Values } from './output.js';

const units: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `--since` as an ISO date (2026-01-31, 2026-01-31T12:00:00Z) or a duration back from now (30m, 12h, 7d). */
export function parseSince(value: string, now: number): number {
  const duration = /^(\d{1,6})([mhd])$/.exec(value);
  if (duration) return now - Number(duration[1]) * units[duration[2]];
  const time = /^\d{4}-\d{2}-\d{2}/.test(value) ? Date.parse(value) : Number.NaN;
  if (Number.isNaN(time)) throw new UsageError(`--since must be an ISO date (2026-01-31T12:00:00Z) or a duration (30m, 12h, 7d), got "${value}"`);
  return time;
}

function parseLimit(value: Values[string]): number {
  if (value === undefined) return 100;
  if (typeof value !== 'string' || !/^\d+$/.test(value) || Number(value) < 1 || Number(value) > 10_000) {
    throw new UsageError(`--limit must be a whole number between 1 and 10000, got "${value}"`);
  }
  return Number(value);
}

const publicEvent = (event: AuditEvent) => ({ ...event, occurredAt: new Date(event.occurredAt).toISOString() });

const describe = (details: Record<string, unknown> = {}) =>
  Object.entries(details).filter(([, value]) => value !== undefined && value !== null).map(([key, value]) => `${key}=${value}`).join(' ');

export const eventsCommand = {
  options: { email: { type: 'string' }, since: { type: 'string' }, limit: { type: 'string' } },
  async run(values: Values, { auditEvents, accounts }: Services, out: Output) {
    const email = typeof values.email === 'string' ? normalizeEmail(values.email) : undefined;
    // Token events name the account, not the email: include them for the user with that email.
    const accountId = email ? (await accounts.findByEmail(email))?.id : undefined;
    const events = await auditEvents.list({
      email,
      accountId,
      since: typeof values.since === 'string' ? parseSince(values.since, Date.now()) : undefined,
      limit: parseLimit(values.limit),
    });
    out.result(events.map(publicEvent), table(
      ['TIME', 'EVENT', 'EMAIL', 'ACCOUNT', 'CLIENT', 'IP', 'DETAILS'],
      events.map((e) => [new Date(e.occurredAt).toISOString(), e.type, e.email ?? '', e.accountId ?? '', e.clientId ?? '', e.ip ?? '', describe(e.details)]),
    ));
  },
};
