import os from 'node:os';
import type { Readable } from 'node:stream';
import type { DestinationStream } from 'pino';
import { escapeUnprintable, escapeUnprintableInJson } from '../unprintable.js';
import { UserFacingError } from '../user-facing-error.js';

/** Standard input: a terminal (`isTTY`, `setRawMode`) or a pipe. */
export type Stdin = Readable & { isTTY?: boolean; setRawMode?: (isRaw: boolean) => unknown };

/**
 * Where the CLI writes, and what it reads secrets from (`--password-stdin`; none: the command says so).
 * `log` receives the JSON audit log lines (none when absent: stdout stays for results).
 */
export type Io = { stdout: (line: string) => void; stderr: (line: string) => void; stdin?: Stdin; log?: DestinationStream };

/** Who ran a CLI command, for the audit trail: the operating-system user. */
export function actor(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return 'cli';
  }
}

export class UsageError extends UserFacingError {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The command did its work but part of it could not be completed; the output says what. Exit code 1. */
export class IncompleteError extends UserFacingError {
  constructor(message: string) {
    super(message);
    this.name = 'IncompleteError';
  }
}

/**
 * Prints a result as JSON (`--json`) or as the human-readable lines given. Every value printed may hold what an
 * attacker typed (an email at the login form, in `events`): control and invisible characters are escaped here, for
 * every command, visibly in lines and as \u escapes in JSON (the same value).
 */
export function createOutput(io: Io, isJson: boolean) {
  return {
    result(value: unknown, lines: string[]) {
      if (isJson) io.stdout(escapeUnprintableInJson(JSON.stringify(value, null, 2)));
      else for (const line of lines) io.stdout(escapeUnprintable(line));
    },
  };
}

export type Output = ReturnType<typeof createOutput>;

/**
 * Renders rows as aligned columns, measured as they will be printed: escaped (result() escapes them again, which
 * changes nothing in escaped text).
 */
export function table(headers: string[], rows: string[][]): string[] {
  if (rows.length === 0) return ['(none)'];
  const shown = rows.map((row) => row.map(escapeUnprintable));
  const widths = headers.map((header, i) => Math.max(header.length, ...shown.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd();
  return [line(headers), ...shown.map(line)];
}

export type Values = Record<string, string | boolean | string[] | undefined>;

/** The value of a required `--name VALUE` option. */
export function required(values: Values, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}
