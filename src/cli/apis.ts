import type { Services } from '../services.js';
import type { Api } from '../store/apis.js';
import { actor, required, table, type Output, type Values } from './output.js';

const publicApi = (api: Api) => ({ audience: api.audience, scopes: api.scopes, createdAt: new Date(api.createdAt).toISOString() });

export const apiCommands = {
  create: {
    options: { audience: { type: 'string' }, scopes: { type: 'string' } },
    async run(values: Values, { apis, audit }: Services, out: Output) {
      const scopes = typeof values.scopes === 'string' ? values.scopes.split(/\s+/).filter(Boolean) : [];
      const api = await apis.register(required(values, 'audience'), scopes);
      await audit.record({ type: 'api.registered', details: { actor: actor(), audience: api.audience, scopes: api.scopes.join(' ') } });
      out.result(publicApi(api), [`registered API ${api.audience} with scopes: ${api.scopes.join(' ') || '(none)'}`]);
    },
  },
  delete: {
    options: { audience: { type: 'string' }, force: { type: 'boolean' } },
    async run(values: Values, { apis, audit }: Services, out: Output) {
      const { api, removedFrom } = await apis.delete(required(values, 'audience'), { force: values.force === true });
      await audit.record({ type: 'api.deleted', details: { actor: actor(), audience: api.audience, removedFrom: removedFrom.join(' ') } });
      out.result({ ...publicApi(api), removedFrom, issuedTokensStayValidUntilExpiry: true }, [
        `deleted API ${api.audience}${removedFrom.length > 0 ? `; taken from ${removedFrom.join(', ')}` : ''}`,
        'access tokens already issued for it stay valid until they expire (ACCESS_TOKEN_TTL): APIs verify them offline',
      ]);
    },
  },
  list: {
    options: {},
    async run(_values: Values, { apis }: Services, out: Output) {
      const all = await apis.list();
      out.result(all.map(publicApi), table(['AUDIENCE', 'SCOPES'], all.map((api) => [api.audience, api.scopes.join(' ')])));
    },
  },
} as const;
