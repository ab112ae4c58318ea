import type { RegisteredClient } from '../registry/clients.js';
import type { Services } from '../services.js';
import type { ApiAccess } from '../store/clients.js';
import { actor, required, table, UsageError, type Io, type Output, type Values } from './output.js';
import { secretOption } from './stdin.js';

const publicClient = (client: RegisteredClient) => ({
  clientId: client.clientId,
  name: client.name,
  isPublic: client.tokenEndpointAuthMethod === 'none',
  redirectUris: client.redirectUris,
  postLogoutRedirectUris: client.postLogoutRedirectUris,
  grantTypes: client.grantTypes,
  skipConsent: client.skipConsent,
  requireMfa: client.requireMfa,
  apis: client.apis,
  backchannelLogoutUri: client.backchannelLogoutUri,
  backchannelLogoutSessionRequired: client.backchannelLogoutSessionRequired,
  createdAt: new Date(client.createdAt).toISOString(),
});

const describeApi = (api: ApiAccess) => `${api.audience}${api.scopes.length > 0 ? ` (${api.scopes.join(' ')})` : ' (audience only)'}`;
const describeApis = (apis: ApiAccess[]) => (apis.length > 0 ? apis.map(describeApi).join(', ') : 'none');

/**
 * `--api AUD[:scope1,scope2]`. An audience is a URI and may hold colons itself (`https://host:8443`, `urn:a:b`),
 * and scopes may too (`api:read`), so the value is matched against the registered audiences: the longest one that
 * is the whole value (the audience alone) or is followed by `:` (then the comma-separated scopes).
 */
export function parseApiOption(value: string, audiences: string[]): ApiAccess {
  const audience = audiences
    .filter((candidate) => value === candidate || value.startsWith(`${candidate}:`))
    .sort((a, b) => b.length - a.length)[0];
  if (audience === undefined) {
    throw new UsageError(`--api ${value}: no registered API matches (latchkey apis list); the form is AUD or AUD:scope1,scope2`);
  }
  const scopes = value.slice(audience.length + 1).split(',').map((scope) => scope.trim()).filter(Boolean);
  return { audience, scopes };
}

async function apiOptions(values: Values, { apis }: Services): Promise<ApiAccess[] | undefined> {
  const given = values.api as string[] | undefined;
  if (given === undefined) return undefined;
  const audiences = (await apis.list()).map((api) => api.audience);
  return given.map((value) => parseApiOption(value, audiences));
}

function booleanOption(values: Values, name: string): boolean | undefined {
  const value = values[name];
  if (value === undefined) return undefined;
  if (value !== 'true' && value !== 'false') throw new UsageError(`--${name} must be true or false`);
  return value === 'true';
}

export const clientCommands = {
  create: {
    options: {
      'client-id': { type: 'string' }, 'client-secret': { type: 'string' }, 'client-secret-stdin': { type: 'boolean' },
      public: { type: 'boolean' },
      'redirect-uri': { type: 'string', multiple: true }, 'post-logout-redirect-uri': { type: 'string', multiple: true },
      'grant-types': { type: 'string' }, 'skip-consent': { type: 'boolean' }, 'require-mfa': { type: 'boolean' }, name: { type: 'string' },
      api: { type: 'string', multiple: true },
      'backchannel-logout-uri': { type: 'string' }, 'backchannel-logout-session-required': { type: 'string' },
    },
    async run(values: Values, services: Services, out: Output, io: Io) {
      const { clients, audit } = services;
      const secretOptions = ['public', 'client-secret', 'client-secret-stdin'].filter((name) => values[name] !== undefined);
      if (secretOptions.length > 1) throw new UsageError(`--${secretOptions.join(' and --')} exclude each other`);
      const grantTypes = typeof values['grant-types'] === 'string'
        ? values['grant-types'].split(',').map((grantType) => grantType.trim()).filter(Boolean)
        : undefined;
      const sessionRequired = booleanOption(values, 'backchannel-logout-session-required');
      const clientId = required(values, 'client-id');
      const apis = await apiOptions(values, services);
      const clientSecret = await secretOption(values, 'client-secret', io);
      const client = await clients.register({
        clientId,
        clientSecret,
        isPublic: values.public === true,
        name: values.name as string | undefined,
        redirectUris: values['redirect-uri'] as string[] | undefined,
        postLogoutRedirectUris: values['post-logout-redirect-uri'] as string[] | undefined,
        grantTypes,
        skipConsent: values['skip-consent'] === true,
        requireMfa: values['require-mfa'] === true,
        apis,
        backchannelLogoutUri: values['backchannel-logout-uri'] as string | undefined,
        backchannelLogoutSessionRequired: sessionRequired,
      });
      await audit.record({ type: 'client.created', clientId: client.clientId, details: {
        actor: actor(), authMethod: client.tokenEndpointAuthMethod, grantTypes: client.grantTypes.join(' '), skipConsent: client.skipConsent, requireMfa: client.requireMfa,
        apis: describeApis(client.apis),
      } });
      const wasGenerated = client.clientSecret !== null && clientSecret === undefined;
      out.result({ ...publicClient(client), ...(wasGenerated ? { clientSecret: client.clientSecret } : {}) }, [
        `created ${client.tokenEndpointAuthMethod === 'none' ? 'public' : 'confidential'} client ${client.clientId}`,
        `APIs: ${describeApis(client.apis)}`,
        ...(wasGenerated ? [`client secret (shown once, store it now): ${client.clientSecret}`] : []),
      ]);
    },
  },
  update: {
    options: {
      'client-id': { type: 'string' }, api: { type: 'string', multiple: true }, 'no-apis': { type: 'boolean' },
      name: { type: 'string' }, 'skip-consent': { type: 'string' }, 'require-mfa': { type: 'string' },
    },
    async run(values: Values, services: Services, out: Output) {
      const { clients, audit } = services;
      const clientId = required(values, 'client-id');
      if (values.api !== undefined && values['no-apis'] !== undefined) throw new UsageError('--api and --no-apis exclude each other');
      const apis = values['no-apis'] === true ? [] : await apiOptions(values, services);
      const skipConsent = booleanOption(values, 'skip-consent');
      const requireMfa = booleanOption(values, 'require-mfa');
      const name = values.name as string | undefined;
      if (apis === undefined && skipConsent === undefined && requireMfa === undefined && name === undefined) {
        throw new UsageError('nothing to change: give --api, --no-apis, --name, --skip-consent or --require-mfa');
      }
      const client = await clients.update(clientId, { apis, skipConsent, requireMfa, name: name === '' ? null : name });
      if (!client) throw new UsageError(`no client with id ${clientId}`);
      await audit.record({ type: 'client.updated', clientId, details: {
        actor: actor(),
        ...(apis !== undefined ? { apis: describeApis(client.apis) } : {}),
        ...(skipConsent !== undefined ? { skipConsent } : {}),
        ...(requireMfa !== undefined ? { requireMfa } : {}),
        ...(name !== undefined ? { name } : {}),
      } });
      out.result(publicClient(client), [`updated client ${clientId}`, `APIs: ${describeApis(client.apis)}`]);
    },
  },
  list: {
    options: {},
    async run(_values: Values, { clients }: Services, out: Output) {
      const all = await clients.list();
      const apis = await clients.listApis();
      const registered = all.map((client) => ({ ...client, apis: apis.get(client.clientId) ?? [] }));
      out.result(registered.map(publicClient), table(
        ['CLIENT ID', 'TYPE', 'GRANT TYPES', 'APIS', 'REDIRECT URIS', 'NAME'],
        registered.map((c) => [
          c.clientId, c.tokenEndpointAuthMethod === 'none' ? 'public' : 'confidential', c.grantTypes.join(','),
          c.apis.map((api) => (api.scopes.length > 0 ? `${api.audience}:${api.scopes.join(',')}` : api.audience)).join(' ') || '-',
          c.redirectUris.join(' '), c.name ?? '',
        ]),
      ));
    },
  },
  delete: {
    options: { 'client-id': { type: 'string' } },
    async run(values: Values, { clients, audit }: Services, out: Output) {
      const clientId = required(values, 'client-id');
      if (!(await clients.delete(clientId))) throw new UsageError(`no client with id ${clientId}`);
      await audit.record({ type: 'client.deleted', clientId, details: { actor: actor() } });
      out.result({ clientId, deleted: true }, [`deleted client ${clientId} and every grant and token it was issued`]);
    },
  },
} as const;
