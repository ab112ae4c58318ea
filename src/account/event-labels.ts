/** How the account page names each security event it shows (overview.ts's securityEventTypes). */
export const eventLabels: Record<string, string> = {
  'sign_in.success': 'Signed in',
  'sign_in.failure': 'Wrong password entered',
  'sign_in.locked': 'Sign-in locked after failed attempts',
  'user.password_changed': 'Password changed',
  'user.email_changed': 'Email address changed',
  'email.change_requested': 'Email change requested',
  'session.ended': 'Session ended',
  'app.revoked': 'App access revoked',
  'user.signed_out': 'Signed out everywhere by an administrator',
  logout: 'Signed out',
};
