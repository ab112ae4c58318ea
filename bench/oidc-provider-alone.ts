import Provider from 'oidc-provider';

// The ceiling for userinfo and introspection: oidc-provider with its own in-memory adapter and none of Latchkey's
// middleware, answering for one access token it issued to itself. Prints `port token` when it is ready.
const clientId = 'bench';
const provider = new Provider('http://127.0.0.1', {
  clients: [{ client_id: clientId, client_secret: 'bench secret', redirect_uris: ['https://rp.bench.invalid/cb'] }],
  claims: { email: ['email', 'email_verified'], profile: ['given_name', 'family_name'] },
  findAccount: async (_ctx, accountId) => ({
    accountId,
    claims: async () => ({ sub: accountId, email: 'bench@example.com', email_verified: true, given_name: 'Bench', family_name: 'Mark' }),
  }),
  features: { devInteractions: { enabled: false }, introspection: { enabled: true, allowedPolicy: async () => true } },
  ttl: { AccessToken: 3600, Grant: 3600 },
});
const accountId = 'bench-account';
const grant = new provider.Grant({ accountId, clientId });
grant.addOIDCScope('openid email profile');
const grantId = await grant.save();
// Latchkey's access tokens end with the session, so userinfo and introspection look the session up too.
const session = new provider.Session();
session.accountId = accountId;
session.loginTs = Math.floor(Date.now() / 1000);
session.authorizations = { [clientId]: { sid: 'bench-sid', grantId } };
// Session.save takes the lifetime in seconds (its published type leaves the argument out).
await (session as unknown as { save(ttl: number): Promise<string> }).save(3600);
const client = await provider.Client.find(clientId);
if (!client) throw new Error('the bench client is missing');
const accessToken = new provider.AccessToken({
  accountId, grantId, client, gty: 'authorization_code', scope: 'openid email profile',
  sessionUid: session.uid, expiresWithSession: true,
});
const token = await accessToken.save();
const server = provider.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`${address.port} ${token}\n`);
});
