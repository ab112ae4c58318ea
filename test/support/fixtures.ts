import type { Services } from '../../src/services.js';
import type { NewClient } from '../../src/registry/clients.js';
import { postLogoutRedirectUri, redirectUri } from './rp.js';

export const password = 'correct horse battery staple';

let counter = 0;

/** A user created through the same service the CLI uses. */
export async function createUser(services: Services, overrides: { email?: string; password?: string; givenName?: string; familyName?: string } = {}) {
  counter += 1;
  return services.accounts.create({
    email: overrides.email ?? `user${counter}-${Date.now()}@example.com`,
    password: overrides.password ?? password,
    givenName: overrides.givenName ?? 'Ada',
    familyName: overrides.familyName ?? 'Lovelace',
    emailVerified: true,
  });
}

/** A confidential web app client with the classic settings; override anything. */
export async function createClient(services: Services, overrides: Partial<NewClient> = {}) {
  counter += 1;
  return services.clients.register({
    clientId: `app-${counter}`,
    name: 'Test App',
    redirectUris: [redirectUri],
    postLogoutRedirectUris: [postLogoutRedirectUri],
    grantTypes: ['authorization_code', 'refresh_token'],
    ...overrides,
  });
}
