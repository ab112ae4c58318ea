import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isDatabaseUnavailable, openDatabase } from '../src/database.js';
import { openSqliteHandles, type SqliteHandle } from '../src/store/sqlite-handles.js';

// SQLite only: the prepared statements' own connections (sqlite-handles.ts) beside knex's pool, on one file.
let dir: string;
let file: string;
const setup = 'PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000;';

beforeAll(() => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-sqlite-statements-'));
  file = path.join(dir, 'handles.sqlite');
  fs.writeFileSync(file, '');
});
afterAll(() => fs.rmSync(dir, { recursive: true, force: true }));

/** A promise with its resolve function, for callers that hold a handle until the test lets them go. */
function gate() {
  let open!: () => void;
  const opened = new Promise<void>((resolve) => (open = resolve));
  return { open, opened };
}

const selectOne = (handle: SqliteHandle) => new Promise<unknown>((resolve, reject) => {
  handle.connection.all('select 1 as one', (error, rows) => (error ? reject(error) : resolve(rows)));
});

describe('the prepared statements beside knex', () => {
  it('see what knex wrote, and knex sees what they wrote: two pools on one file', async () => {
    const database = openDatabase(`sqlite:${path.join(dir, 'both.sqlite')}`);
    try {
      await database.knex.schema.createTable('notes', (table) => {
        table.text('id').primary();
        table.integer('version').notNullable();
      });
      await database.knex('notes').insert({ id: 'a', version: 1 });
      expect(await database.statements.rows('select version from notes where id = ?', ['a'])).toEqual([{ version: 1 }]);

      expect(await database.statements.run('update notes set version = ? where id = ?', [2, 'a'])).toBe(1);
      expect(await database.knex('notes').where({ id: 'a' }).first('version')).toEqual({ version: 2 });

      // Again on the statement prepared by now, several at once (several connections of each pool).
      await Promise.all([2, 3, 4, 5].map((version) => database.knex('notes').insert({ id: `k${version}`, version })));
      const read = await Promise.all(['k2', 'k3', 'k4', 'k5'].map((id) => database.statements.rows('select version from notes where id = ?', [id])));
      expect(read).toEqual([[{ version: 2 }], [{ version: 3 }], [{ version: 4 }], [{ version: 5 }]]);
      await Promise.all(['k2', 'k3'].map((id) => database.statements.run('delete from notes where id = ?', [id])));
      expect(await database.knex('notes').orderBy('id').pluck('id')).toEqual(['a', 'k4', 'k5']);

      // Foreign keys hold on the statements' connections too.
      await database.knex.schema.createTable('pins', (table) => {
        table.text('note_id').references('id').inTable('notes');
      });
      await expect(database.statements.run('insert into pins (note_id) values (?)', ['nowhere'])).rejects.toThrow(/FOREIGN KEY constraint failed/);
    } finally {
      await database.destroy();
    }
  });

  it('are refused an in-memory database, which each connection would see empty', () => {
    expect(() => openDatabase('sqlite::memory:')).toThrow(/SQLite needs a file \(sqlite:PATH\), got "sqlite::memory:"/);
    expect(() => openDatabase('sqlite:')).toThrow(/SQLite needs a file/);
  });
});

describe('the pool of SQLite handles', () => {
  it('never lends one handle to two callers at once, opens at most `max`, and serves waiting callers in order', async () => {
    const handles = openSqliteHandles({ filename: file, max: 2, setup, timeoutMs: 5000 });
    const inUse = new Set<SqliteHandle>();
    const seen = new Set<SqliteHandle>();
    const started: number[] = [];
    let mostAtOnce = 0;
    const twoRunning = gate();
    const held = gate();
    const callers = Promise.all(Array.from({ length: 12 }, (_, index) => handles.withHandle(async (handle) => {
      expect(inUse.has(handle)).toBe(false);
      inUse.add(handle);
      seen.add(handle);
      started.push(index);
      mostAtOnce = Math.max(mostAtOnce, inUse.size);
      if (inUse.size === 2) twoRunning.open();
      await held.opened;
      await selectOne(handle);
      inUse.delete(handle);
    })));
    await twoRunning.opened;
    // The first two open a connection each, in parallel: which opens first is up to SQLite. Waiters go in order.
    expect([...started].sort((a, b) => a - b)).toEqual([0, 1]);
    held.open();
    await callers;
    expect(seen.size).toBe(2);
    expect(mostAtOnce).toBe(2);
    expect(started.slice(2)).toEqual([...Array(12).keys()].slice(2));
    await handles.close();
  });

  it('gives a caller that waited too long for a handle SQLITE_BUSY (503), and lends the handle again once free', async () => {
    const handles = openSqliteHandles({ filename: file, max: 1, setup, timeoutMs: 50 });
    const held = gate();
    const holding = handles.withHandle(() => held.opened);
    const late = handles.withHandle(selectOne);
    await expect(late).rejects.toMatchObject({ code: 'SQLITE_BUSY' });
    expect(isDatabaseUnavailable(await late.catch((error: unknown) => error))).toBe(true);
    held.open();
    await holding;
    expect(await handles.withHandle(selectOne)).toEqual([{ one: 1 }]);
    await handles.close();
  });

  it('closes once the callers running and waiting are done, finalizing their statements first, and refuses new ones', async () => {
    const handles = openSqliteHandles({ filename: file, max: 2, setup, timeoutMs: 5000 });
    const held = gate();
    const finished: number[] = [];
    const callers = Array.from({ length: 4 }, (_, index) => handles.withHandle(async (handle) => {
      // A statement left open on the connection: SQLite refuses to close it (SQLITE_BUSY) unless it is finalized.
      handle.statements.set(`select ${index}`, handle.connection.prepare(`select ${index}`));
      await held.opened;
      finished.push(index);
    }));
    let isClosed = false;
    const closing = handles.close().then(() => (isClosed = true));
    await expect(handles.withHandle(selectOne)).rejects.toThrow('The SQLite database is closed');
    await new Promise((resolve) => setImmediate(resolve));
    expect(isClosed).toBe(false);
    held.open();
    await Promise.all(callers);
    await closing;
    expect(finished.sort()).toEqual([0, 1, 2, 3]);
    expect(isClosed).toBe(true);
  });

  it('fails every caller at once when the file cannot be opened, rather than leaving some to wait', async () => {
    const handles = openSqliteHandles({ filename: path.join(dir, 'no-such-dir', 'x.sqlite'), max: 1, setup, timeoutMs: 20_000 });
    const outcomes = await Promise.allSettled(Array.from({ length: 3 }, () => handles.withHandle(selectOne)));
    for (const outcome of outcomes) {
      expect(outcome.status).toBe('rejected');
      const { reason } = outcome as PromiseRejectedResult;
      expect(reason).toMatchObject({ code: 'SQLITE_CANTOPEN' });
      expect(isDatabaseUnavailable(reason)).toBe(true);
    }
    await handles.close();
  });
});
