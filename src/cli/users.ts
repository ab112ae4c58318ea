import type { Services } from '../services.js';
import type { User } from '../store/users.js';
import { required, table, type Output, type Values } from './output.js';


const publicUser = (user: User) => ({
  id: user.id,
  email: user.email,
  emailVerified: user.emailVerified,
  givenName: user.givenName,
  familyName: user.familyName,
  isActive: user.isActive,
  isAdmin: user.isAdmin,
  createdAt: new Date(user.createdAt).toISOString(),
});

export const userCommands = {
  create: {
    options: {
      email: { type: 'string' }, password: { type: 'string' }, 'given-name': { type: 'string' },
      'family-name': { type: 'string' }, admin: { type: 'boolean' }, 'email-verified': { type: 'boolean' },
    },
    async run(values: Values, { accounts }: Services, out: Output) {
      const user = await accounts.create({
        email: required(values, 'email'),
        password: required(values, 'password'),
        givenName: values['given-name'] as string | undefined,
        familyName: values['family-name'] as string | undefined,
        isAdmin: values.admin === true,
        emailVerified: values['email-verified'] === true,
      });
      out.result(publicUser(user), [`created user ${user.email} (sub ${user.id})`]);
    },
  },
  list: {
    options: {},
    async run(_values: Values, { accounts }: Services, out: Output) {
      const users = await accounts.list();
      out.result(users.map(publicUser), table(
        ['EMAIL', 'SUB', 'ACTIVE', 'ADMIN', 'NAME'],
        users.map((u) => [u.email, u.id, u.isActive ? 'yes' : 'no', u.isAdmin ? 'yes' : 'no', [u.givenName, u.familyName].filter(Boolean).join(' ')]),
      ));
    },
  },
  disable: {
    options: { email: { type: 'string' } },
    async run(values: Values, { accounts }: Services, out: Output) {
      const user = await accounts.disable(required(values, 'email'));
      out.result(publicUser(user), [`disabled ${user.email}; their sessions and tokens are revoked`]);
    },
  },
  enable: {
    options: { email: { type: 'string' } },
    async run(values: Values, { accounts }: Services, out: Output) {
      const user = await accounts.enable(required(values, 'email'));
      out.result(publicUser(user), [`enabled ${user.email}`]);
    },
  },
  'set-password': {
    options: { email: { type: 'string' }, password: { type: 'string' } },
    async run(values: Values, { accounts }: Services, out: Output) {
      const user = await accounts.setPassword(required(values, 'email'), required(values, 'password'));
      out.result(publicUser(user), [`password changed for ${user.email}; their sessions and tokens are revoked`]);
    },
  },
} as const;
