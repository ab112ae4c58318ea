import { pino, type DestinationStream, type Logger } from 'pino';
import type { LogLevel } from './config.js';
import { escapeUnprintableInJson } from './unprintable.js';

/**
 * Structured JSON log lines (pino) on stdout, or on `destination` (tests capture it). Latchkey never passes a
 * password, token, code or secret to the logger; the redaction list is a second line of defence against a field
 * that slips in by mistake.
 */
export function createLogger(level: LogLevel, destination?: DestinationStream): Logger {
  return pino({
    level,
    base: { service: 'latchkey', pid: process.pid },
    timestamp: pino.stdTimeFunctions.isoTime,
    redact: {
      paths: ['password', 'token', 'code', 'client_secret', 'clientSecret', 'refresh_token', 'access_token', 'id_token', 'authorization', 'cookie',
        '*.password', '*.token', '*.code', '*.client_secret', '*.clientSecret', '*.refresh_token', '*.access_token', '*.id_token', '*.authorization', '*.cookie'],
      censor: '[redacted]',
    },
    // Lines carry what attackers typed (an email at the login form); pino's JSON leaves DEL, C1 controls and bidi
    // overrides raw, which a terminal tailing the log would obey.
    hooks: { streamWrite: escapeUnprintableInJson },
  }, destination ?? pino.destination({ fd: 1, sync: false }));
}

/**
 * The process's own lines (serving, signals, workers), in the same JSON form. They are written whatever LOG_LEVEL
 * says, and at once: a supervisor or a test waits for the serving line, and the last line must be out before exit.
 */
export function createLifecycleLogger(): Logger {
  return createLogger('info', pino.destination({ fd: 1, sync: true }));
}
