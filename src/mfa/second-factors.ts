import { randomUUID } from 'node:crypto';
import type { Transaction } from '../store/transactions.js';
import type { SecretBox } from '../secret-box.js';
import type { SecondFactor, SecondFactorStore } from '../store/second-factors.js';
import { UserFacingError } from '../user-facing-error.js';
import { hashRecoveryCode, newRecoveryCodes, normalizeRecoveryCode } from './recovery-codes.js';
import { matchTotpStep, newTotpSecret, qrCodeSvg, readTotpCode, totpUri } from './totp.js';

export class SecondFactorError extends UserFacingError {
  constructor(message: string) {
    super(message);
    this.name = 'SecondFactorError';
  }
}

/** A factor as pages and the CLI show it: never its secret. */
export type FactorSummary = { id: string; kind: string; label: string | null; createdAt: number; lastUsedAt: number | null };

/** How a second factor was proven: an authenticator code, a passkey or a recovery code (docs/mfa.md, "Claims"). */
export type FactorUse = 'otp' | 'passkey' | 'recovery_code';

export type TotpEnrolment = { secret: string; uri: string; qrSvg: string };

const summary = (factor: SecondFactor): FactorSummary => ({
  id: factor.id, kind: factor.kind, label: factor.label, createdAt: factor.createdAt, lastUsedAt: factor.lastUsedAt,
});

// The secret is sealed for its row: a value copied to another factor or account does not open there.
const sealContext = (factor: Pick<SecondFactor, 'id' | 'accountId'>) => `second-factor:${factor.accountId}:${factor.id}`;

export type SecondFactors = ReturnType<typeof createSecondFactors>;

/**
 * An account's second factors: enrolment, checking a code, recovery codes, removal. Every kind of factor lives in
 * one store table (`kind`), and `verify` is the one place a kind is checked, so a new kind (passkeys) is a new
 * branch here and a new page, not a new shape. Time is passed in (`now`, epoch ms).
 */
export function createSecondFactors(deps: { store: SecondFactorStore; box: SecretBox; totpDriftSteps: number; now: () => number }) {
  const { store, box, totpDriftSteps, now } = deps;

  const confirmed = async (accountId: string) => (await store.listByAccount(accountId)).filter((factor) => factor.confirmedAt !== null);
  const hasFactor = async (accountId: string) => (await confirmed(accountId)).length > 0;

  async function replaceRecoveryCodes(accountId: string): Promise<string[]> {
    const codes = newRecoveryCodes();
    await store.replaceRecoveryCodes(accountId, codes.map((code) => hashRecoveryCode(accountId, normalizeRecoveryCode(code)!)), now());
    return codes;
  }

  /** The step of `code` for this TOTP factor, if it matches within the drift window. */
  function totpStep(factor: SecondFactor, code: string, at: number): number | undefined {
    return factor.secret ? matchTotpStep(box.open(factor.secret, sealContext(factor)), code, at, totpDriftSteps) : undefined;
  }

  return {
    async list(accountId: string): Promise<{ factors: FactorSummary[]; recoveryCodesLeft: number }> {
      return { factors: (await confirmed(accountId)).map(summary), recoveryCodesLeft: await store.countRecoveryCodes(accountId) };
    },

    hasFactor,

    /**
     * Starts a TOTP enrolment: a new secret, sealed and stored as waiting (any earlier waiting one is replaced).
     * Nothing signs in with it until `confirmTotp` gets a code from it. One authenticator per account.
     */
    async beginTotp(accountId: string, names: { issuer: string; account: string }): Promise<TotpEnrolment> {
      if ((await confirmed(accountId)).some((factor) => factor.kind === 'totp')) {
        throw new SecondFactorError('an authenticator app is already set up; remove it first');
      }
      await store.deleteWaiting(accountId);
      const secret = newTotpSecret();
      const id = randomUUID();
      await store.insert({
        id, accountId, kind: 'totp', label: 'Authenticator app', secret: box.seal(secret, sealContext({ id, accountId })),
        lastUsedStep: null, confirmedAt: null, lastUsedAt: null, createdAt: now(),
      });
      const uri = totpUri(secret, names.issuer, names.account);
      return { secret, uri, qrSvg: await qrCodeSvg(uri) };
    },

    /** The waiting enrolment's secret again (the page is shown again after a wrong code), or undefined. */
    async waitingTotp(accountId: string, names: { issuer: string; account: string }): Promise<TotpEnrolment | undefined> {
      const waiting = (await store.listByAccount(accountId)).find((factor) => factor.kind === 'totp' && factor.confirmedAt === null);
      if (!waiting?.secret) return undefined;
      const secret = box.open(waiting.secret, sealContext(waiting));
      const uri = totpUri(secret, names.issuer, names.account);
      return { secret, uri, qrSvg: await qrCodeSvg(uri) };
    },

    /**
     * Finishes the enrolment when `typed` is a current code of the waiting secret, and returns a new set of
     * recovery codes (shown once); undefined when the code is wrong or nothing was waiting.
     */
    async confirmTotp(accountId: string, typed: string): Promise<{ recoveryCodes: string[] } | undefined> {
      const code = readTotpCode(typed);
      const waiting = (await store.listByAccount(accountId)).find((factor) => factor.kind === 'totp' && factor.confirmedAt === null);
      if (!code || !waiting) return undefined;
      const at = now();
      const step = totpStep(waiting, code, at);
      if (step === undefined || !(await store.confirm(waiting.id, step, at))) return undefined;
      return { recoveryCodes: await replaceRecoveryCodes(accountId) };
    },

    /**
     * Checks a second factor: a TOTP code (each accepted once: its time step is recorded atomically, and a code of
     * that step or an earlier one is refused after) or a recovery code (deleted as it is used). Returns how the
     * factor was proven, or undefined.
     */
    async verify(accountId: string, typed: string): Promise<FactorUse | undefined> {
      const code = readTotpCode(typed);
      if (code) {
        const at = now();
        for (const factor of await confirmed(accountId)) {
          if (factor.kind !== 'totp') continue;
          const step = totpStep(factor, code, at);
          if (step !== undefined && await store.useStep(factor.id, step, at)) return 'otp';
        }
        return undefined;
      }
      const recovery = normalizeRecoveryCode(typed);
      if (!recovery || !(await hasFactor(accountId))) return undefined;
      return (await store.consumeRecoveryCode(accountId, hashRecoveryCode(accountId, recovery))) ? 'recovery_code' : undefined;
    },

    /** A new set of ten recovery codes; the old set stops working in the same transaction. */
    async regenerateRecoveryCodes(accountId: string): Promise<string[]> {
      if (!(await hasFactor(accountId))) throw new SecondFactorError('set up an authenticator app first');
      return replaceRecoveryCodes(accountId);
    },

    /** Removes the authenticator app; with no factor left, the recovery codes go too. */
    async removeTotp(accountId: string): Promise<boolean> {
      const removed = await store.deleteByAccount(accountId, 'totp');
      await this.forgetRecoveryCodesWithoutFactor(accountId);
      return removed > 0;
    },

    /** After a factor was removed: with none left, the recovery codes go too (they would be a factor on their own). */
    async forgetRecoveryCodesWithoutFactor(accountId: string): Promise<void> {
      if (!(await hasFactor(accountId))) await store.deleteRecoveryCodes(accountId);
    },

    /** Removes every factor and recovery code of the account (the operator's reset), in `trx` when given. */
    async reset(accountId: string, trx?: Transaction): Promise<{ factorsRemoved: number; recoveryCodesRemoved: number }> {
      const factorsRemoved = await store.deleteByAccount(accountId, undefined, trx);
      return { factorsRemoved, recoveryCodesRemoved: await store.deleteRecoveryCodes(accountId, trx) };
    },
  };
}
