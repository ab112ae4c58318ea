import type { Context } from 'koa';

/** oidc-provider's interaction uids (nanoid): all a return address is made of. */
const uidShape = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * Where a person who left an app's sign-in (to reset their password, sign up or verify their address) goes back
 * to: the sign-in they started, remembered in this browser only. No link Latchkey mails carries a redirect target,
 * and the only place this can lead is Latchkey's own /interaction/<uid> page.
 */
export function createReturnToSignIn(options: { isHttps: boolean; ttlSeconds: number }) {
  const cookieName = options.isHttps ? '__Host-latchkey-return' : 'latchkey-return';
  const cookieOptions = { httpOnly: true, sameSite: 'lax' as const, secure: options.isHttps, path: '/', overwrite: true };
  return {
    /** Remembers the sign-in `uid` (from the link on the login page) if it looks like one. */
    remember(ctx: Context, uid: unknown): void {
      if (typeof uid === 'string' && uidShape.test(uid)) ctx.cookies.set(cookieName, uid, { ...cookieOptions, maxAge: options.ttlSeconds * 1000 });
    },

    /** The path of the remembered sign-in, forgetting it; undefined when there is none. */
    take(ctx: Context): string | undefined {
      const uid = ctx.cookies.get(cookieName);
      if (!uid) return undefined;
      ctx.cookies.set(cookieName, null, cookieOptions);
      return uidShape.test(uid) ? `/interaction/${uid}` : undefined;
    },
  };
}

export type ReturnToSignIn = ReturnType<typeof createReturnToSignIn>;
