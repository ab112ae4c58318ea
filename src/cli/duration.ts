import { UsageError } from './output.js';

const unitSeconds: Record<string, number> = { s: 1, m: 60, h: 3600, d: 86_400 };

/** A duration option (`--keep-old-for 1h`, `--expires 7d`): a whole number and s, m, h or d; in seconds. */
export function parseDurationSeconds(value: string, option: string): number {
  const match = /^(\d{1,6})([smhd])$/.exec(value);
  if (!match) throw new UsageError(`--${option} must be a duration such as 30s, 15m, 1h or 7d, got "${value}"`);
  return Number(match[1]) * unitSeconds[match[2]];
}
