import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK } from 'jose';

export type SigningKeyPair = { kid: string; privateKey: CryptoKey; publicJwk: JWK };

export async function createSigningKey(kid: string): Promise<SigningKeyPair> {
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  return { kid, privateKey, publicJwk: { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' } };
}

/** What the token endpoint does for one code: the claims of the ID token it signs, the key, or a failure. */
export type TokenBehaviour = {
  /** Changes the claims (iss, aud, sub, nonce, exp …) of the ID token before it is signed. */
  claims?: (claims: Record<string, unknown>) => Record<string, unknown>;
  /** Signs with this key instead of a published one (a forged token). */
  signWith?: SigningKeyPair;
  status?: number;
  /** Never answers (the connection stays open until the server closes). */
  hang?: boolean;
};

type Authorization = { state: string; nonce: string; redirectUri: string; clientId: string };

/**
 * A small but real OpenID Connect provider for the attacks a well-behaved one never makes: it serves a discovery
 * document and a JWKS, answers /authorize at once (no login) by redirecting back with a code, and its token endpoint
 * returns an ID token signed with jose — with the claims, key or failure the test asks for. Not a mock of
 * openid-client: Latchkey talks to it over HTTP like to any upstream.
 */
export async function startUpstreamProvider(options: { subject?: string; email?: string; emailVerified?: boolean; sendIss?: boolean } = {}) {
  let keys = [await createSigningKey('key-1')];
  const codes = new Map<string, Authorization>();
  const hanging = new Set<http.ServerResponse>();
  let behaviour: TokenBehaviour = {};
  let discoveryStatus = 200;
  let issuer = '';
  let jwksRequests = 0;

  const json = (res: http.ServerResponse, status: number, body: unknown) => {
    res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' }).end(JSON.stringify(body));
  };

  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url ?? '/', issuer);
    if (url.pathname === '/.well-known/openid-configuration') {
      if (discoveryStatus !== 200) return json(res, discoveryStatus, { error: 'server_error' });
      return json(res, 200, {
        issuer,
        authorization_endpoint: `${issuer}/authorize`,
        token_endpoint: `${issuer}/token`,
        jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'],
        subject_types_supported: ['public'],
        id_token_signing_alg_values_supported: ['RS256'],
        code_challenge_methods_supported: ['S256'],
        token_endpoint_auth_methods_supported: ['client_secret_basic', 'none'],
        authorization_response_iss_parameter_supported: options.sendIss ?? true,
      });
    }
    if (url.pathname === '/jwks') {
      jwksRequests += 1;
      return json(res, 200, { keys: keys.map((key) => key.publicJwk) });
    }
    if (url.pathname === '/authorize') {
      const code = randomBytes(16).toString('base64url');
      const params = url.searchParams;
      codes.set(code, { state: params.get('state')!, nonce: params.get('nonce')!, redirectUri: params.get('redirect_uri')!, clientId: params.get('client_id')! });
      const back = new URL(params.get('redirect_uri')!);
      back.searchParams.set('code', code);
      back.searchParams.set('state', params.get('state')!);
      if (options.sendIss ?? true) back.searchParams.set('iss', issuer);
      res.writeHead(302, { location: back.href }).end();
      return;
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      const authorization = codes.get(form.get('code') ?? '');
      codes.delete(form.get('code') ?? '');
      if (behaviour.hang) {
        hanging.add(res);
        return;
      }
      if (behaviour.status) return json(res, behaviour.status, { error: 'server_error' });
      if (!authorization) return json(res, 400, { error: 'invalid_grant' });
      const now = Math.floor(Date.now() / 1000);
      const base: Record<string, unknown> = {
        iss: issuer, aud: authorization.clientId, sub: options.subject ?? 'upstream-user-1', nonce: authorization.nonce,
        iat: now, exp: now + 300, email: options.email ?? 'rogue.user@example.com', email_verified: options.emailVerified ?? true,
      };
      const claims = behaviour.claims ? behaviour.claims(base) : base;
      const key = behaviour.signWith ?? keys[keys.length - 1]!;
      const idToken = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: key.kid }).sign(key.privateKey);
      return json(res, 200, { access_token: randomBytes(16).toString('base64url'), token_type: 'Bearer', expires_in: 300, id_token: idToken });
    }
    json(res, 404, { error: 'not_found' });
  });
  await new Promise<void>((resolve) => server.listen(0, 'localhost', resolve));
  issuer = `http://localhost:${(server.address() as AddressInfo).port}`;

  return {
    get issuer() {
      return issuer;
    },
    /** How many times the JWKS was fetched. */
    get jwksRequests() {
      return jwksRequests;
    },
    /** The behaviour of the token endpoint from now on. */
    behave(next: TokenBehaviour) {
      behaviour = next;
    },
    failDiscovery(status: number) {
      discoveryStatus = status;
    },
    /** Publishes a new key and signs with it from now on (the old one stays published unless `dropOld`). */
    async rotateKey(kid: string, dropOld = false) {
      const key = await createSigningKey(kid);
      keys = dropOld ? [key] : [...keys, key];
    },
    async close() {
      for (const res of hanging) res.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

export type UpstreamProvider = Awaited<ReturnType<typeof startUpstreamProvider>>;
