import type { Services } from '../services.js';
import type { Client } from '../store/clients.js';
import { actor, required, table, UsageError, type Output, type Values } from './output.js';

const publicClient = (client: Client) => ({
  clientId: client.clientId,
  name: client.name,
  isPublic: client.tokenEndpointAuthMethod === 'none',
  redirectUris: client.redirectUris,
  postLogoutRedirectUris: client.postLogoutRedirectUris,
  grantTypes: client.grantTypes,
  skipConsent: client.isFirstParty,
  backchannelLogoutUri: client.backchannelLogoutUri,
  backchannelLogoutSessionRequired: client.backchannelLogoutSessionRequired,
  createdAt: new Date(client.createdAt).toISOString(),
});

export const clientCommands = {
  create: {
    options: {
      'client-id': { type: 'string' }, 'client-secret': { type: 'string' }, public: { type: 'boolean' },
      'redirect-uri': { type: 'string', multiple: true }, 'post-logout-redirect-uri': { type: 'string', multiple: true },
      'grant-types': { type: 'string' }, 'skip-consent': { type: 'boolean' }, name: { type: 'string' },
      'backchannel-logout-uri': { type: 'string' }, 'backchannel-logout-session-required': { type: 'string' },
    },
    async run(values: Values, { clients, audit }: Services, out: Output) {
      if (values.public && values['client-secret'] !== undefined) throw new UsageError('--public and --client-secret exclude each other');
      const grantTypes = typeof values['grant-types'] === 'string'
        ? values['grant-types'].split(',').map((grantType) => grantType.trim()).filter(Boolean)
        : undefined;
      const sessionRequired = values['backchannel-logout-session-required'];
      if (sessionRequired !== undefined && sessionRequired !== 'true' && sessionRequired !== 'false') {
        throw new UsageError('--backchannel-logout-session-required must be true or false');
      }
      const client = await clients.register({
        clientId: required(values, 'client-id'),
        clientSecret: values['client-secret'] as string | undefined,
        isPublic: values.public === true,
        name: values.name as string | undefined,
        redirectUris: values['redirect-uri'] as string[] | undefined,
        postLogoutRedirectUris: values['post-logout-redirect-uri'] as string[] | undefined,
        grantTypes,
        skipConsent: values['skip-consent'] === true,
        backchannelLogoutUri: values['backchannel-logout-uri'] as string | undefined,
        backchannelLogoutSessionRequired: sessionRequired === undefined ? undefined : sessionRequired === 'true',
      });
      await audit.record({ type: 'client.created', clientId: client.clientId, details: {
        actor: actor(), authMethod: client.tokenEndpointAuthMethod, grantTypes: client.grantTypes.join(' '), skipConsent: client.isFirstParty,
      } });
      const wasGenerated = client.clientSecret !== null && values['client-secret'] === undefined;
      out.result({ ...publicClient(client), ...(wasGenerated ? { clientSecret: client.clientSecret } : {}) }, [
        `created ${client.tokenEndpointAuthMethod === 'none' ? 'public' : 'confidential'} client ${client.clientId}`,
        ...(wasGenerated ? [`client secret (shown once, store it now): ${client.clientSecret}`] : []),
      ]);
    },
  },
  list: {
    options: {},
    async run(_values: Values, { clients }: Services, out: Output) {
      const all = await clients.list();
      out.result(all.map(publicClient), table(
        ['CLIENT ID', 'TYPE', 'GRANT TYPES', 'REDIRECT URIS', 'NAME'],
        all.map((c) => [c.clientId, c.tokenEndpointAuthMethod === 'none' ? 'public' : 'confidential', c.grantTypes.join(','), c.redirectUris.join(' '), c.name ?? '']),
      ));
    },
  },
  delete: {
    options: { 'client-id': { type: 'string' } },
    async run(values: Values, { clients, audit }: Services, out: Output) {
      const clientId = required(values, 'client-id');
      if (!(await clients.delete(clientId))) throw new UsageError(`no client with id ${clientId}`);
      await audit.record({ type: 'client.deleted', clientId, details: { actor: actor() } });
      out.result({ clientId, deleted: true }, [`deleted client ${clientId}`]);
    },
  },
} as const;
