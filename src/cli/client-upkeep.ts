import type { Services } from '../services.js';
import { apiOptions, booleanOption, describeApis, grantTypesOption, publicClient } from './clients.js';
import { parseDurationSeconds } from './duration.js';
import { actor, required, UsageError, type Output, type Values } from './output.js';

const list = (values: Values, name: string) => values[name] as string[] | undefined;

/** `clients update` and `clients rotate-secret`: changing a client after it was created, under the rules of create. */
export const clientUpkeepCommands = {
  update: {
    options: {
      'client-id': { type: 'string' }, name: { type: 'string' },
      'redirect-uri': { type: 'string', multiple: true }, 'add-redirect-uri': { type: 'string', multiple: true },
      'post-logout-redirect-uri': { type: 'string', multiple: true }, 'grant-types': { type: 'string' },
      api: { type: 'string', multiple: true }, 'no-apis': { type: 'boolean' }, 'skip-consent': { type: 'string' },
      'application-type': { type: 'string' }, 'require-dpop': { type: 'string' }, 'require-par': { type: 'string' },
      'web-origin': { type: 'string', multiple: true }, 'no-web-origins': { type: 'boolean' }, 'require-mfa': { type: 'string' },
    },
    async run(values: Values, services: Services, out: Output) {
      const { clients, audit } = services;
      const clientId = required(values, 'client-id');
      if (values.api !== undefined && values['no-apis'] !== undefined) throw new UsageError('--api and --no-apis exclude each other');
      if (values['web-origin'] !== undefined && values['no-web-origins'] !== undefined) {
        throw new UsageError('--web-origin and --no-web-origins exclude each other');
      }
      const name = values.name as string | undefined;
      const changes = {
        ...(name !== undefined ? { name: name === '' ? null : name } : {}),
        redirectUris: list(values, 'redirect-uri'),
        addRedirectUris: list(values, 'add-redirect-uri'),
        postLogoutRedirectUris: list(values, 'post-logout-redirect-uri'),
        grantTypes: grantTypesOption(values),
        apis: values['no-apis'] === true ? [] : await apiOptions(values, services),
        skipConsent: booleanOption(values, 'skip-consent'),
        applicationType: values['application-type'] as string | undefined,
        requireDpop: booleanOption(values, 'require-dpop'),
        requirePar: booleanOption(values, 'require-par'),
        requireMfa: booleanOption(values, 'require-mfa'),
        webOrigins: values['no-web-origins'] === true ? [] : list(values, 'web-origin'),
      };
      const given = Object.fromEntries(Object.entries(changes).filter(([, value]) => value !== undefined));
      if (Object.keys(given).length === 0) throw new UsageError('nothing to change: run "latchkey help" for the options of clients update');
      const client = await clients.update(clientId, given);
      if (!client) throw new UsageError(`no client with id ${clientId}`);
      // What was asked, as the client now has it (lists joined, so each detail is one value in the audit trail).
      await audit.record({ type: 'client.updated', clientId, details: {
        actor: actor(),
        ...Object.fromEntries(Object.keys(given).map((key) => {
          const now = key === 'apis' ? describeApis(client.apis) : key === 'addRedirectUris' ? client.redirectUris : client[key as keyof typeof client];
          return [key === 'addRedirectUris' ? 'redirectUris' : key, Array.isArray(now) ? now.join(' ') : now];
        })),
      } });
      out.result(publicClient(client), [`updated client ${clientId}`, `APIs: ${describeApis(client.apis)}`]);
    },
  },
  'rotate-secret': {
    options: { 'client-id': { type: 'string' }, 'keep-old-for': { type: 'string' } },
    async run(values: Values, { clients, audit }: Services, out: Output) {
      const clientId = required(values, 'client-id');
      const keepOldFor = values['keep-old-for'];
      const keepOldForSeconds = typeof keepOldFor === 'string' ? parseDurationSeconds(keepOldFor, 'keep-old-for') : 0;
      const secret = await clients.rotateSecret(clientId, keepOldForSeconds);
      if (secret === undefined) throw new UsageError(`no client with id ${clientId}`);
      await audit.record({ type: 'client.secret_rotated', clientId, details: { actor: actor(), keepOldForSeconds } });
      out.result({ clientId, clientSecret: secret, previousSecretValidForSeconds: keepOldForSeconds }, [
        `rotated the secret of client ${clientId}`,
        keepOldForSeconds > 0 ? `the old secret keeps working for ${keepOldFor}, then stops` : 'the old secret stopped working',
        `client secret (shown once, store it now): ${secret}`,
      ]);
    },
  },
} as const;
