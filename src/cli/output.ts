import os from 'node:os';
import type { DestinationStream } from 'pino';

/**
 * Where the CLI writes and reads. `log` receives the JSON audit log lines (none when absent: stdout stays for
 * results). `readStdinLine` reads the first line of standard input (stdin.ts), for secrets that must not be
 * arguments; without it, options that read standard input are refused.
 */
export type Io = {
  stdout: (line: string) => void;
  stderr: (line: string) => void;
  log?: DestinationStream;
  readStdinLine?: () => Promise<string>;
};

/** Who ran a CLI command, for the audit trail: the operating-system user. */
export function actor(): string {
  try {
    return `cli:${os.userInfo().username}`;
  } catch {
    return 'cli';
  }
}

export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UsageError';
  }
}

/** The command did its work but part of it could not be completed; the output says what. Exit code 1. */
export class IncompleteError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'IncompleteError';
  }
}

/** Prints a result as JSON (`--json`) or as the human-readable lines given, and reads secrets from standard input. */
export function createOutput(io: Io, isJson: boolean) {
  return {
    result(value: unknown, lines: string[]) {
      if (isJson) io.stdout(JSON.stringify(value, null, 2));
      else for (const line of lines) io.stdout(line);
    },
    /** The first line of standard input, which `option` (e.g. `--client-secret-stdin`) says holds a secret. */
    async readSecretLine(option: string): Promise<string> {
      if (!io.readStdinLine) throw new UsageError(`${option} needs standard input`);
      const line = await io.readStdinLine();
      if (line === '') throw new UsageError(`${option}: the first line of standard input is empty`);
      return line;
    },
  };
}

export type Output = ReturnType<typeof createOutput>;

/** Renders rows as aligned columns. */
export function table(headers: string[], rows: string[][]): string[] {
  if (rows.length === 0) return ['(none)'];
  const widths = headers.map((header, i) => Math.max(header.length, ...rows.map((row) => row[i].length)));
  const line = (cells: string[]) => cells.map((cell, i) => cell.padEnd(widths[i])).join('  ').trimEnd();
  return [line(headers), ...rows.map(line)];
}

export type Values = Record<string, string | boolean | string[] | undefined>;

/** The value of a required `--name VALUE` option. */
export function required(values: Values, name: string): string {
  const value = values[name];
  if (typeof value !== 'string' || value === '') throw new UsageError(`--${name} is required`);
  return value;
}
