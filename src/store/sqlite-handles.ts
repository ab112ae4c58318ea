import sqlite3 from 'sqlite3';

/** One node-sqlite3 connection of our own and the statements prepared on it so far, by SQL text. */
export type SqliteHandle = { connection: sqlite3.Database; statements: Map<string, sqlite3.Statement> };

export type SqliteHandleOptions = {
  filename: string;
  /** The most handles open at once. */
  max: number;
  /** SQL run on each handle as it opens: the PRAGMAs knex's connections get. */
  setup: string;
  /** How long a caller waits for a free handle before it gets SQLITE_BUSY (the database is unavailable: 503). */
  timeoutMs: number;
};

export type SqliteHandles = {
  /** Runs `use` on a handle that nobody else holds until `use` settles. */
  withHandle<T>(use: (handle: SqliteHandle) => Promise<T>): Promise<T>;
  /**
   * Refuses callers from now on, lets those running or already waiting finish, then finalizes every statement and
   * closes every handle (SQLite will not close a connection with open statements).
   */
  close(): Promise<void>;
};

type Waiter = { take(handle: SqliteHandle): void; fail(error: unknown): void };

function busy(timeoutMs: number): Error {
  return Object.assign(new Error(`SQLITE_BUSY: no SQLite connection came free within ${timeoutMs} ms`), { code: 'SQLITE_BUSY' });
}

function openHandle({ filename, setup }: SqliteHandleOptions): Promise<SqliteHandle> {
  return new Promise((resolve, reject) => {
    // The file exists already (openDatabase creates it with its mode): never create another one here.
    const connection = new sqlite3.Database(filename, sqlite3.OPEN_READWRITE, (openError) => {
      if (openError) return reject(openError);
      connection.exec(setup, (setupError) => {
        if (setupError) connection.close(() => reject(setupError));
        else resolve({ connection, statements: new Map() });
      });
    });
  });
}

async function closeHandle({ connection, statements }: SqliteHandle): Promise<void> {
  await Promise.all([...statements.values()].map((statement) => new Promise<void>((resolve) => statement.finalize(() => resolve()))));
  statements.clear();
  await new Promise<void>((resolve, reject) => connection.close((error) => (error ? reject(error) : resolve())));
}

/**
 * A pool of node-sqlite3 connections beside knex's, for the statements on every request's path: a prepared
 * statement belongs to one connection, so each caller holds a handle of its own while its statement runs. Handles
 * open when first needed, up to `max`, and stay open until close(). Callers beyond `max` wait in order; a released
 * handle goes straight to the first of them. Every decision is made synchronously, so no two callers can take the
 * same handle.
 */
export function openSqliteHandles(options: SqliteHandleOptions): SqliteHandles {
  const idle: SqliteHandle[] = [];
  const waiting: Waiter[] = [];
  let opened = 0; // open or opening
  let isClosing = false;
  let whenAllIdle: (() => void) | undefined;
  let closed: Promise<void> | undefined;

  function open(): Promise<SqliteHandle> {
    opened += 1;
    return openHandle(options).catch((error) => {
      opened -= 1;
      // The first waiter gets a try of its own rather than waiting for a handle that did not open.
      const next = waiting.shift();
      if (next) open().then(next.take, next.fail);
      else if (idle.length === opened) whenAllIdle?.();
      throw error;
    });
  }

  function wait(): Promise<SqliteHandle> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        waiting.splice(waiting.indexOf(waiter), 1);
        reject(busy(options.timeoutMs));
      }, options.timeoutMs);
      const waiter: Waiter = {
        take: (handle) => (clearTimeout(timer), resolve(handle)),
        fail: (error) => (clearTimeout(timer), reject(error)),
      };
      waiting.push(waiter);
    });
  }

  function acquire(): Promise<SqliteHandle> {
    if (isClosing) return Promise.reject(new Error('The SQLite database is closed'));
    const handle = idle.pop();
    if (handle) return Promise.resolve(handle);
    return opened < options.max ? open() : wait();
  }

  function release(handle: SqliteHandle): void {
    const next = waiting.shift();
    if (next) return next.take(handle);
    idle.push(handle);
    if (idle.length === opened) whenAllIdle?.();
  }

  async function closeAll(): Promise<void> {
    isClosing = true;
    if (idle.length < opened) await new Promise<void>((resolve) => (whenAllIdle = resolve));
    await Promise.all(idle.splice(0).map(closeHandle));
    opened = 0;
  }

  return {
    async withHandle(use) {
      const handle = await acquire();
      try {
        return await use(handle);
      } finally {
        release(handle);
      }
    },
    close: () => (closed ??= closeAll()),
  };
}
