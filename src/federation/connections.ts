import { normalizeEmail } from '../accounts/email.js';
import type { ConnectionStore, LinkByEmail, StoredConnection } from '../store/connections.js';
import { DuplicateConnectionError } from '../store/connections.js';
import type { FederatedIdentity, FederatedIdentityStore } from '../store/federated-identities.js';
import type { UserStore } from '../store/users.js';
import { UserFacingError } from '../user-facing-error.js';
import type { ConnectionSecretBox } from './secret-box.js';
import type { Upstreams } from './upstream.js';

export class ConnectionError extends UserFacingError {
  constructor(message: string) {
    super(message);
    this.name = 'ConnectionError';
  }
}

/** What `update` may change; absent fields stay. `clientSecret: null` removes the secret (a public registration). */
export type ConnectionChanges = Partial<Omit<NewConnection, 'id' | 'issuer' | 'clientId' | 'clientSecret'>> & { clientSecret?: string | null };

export type NewConnection = {
  id: string;
  name: string;
  issuer: string;
  clientId: string;
  clientSecret?: string;
  scopes?: string[];
  createUsers?: boolean;
  linkByEmail?: LinkByEmail;
  emailDomains?: string[];
  useUserinfo?: boolean;
};

/** A connection as shown to operators: never its secret, only whether it has one. */
export type PublicConnection = Omit<StoredConnection, 'clientSecretSealed'> & { hasClientSecret: boolean };

const connectionId = /^[a-z0-9](?:[a-z0-9-]{0,62})$/;
const domainShape = /^(?=.{1,253}$)[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/;

export const defaultScopes = ['openid', 'email', 'profile'];

export const toPublic = ({ clientSecretSealed, ...connection }: StoredConnection): PublicConnection =>
  ({ ...connection, hasClientSecret: clientSecretSealed !== null });

/** Where the upstream sends the person back: registered at the upstream as the redirect URI. */
export const callbackUri = (issuer: string, id: string) => `${issuer}/connections/${id}/callback`;

function checkDomains(domains: string[]): string[] {
  return domains.map((domain) => {
    const normalized = domain.trim().toLowerCase();
    if (!domainShape.test(normalized)) throw new ConnectionError(`"${domain}" is not a domain name (like example.com)`);
    return normalized;
  });
}

/**
 * The upstream connections (docs/federation.md): created only after the issuer's discovery document was read, with
 * the client secret sealed (secret-box.ts). Servers read them from the database on every use, so a change made by
 * the CLI is seen at once without a restart.
 */
export function createConnections(deps: {
  connections: ConnectionStore; identities: FederatedIdentityStore; users: UserStore; secretBox: ConnectionSecretBox; upstreams: Upstreams;
  /** ISSUER (null: a server on PORT=0 that learns it when it listens; the CLI then prints the placeholder). */
  issuer: string | null;
  now?: () => number;
}) {
  const { connections, identities, users, secretBox, upstreams } = deps;
  const now = deps.now ?? Date.now;

  return {
    /** The redirect URI to register at the upstream for connection `id`. */
    callbackUri: (id: string) => callbackUri(deps.issuer ?? '$ISSUER', id),

    async create(input: NewConnection): Promise<PublicConnection> {
      if (!connectionId.test(input.id)) throw new ConnectionError(`connection id "${input.id}" must be 1 to 63 lower-case letters, digits or dashes`);
      const name = input.name.trim();
      if (!name || name.length > 200) throw new ConnectionError('--name must be 1 to 200 characters');
      if (!input.clientId) throw new ConnectionError('--client-id is required');
      const scopes = input.scopes ?? defaultScopes;
      if (!scopes.includes('openid')) throw new ConnectionError('--scopes must include openid');
      if (input.clientSecret === '') throw new ConnectionError('the client secret is empty');
      const issuer = input.issuer.replace(/\/$/, '');
      if (await connections.find(input.id)) throw new ConnectionError(`a connection with id ${input.id} already exists`);
      // Fails with a clear message when the issuer is unreachable or not an OpenID Connect provider.
      await upstreams.discover(issuer, input.clientId, input.clientSecret);
      const timestamp = now();
      const stored: StoredConnection = {
        id: input.id,
        name,
        issuer,
        clientId: input.clientId,
        clientSecretSealed: input.clientSecret === undefined ? null : secretBox.seal(input.id, input.clientSecret),
        scopes,
        createUsers: input.createUsers ?? true,
        linkByEmail: input.linkByEmail ?? 'verified',
        emailDomains: checkDomains(input.emailDomains ?? []),
        useUserinfo: input.useUserinfo ?? true,
        createdAt: timestamp,
        updatedAt: timestamp,
      };
      try {
        await connections.insert(stored);
      } catch (error) {
        if (error instanceof DuplicateConnectionError) throw new ConnectionError(error.message);
        throw error;
      }
      return toPublic(stored);
    },

    /** Changes a connection; running servers use the change from their next sign-in on. */
    async update(id: string, changes: ConnectionChanges): Promise<PublicConnection> {
      const current = await connections.find(id);
      if (!current) throw new ConnectionError(`no connection with id ${id}`);
      const name = changes.name?.trim();
      if (name !== undefined && (!name || name.length > 200)) throw new ConnectionError('--name must be 1 to 200 characters');
      if (changes.scopes && !changes.scopes.includes('openid')) throw new ConnectionError('--scopes must include openid');
      if (changes.clientSecret === '') throw new ConnectionError('the client secret is empty');
      const secret = changes.clientSecret;
      const updated: StoredConnection = {
        ...current,
        name: name ?? current.name,
        clientSecretSealed: secret === undefined ? current.clientSecretSealed : secret === null ? null : secretBox.seal(id, secret),
        scopes: changes.scopes ?? current.scopes,
        createUsers: changes.createUsers ?? current.createUsers,
        linkByEmail: changes.linkByEmail ?? current.linkByEmail,
        emailDomains: changes.emailDomains ? checkDomains(changes.emailDomains) : current.emailDomains,
        useUserinfo: changes.useUserinfo ?? current.useUserinfo,
        updatedAt: Math.max(now(), current.updatedAt + 1),
      };
      if (!(await connections.update(updated))) throw new ConnectionError(`no connection with id ${id}`);
      return toPublic(updated);
    },

    find(id: string): Promise<StoredConnection | undefined> {
      return connections.find(id);
    },

    async list(): Promise<PublicConnection[]> {
      return (await connections.list()).map(toPublic);
    },

    /** Deletes the connection and its links; the users stay (one without a password can then not sign in). */
    async delete(id: string): Promise<void> {
      if (!(await connections.delete(id))) throw new ConnectionError(`no connection with id ${id}`);
    },

    /** Removes the link between a local user and their identity at a connection. */
    async unlink(email: string, connection: string): Promise<{ userId: string; email: string }> {
      const user = await users.findByEmail(normalizeEmail(email));
      if (!user) throw new ConnectionError(`no user with email ${normalizeEmail(email)}`);
      if (!(await identities.delete(connection, user.id))) throw new ConnectionError(`${user.email} is not linked to connection ${connection}`);
      return { userId: user.id, email: user.email };
    },

    /** Every link, for `users list`. */
    links(): Promise<FederatedIdentity[]> {
      return identities.list();
    },
  };
}

export type Connections = ReturnType<typeof createConnections>;
