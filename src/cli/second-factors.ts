import type { Services } from '../services.js';
import { UsageError, actor, required, table, type Output, type Values } from './output.js';

const isoTime = (epochMs: number | null) => (epochMs === null ? null : new Date(epochMs).toISOString());

async function findUser({ accounts }: Services, email: string) {
  const user = await accounts.findByEmail(email);
  if (!user) throw new UsageError(`no user with email ${email}`);
  return user;
}

/** `users mfa --email E` and `users mfa reset --email E` (docs/cli.md): an account's second factors, never their secrets. */
export const secondFactorCommands = {
  mfa: {
    options: { email: { type: 'string' } },
    async run(values: Values, services: Services, out: Output) {
      const user = await findUser(services, required(values, 'email'));
      const { factors, recoveryCodesLeft } = await services.secondFactors.list(user.id);
      const shown = factors.map((factor) => ({ id: factor.id, kind: factor.kind, label: factor.label, createdAt: isoTime(factor.createdAt), lastUsedAt: isoTime(factor.lastUsedAt) }));
      out.result({ email: user.email, factors: shown, recoveryCodesLeft }, [
        ...table(['KIND', 'LABEL', 'ADDED', 'LAST USED'], shown.map((f) => [f.kind, f.label ?? '', f.createdAt ?? '-', f.lastUsedAt ?? 'never'])),
        `recovery codes left: ${recoveryCodesLeft}`,
      ]);
    },
  },
  'mfa reset': {
    options: { email: { type: 'string' } },
    async run(values: Values, services: Services, out: Output) {
      const user = await findUser(services, required(values, 'email'));
      const removed = await services.secondFactors.reset(user.id);
      await services.audit.record({ type: 'mfa.reset', accountId: user.id, email: user.email, details: { actor: actor(), ...removed } });
      // MAIL (src/mail/, being built in parallel): tell the person their second factors were reset, when mail is
      // configured. This is the one call site for that notice.
      out.result({ email: user.email, ...removed }, [
        `removed ${removed.factorsRemoved} second factor(s) and ${removed.recoveryCodesRemoved} recovery code(s) of ${user.email}`,
        'they sign in with their password alone until they set up a factor again (at once, when MFA=required)',
      ]);
    },
  },
} as const;
