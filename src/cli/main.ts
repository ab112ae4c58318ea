import { parseArgs, type ParseArgsConfig } from 'node:util';
import { loadConfig, type Config } from '../config.js';
import { openServices, type Services } from '../services.js';
import { escapeUnprintable } from '../unprintable.js';
import { UserFacingError } from '../user-facing-error.js';
import { apiCommands } from './apis.js';
import { clientUpkeepCommands } from './client-upkeep.js';
import { clientCommands } from './clients.js';
import { connectionCommands, unlinkCommand } from './connections.js';
import { eventsCommand } from './events.js';
import { keyCommands } from './keys.js';
import { mailCommands } from './mail.js';
import { createOutput, UsageError, type Io, type Output, type Values } from './output.js';
import { registrationTokenCommands } from './registration-tokens.js';
import { secondFactorCommands } from './second-factors.js';
import { userCommands } from './users.js';

export const usage = `usage: latchkey <command> [options] [--json]

  users create --email E (--password-stdin | --password P) [--given-name G] [--family-name F] [--admin] [--email-verified]
                [--locale L] [--zoneinfo Z]
  users invite --email E [--given-name G] [--family-name F] [--admin]
  users update --email E [--given-name G] [--family-name F] [--locale L] [--zoneinfo Z]   (an empty value clears one)
  users list
  users disable --email E
  users enable --email E
  users set-password --email E (--password-stdin | --password P)
  users sessions --email E
  users logout --email E
  users delete --email E
  users mfa --email E
  users mfa reset --email E
  users unlink --email E --connection ID
  clients create --client-id ID [--client-secret-stdin | --client-secret S | --public] --redirect-uri URI [--redirect-uri URI2 …]
                 [--post-logout-redirect-uri URI] [--grant-types authorization_code,refresh_token,client_credentials]
                 [--skip-consent] [--require-mfa] [--name "Display name"] [--api AUD[:scope1,scope2] …]
                 [--backchannel-logout-uri URI [--backchannel-logout-session-required true|false]]
                 [--application-type web|native] [--require-dpop] [--require-par] [--web-origin ORIGIN …]
  clients update --client-id ID [--name N] [--redirect-uri URI … (replaces) | --add-redirect-uri URI …]
                 [--post-logout-redirect-uri URI …] [--grant-types G1,G2] [--api AUD[:scope1,scope2] … | --no-apis]
                 [--skip-consent true|false] [--require-mfa true|false] [--application-type web|native]
                 [--require-dpop true|false] [--require-par true|false] [--web-origin ORIGIN … | --no-web-origins]
  clients rotate-secret --client-id ID [--keep-old-for 1h]
  clients registration-token create [--expires 1h] [--uses 1]
  clients list
  clients delete --client-id ID
  connections create --id ID --issuer URL --client-id X [--client-secret-stdin | --client-secret S] --name "Display name"
                     [--scopes "openid email profile"] [--create-users true|false] [--link-by-email verified|never]
                     [--email-domains example.com,example.org] [--userinfo true|false]
  connections update --id ID [--client-secret-stdin | --client-secret S | --no-client-secret] [--name N] [--scopes S]
                     [--create-users true|false] [--link-by-email verified|never] [--email-domains D,D2] [--userinfo true|false]
  connections list
  connections delete --id ID
  apis create --audience AUD [--scopes "read write"]
  apis list
  apis delete --audience AUD [--force]
  keys list
  keys rotate [--now]
  keys retire --kid=KID
  mail list [--limit N]
  events [--email E] [--since 2026-01-31T12:00:00Z|30m|12h|7d] [--limit N]

--password-stdin reads the password from the first line of standard input (typed without echo at a terminal):
an argument is visible to every user of the host and stays in shell history.
The CLI reads the same environment as the server (DATABASE_URL, KEYS_DIR, …).`;

type Options = NonNullable<ParseArgsConfig['options']>;
type ServiceCommand = { options: Options; run(values: Values, services: Services, out: Output, io: Io): Promise<void> };
/** Key commands work on KEYS_DIR alone; `services` opens the database only for a command that records an event. */
type KeyCommand = { options: Options; run(config: Config, out: Output, values: Values, services: () => Promise<Services>): Promise<void> };

const serviceCommands: Record<string, Record<string, ServiceCommand>> = {
  users: { ...userCommands, ...secondFactorCommands, unlink: unlinkCommand },
  clients: { ...clientCommands, ...clientUpkeepCommands, ...registrationTokenCommands },
  connections: connectionCommands,
  apis: apiCommands,
  mail: mailCommands,
};


/** Runs one CLI command; returns the process exit code. Never throws. */
export async function runCli(argv: string[], env: Record<string, string | undefined>, io: Io): Promise<number> {
  const [group, ...afterGroup] = argv;
  // `events` is a command of its own; the others are a group and a command name.
  // … and a few commands have a second word (`users mfa reset`, `clients registration-token create`).
  const [first, ...afterFirst] = group === 'events' ? ['', ...afterGroup] : afterGroup;
  const isTwoWords = group !== undefined && serviceCommands[group]?.[`${first} ${afterFirst[0]}`] !== undefined;
  const [name, rest] = isTwoWords ? [`${first} ${afterFirst[0]}`, afterFirst.slice(1)] : [first, afterFirst];
  if (group === undefined || group === 'help' || group === '--help' || group === '-h') {
    io.stdout(usage);
    return group === undefined ? 2 : 0;
  }
  const command = group === 'keys' ? (keyCommands as Record<string, KeyCommand>)[name]
    : group === 'events' ? eventsCommand as ServiceCommand
      : serviceCommands[group]?.[name ?? ''];
  if (!command) {
    io.stderr(escapeUnprintable(`latchkey: unknown command "${[group, name].filter(Boolean).join(' ')}"; run "latchkey help"`));
    return 2;
  }
  let services: Services | undefined;
  try {
    let parsed;
    try {
      parsed = parseArgs({ args: rest, options: { ...command.options, json: { type: 'boolean' } }, strict: true, allowPositionals: false });
    } catch (error) {
      // One line, hint included: a kid may start with "-", which needs `--kid=-…`, and Node says so on its last line.
      throw new UsageError((error as Error).message.replace(/\n/g, ' '));
    }
    const out = createOutput(io, parsed.values.json === true);
    const config = loadConfig(env);
    const open = async () => (services ??= await openServices(config, { logDestination: io.log ?? { write: () => undefined } }));
    if (group === 'keys') {
      await (command as KeyCommand).run(config, out, parsed.values as Values, open);
    } else {
      await (command as ServiceCommand).run(parsed.values as Values, await open(), out, io);
    }
    return 0;
  } catch (error) {
    // Errors a user can fix: printed as one line, exit code 1. Anything else is a bug or an outage.
    const isExpected = error instanceof UserFacingError;
    // Messages echo what was typed ("… is not a valid email address"): escaped like every result line.
    io.stderr(escapeUnprintable(`latchkey: ${isExpected ? (error as Error).message : `${group} ${name} failed: ${(error as Error).message}`}`));
    return 1;
  } finally {
    await services?.close();
  }
}
