import type { Logger } from 'pino';

export type BackgroundWork = ReturnType<typeof createBackgroundWork>;

/**
 * Work a request starts and does not wait for: what happens after "If an account exists for that address…"
 * (looking the address up, hashing, queuing a mail) must not change how long the answer takes. A failure is
 * logged; `settled()` lets the services finish it before the database closes.
 */
export function createBackgroundWork(logger: Logger) {
  const inFlight = new Set<Promise<void>>();
  return {
    run(what: string, work: () => Promise<void>): void {
      // Started on the next turn of the event loop, after the answer has been handed to the socket: the work
      // neither delays it nor competes with it.
      const task: Promise<void> = new Promise<void>((resolve) => setImmediate(resolve)).then(work)
        .catch((error: unknown) => logger.error({ event: 'background.failed', what, err: (error as Error).message }, `${what} failed`))
        .finally(() => inFlight.delete(task));
      inFlight.add(task);
    },
    async settled(): Promise<void> {
      while (inFlight.size > 0) await Promise.all([...inFlight]);
    },
  };
}
