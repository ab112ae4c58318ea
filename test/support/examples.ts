import { randomBytes } from 'node:crypto';
import { startApi, type RunningApi } from '../../examples/api/api.js';
import { startWebApp, type RunningWebApp } from '../../examples/web-app/web-app.js';
import type { TestServer } from './server.js';

export const apiAudience = 'https://api.example.test';

export type ExampleSetup = { api: RunningApi; apps: RunningWebApp[]; close(): Promise<void> };

/**
 * The example API and two example web apps on free ports, registered at the test server through the registry the
 * CLI uses: app 1 "Notes" asks for consent, app 2 "Calendar" is first-party (no consent page).
 */
export async function startExamples(server: TestServer, options: { now?: () => number } = {}): Promise<ExampleSetup> {
  await server.services.apis.register(apiAudience, ['read', 'write']);
  // A zero cooldown lets the API refetch the JWKS at once after a rotation.
  const api = await startApi({ issuer: server.issuer, audience: apiAudience, jwksCooldownSeconds: 0 });

  async function startRegisteredApp(clientId: string, name: string, skipConsent: boolean): Promise<RunningWebApp> {
    const clientSecret = randomBytes(32).toString('base64url');
    const app = await startWebApp({ issuer: server.issuer, clientId, clientSecret, apiUrl: api.url, apiAudience, name, now: options.now });
    await server.services.clients.register({
      clientId, clientSecret, name, skipConsent,
      // The apps ask for the API's read scope (examples/web-app/sign-in.ts), and get nothing more.
      apis: [{ audience: apiAudience, scopes: ['read'] }],
      redirectUris: [`${app.url}/callback`],
      postLogoutRedirectUris: [`${app.url}/signed-out`],
      backchannelLogoutUri: `${app.url}/backchannel-logout`,
      grantTypes: ['authorization_code', 'refresh_token'],
    });
    return app;
  }

  const apps = [await startRegisteredApp('notes', 'Notes', false), await startRegisteredApp('calendar', 'Calendar', true)];
  return {
    api,
    apps,
    async close() {
      for (const app of apps) await app.close();
      await api.close();
    },
  };
}
