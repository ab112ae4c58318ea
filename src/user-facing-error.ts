/**
 * An error the person running Latchkey can fix (a mistyped option, an invalid setting, an email already taken):
 * its message is the whole answer and is shown as it is, one line, with no stack trace. Anything else that escapes
 * is a bug or an outage. Each layer throws its own subclass; a store's errors are translated into one by the layer
 * above it (accounts, registry), so the store stays free of what the CLI shows.
 */
export class UserFacingError extends Error {}
