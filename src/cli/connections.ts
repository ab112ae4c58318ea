import type { PublicConnection } from '../federation/connections.js';
import type { Services } from '../services.js';
import { actor, required, table, UsageError, type Io, type Output, type Values } from './output.js';
import { secretOption } from './stdin.js';

const publicConnection = (connection: PublicConnection, redirectUri: string) => ({
  id: connection.id,
  name: connection.name,
  issuer: connection.issuer,
  clientId: connection.clientId,
  hasClientSecret: connection.hasClientSecret,
  scopes: connection.scopes,
  createUsers: connection.createUsers,
  linkByEmail: connection.linkByEmail,
  emailDomains: connection.emailDomains,
  userinfo: connection.useUserinfo,
  redirectUri,
  createdAt: new Date(connection.createdAt).toISOString(),
});

function booleanOption(values: Values, name: string): boolean | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') throw new UsageError(`--${name} must be true or false`);
  return value === 'true';
}

function linkOption(values: Values): 'verified' | 'never' | undefined {
  const value = values['link-by-email'];
  if (value === undefined) return undefined;
  if (value !== 'verified' && value !== 'never') throw new UsageError('--link-by-email must be verified or never');
  return value;
}

const list = (value: unknown, separator: RegExp) => (typeof value === 'string' ? value.split(separator).map((item) => item.trim()).filter(Boolean) : undefined);

export const connectionCommands = {
  create: {
    options: {
      id: { type: 'string' }, issuer: { type: 'string' }, 'client-id': { type: 'string' }, 'client-secret': { type: 'string' },
      'client-secret-stdin': { type: 'boolean' }, name: { type: 'string' }, scopes: { type: 'string' }, 'create-users': { type: 'string' },
      'link-by-email': { type: 'string' }, 'email-domains': { type: 'string' }, userinfo: { type: 'string' },
    },
    async run(values: Values, { connections, audit }: Services, out: Output, io: Io) {
      const input = {
        id: required(values, 'id'),
        issuer: required(values, 'issuer'),
        clientId: required(values, 'client-id'),
        name: required(values, 'name'),
        scopes: list(values.scopes, /\s+/),
        createUsers: booleanOption(values, 'create-users'),
        linkByEmail: linkOption(values),
        emailDomains: list(values['email-domains'], /,/),
        useUserinfo: booleanOption(values, 'userinfo'),
      };
      const connection = await connections.create({ ...input, clientSecret: await secretOption(values, 'client-secret', io) });
      const redirectUri = connections.callbackUri(connection.id);
      await audit.record({ type: 'connection.created', details: {
        actor: actor(), connection: connection.id, issuer: connection.issuer, createUsers: connection.createUsers,
        linkByEmail: connection.linkByEmail, emailDomains: connection.emailDomains.join(','),
      } });
      out.result(publicConnection(connection, redirectUri), [
        `created connection ${connection.id} (${connection.name}) to ${connection.issuer}`,
        `register this redirect URI at the upstream provider: ${redirectUri}`,
      ]);
    },
  },
  update: {
    options: {
      id: { type: 'string' }, 'client-secret': { type: 'string' }, 'client-secret-stdin': { type: 'boolean' }, 'no-client-secret': { type: 'boolean' },
      name: { type: 'string' }, scopes: { type: 'string' }, 'create-users': { type: 'string' }, 'link-by-email': { type: 'string' },
      'email-domains': { type: 'string' }, userinfo: { type: 'string' },
    },
    async run(values: Values, { connections, audit }: Services, out: Output, io: Io) {
      const id = required(values, 'id');
      const secretOptions = ['client-secret', 'client-secret-stdin', 'no-client-secret'].filter((name) => values[name] !== undefined);
      if (secretOptions.length > 1) throw new UsageError(`--${secretOptions.join(' and --')} exclude each other`);
      const changes = {
        name: values.name as string | undefined,
        scopes: list(values.scopes, /\s+/),
        createUsers: booleanOption(values, 'create-users'),
        linkByEmail: linkOption(values),
        emailDomains: typeof values['email-domains'] === 'string' ? list(values['email-domains'], /,/) : undefined,
        useUserinfo: booleanOption(values, 'userinfo'),
      };
      const clientSecret = values['no-client-secret'] === true ? null : await secretOption(values, 'client-secret', io);
      const given = Object.entries(changes).filter(([, value]) => value !== undefined).map(([name]) => name);
      if (given.length === 0 && clientSecret === undefined) throw new UsageError('nothing to change: give --name, --scopes, --create-users, --link-by-email, --email-domains, --userinfo or a client secret option');
      const connection = await connections.update(id, { ...changes, clientSecret });
      await audit.record({ type: 'connection.updated', details: {
        actor: actor(), connection: id, changed: [...given, ...(clientSecret === undefined ? [] : ['clientSecret'])].join(','),
      } });
      out.result(publicConnection(connection, connections.callbackUri(id)), [`updated connection ${id}`]);
    },
  },
  list: {
    options: {},
    async run(_values: Values, { connections }: Services, out: Output) {
      const all = await connections.list();
      out.result(all.map((c) => publicConnection(c, connections.callbackUri(c.id))), table(
        ['ID', 'NAME', 'ISSUER', 'CLIENT ID', 'CREATE USERS', 'LINK BY EMAIL', 'EMAIL DOMAINS'],
        all.map((c) => [c.id, c.name, c.issuer, c.clientId, c.createUsers ? 'yes' : 'no', c.linkByEmail, c.emailDomains.join(',') || '(any)']),
      ));
    },
  },
  delete: {
    options: { id: { type: 'string' } },
    async run(values: Values, { connections, audit }: Services, out: Output) {
      const id = required(values, 'id');
      await connections.delete(id);
      await audit.record({ type: 'connection.deleted', details: { actor: actor(), connection: id } });
      out.result({ id, deleted: true }, [`deleted connection ${id} and every identity linked through it (the users stay)`]);
    },
  },
} as const;

/** `users unlink`: lives with the connections, registered under `users` in main.ts. */
export const unlinkCommand = {
  options: { email: { type: 'string' }, connection: { type: 'string' } },
  async run(values: Values, { connections, audit }: Services, out: Output) {
    const unlinked = await connections.unlink(required(values, 'email'), required(values, 'connection'));
    await audit.record({ type: 'federation.unlinked', accountId: unlinked.userId, email: unlinked.email, details: { actor: actor(), connection: values.connection } });
    out.result({ ...unlinked, connection: values.connection, unlinked: true }, [`unlinked ${unlinked.email} from connection ${values.connection}`]);
  },
} as const;
