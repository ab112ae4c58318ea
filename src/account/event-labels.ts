/** The security events the account page names (overview.ts's securityEventTypes), each as `account.event.<type>` in locales/. */
const labelled = new Set([
  'sign_in.success', 'sign_in.failure', 'sign_in.locked', 'user.password_changed', 'user.email_changed', 'email.change_requested',
  'session.ended', 'app.revoked', 'user.signed_out', 'logout',
]);

/** The catalogue key naming an event, or the event's type itself for one without a name. */
export const eventLabel = (type: string): string => (labelled.has(type) ? `account.event.${type}` : type);
