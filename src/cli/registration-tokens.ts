import type { Services } from '../services.js';
import { parseDurationSeconds } from './duration.js';
import { actor, UsageError, type Output, type Values } from './output.js';

/** `clients registration-token create`: an initial access token for dynamic client registration (RFC 7591 §3). */
export const registrationTokenCommands = {
  'registration-token create': {
    options: { expires: { type: 'string' }, uses: { type: 'string' } },
    async run(values: Values, { registrationTokens, audit }: Services, out: Output) {
      const expires = typeof values.expires === 'string' ? values.expires : '1h';
      const uses = typeof values.uses === 'string' ? values.uses : '1';
      if (!/^\d{1,5}$/.test(uses)) throw new UsageError(`--uses must be a whole number, got "${uses}"`);
      const created = await registrationTokens.create({ expiresInSeconds: parseDurationSeconds(expires, 'expires'), uses: Number(uses) });
      await audit.record({ type: 'client.registration_token_created', details: { actor: actor(), uses: Number(uses), expiresAt: new Date(created.expiresAt).toISOString() } });
      out.result({ token: created.token, uses: Number(uses), expiresAt: new Date(created.expiresAt).toISOString() }, [
        `registration token for ${uses === '1' ? 'one registration' : `${uses} registrations`} until ${new Date(created.expiresAt).toISOString()}`,
        `(shown once; send it as "Authorization: Bearer …" to the registration endpoint): ${created.token}`,
      ]);
    },
  },
} as const;
