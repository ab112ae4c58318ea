import { errors, type Configuration } from 'oidc-provider';

/**
 * The authorization parameter `connection=ID` (as Auth0 has it): the app asks to skip Latchkey's login page and go
 * straight to one upstream connection (src/federation/). An id that names no connection is an OAuth error
 * (invalid_request, returned to the app), not a login page without the button.
 */
export function connectionParam(isConnection: (id: string) => Promise<boolean>): NonNullable<Configuration['extraParams']> {
  return {
    async connection(_ctx, value) {
      if (value === undefined) return;
      if (typeof value !== 'string' || !(await isConnection(value))) throw new errors.InvalidRequest('connection is not a known connection');
    },
  };
}
