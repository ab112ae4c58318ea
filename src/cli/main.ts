import { parseArgs, type ParseArgsConfig } from 'node:util';
import { AccountError } from '../accounts/accounts.js';
import { ConfigError, loadConfig, type Config } from '../config.js';
import { RegistryError } from '../registry/clients.js';
import { openServices, type Services } from '../services.js';
import { DuplicateClientError } from '../store/clients.js';
import { DuplicateEmailError } from '../store/users.js';
import { apiCommands } from './apis.js';
import { clientCommands } from './clients.js';
import { eventsCommand } from './events.js';
import { keyCommands } from './keys.js';
import { createOutput, IncompleteError, UsageError, type Io, type Output, type Values } from './output.js';
import { userCommands } from './users.js';

export const usage = `usage: latchkey <command> [options] [--json]

  users create --email E --password P [--given-name G] [--family-name F] [--admin] [--email-verified]
  users list
  users disable --email E
  users enable --email E
  users set-password --email E --password P
  users sessions --email E
  users logout --email E
  clients create --client-id ID [--client-secret S | --public] --redirect-uri URI [--redirect-uri URI2 …]
                 [--post-logout-redirect-uri URI] [--grant-types authorization_code,refresh_token,client_credentials]
                 [--skip-consent] [--name "Display name"]
                 [--backchannel-logout-uri URI [--backchannel-logout-session-required true|false]]
  clients list
  clients delete --client-id ID
  apis create --audience AUD [--scopes "read write"]
  apis list
  keys list
  keys rotate [--now]
  events [--email E] [--since 2026-01-31T12:00:00Z|30m|12h|7d] [--limit N]

The CLI reads the same environment as the server (DATABASE_URL, KEYS_DIR, …).`;

type Options = NonNullable<ParseArgsConfig['options']>;
type ServiceCommand = { options: Options; run(values: Values, services: Services, out: Output): Promise<void> };
type KeyCommand = { options: Options; run(config: Config, out: Output, values: Values): Promise<void> };

const serviceCommands: Record<string, Record<string, ServiceCommand>> = {
  users: userCommands,
  clients: clientCommands,
  apis: apiCommands,
};

/** Errors a user can fix: printed as one line, exit code 1. Anything else is a bug or an outage. */
const expectedErrors = [UsageError, IncompleteError, ConfigError, AccountError, RegistryError, DuplicateEmailError, DuplicateClientError];

/** Runs one CLI command; returns the process exit code. Never throws. */
export async function runCli(argv: string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  const [group, ...afterGroup] = argv;
  // `events` is a command of its own; the others are a group and a command name.
  const [name, ...rest] = group === 'events' ? ['', ...afterGroup] : afterGroup;
  if (group === undefined || group === 'help' || group === '--help' || group === '-h') {
    io.stdout(usage);
    return group === undefined ? 2 : 0;
  }
  const command = group === 'keys' ? (keyCommands as Record<string, KeyCommand>)[name]
    : group === 'events' ? eventsCommand as ServiceCommand
      : serviceCommands[group]?.[name ?? ''];
  if (!command) {
    io.stderr(`latchkey: unknown command "${[group, name].filter(Boolean).join(' ')}"; run "latchkey help"`);
    return 2;
  }
  let services: Services | undefined;
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...command.options, json: { type: 'boolean' } }, strict: true, allowPositionals: false });
    } catch (error) {
      throw new UsageError((error as Error).message.split('\n')[0]);
    }
    const out = createOutput(io, parsed.values.json === true);
    const config = loadConfig(env);
    if (group === 'keys') {
      await (command as KeyCommand).run(config, out, parsed.values as Values);
    } else {
      services = await openServices(config, { logDestination: io.log ?? { write: () => undefined } });
      await (command as ServiceCommand).run(parsed.values as Values, services, out);
    }
    return 0;
  } catch (error) {
    const isExpected = expectedErrors.some((type) => error instanceof type);
    io.stderr(`latchkey: ${isExpected ? (error as Error).message : `${group} ${name} failed: ${(error as Error).message}`}`);
    return 1;
  } finally {
    await services?.close();
  }
}
