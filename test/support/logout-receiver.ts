import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';

export const logoutEvent = 'http://schemas.openid.net/event/backchannel-logout';

/**
 * A relying party's back-channel logout endpoint on 127.0.0.1: records every logout_token POSTed to it and answers
 * with `status` (200 unless a test changes it).
 */
export async function startLogoutReceiver() {
  const tokens: string[] = [];
  let requests = 0;
  const receiver = {
    status: 200,
    tokens,
    get requests() {
      return requests;
    },
    url: '',
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
  const server = http.createServer((req, res) => {
    requests += 1;
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => { body += chunk; });
    req.on('end', () => {
      const token = new URLSearchParams(body).get('logout_token');
      if (req.method === 'POST' && token) tokens.push(token);
      res.writeHead(receiver.status, { 'cache-control': 'no-store' }).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  receiver.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/backchannel-logout`;
  return receiver;
}

/**
 * Verifies a logout token as Back-Channel Logout 1.0 §2.6 asks a relying party to: signature against the issuer's
 * JWKS, typ logout+jwt, iss, aud = client_id, iat, jti, the back-channel logout event, and no nonce.
 */
export async function verifyLogoutToken(token: string, issuer: string, clientId: string): Promise<JWTPayload> {
  const jwks = createRemoteJWKSet(new URL(`${issuer}/.well-known/jwks.json`));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer, audience: clientId, typ: 'logout+jwt', requiredClaims: ['iat', 'jti', 'events'] });
  if (protectedHeader.alg !== 'RS256') throw new Error(`unexpected alg ${protectedHeader.alg}`);
  const events = payload.events as Record<string, unknown> | undefined;
  if (typeof events?.[logoutEvent] !== 'object') throw new Error('logout token without the back-channel logout event');
  if ('nonce' in payload) throw new Error('logout token carries a nonce');
  if (!payload.sub && !payload.sid) throw new Error('logout token without sub and sid');
  return payload;
}
