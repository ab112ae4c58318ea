import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/database.js';
import { batchedLookup } from '../src/store/batched-lookup.js';
import type { Binding, PreparedStatements } from '../src/store/prepared-statements.js';

// SQLite only: PostgreSQL runs each lookup on its own (postgresStatements in prepared-statements.ts).
let dir: string;
let database: Database;
let statements: PreparedStatements;
const byName = 'select keys.key as key_index, colours.* from json_each(?) as keys join colours on colours.name = keys.value ->> 0';

beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'latchkey-batched-'));
  database = openDatabase(`sqlite:${path.join(dir, 'colours.sqlite')}`);
  await database.knex.raw('create table colours (name text primary key, hex text not null)');
  await database.knex('colours').insert([{ name: 'red', hex: '#f00' }, { name: 'green', hex: '#0f0' }, { name: 'blue', hex: '#00f' }]);
  statements = database.statements;
});
afterAll(async () => {
  await database.destroy();
  fs.rmSync(dir, { recursive: true, force: true });
});

/** The statements a lookup runs, by their bound JSON. */
function counted() {
  const bound: string[] = [];
  const selectRows = <Row>(sql: string, bindings: [string]) => {
    bound.push(bindings[0]);
    return statements.rows<Row>(sql, bindings as Binding[]);
  };
  return { bound, selectRows };
}

describe('batched lookups', () => {
  it('look up the keys asked for in one turn of the event loop with one statement, each getting its own row', async () => {
    const { bound, selectRows } = counted();
    const colour = batchedLookup<{ name: string; hex: string }>(selectRows, byName);
    const found = await Promise.all(['blue', 'pink', 'red', 'blue'].map((name) => colour([name])));
    expect(found).toEqual([{ name: 'blue', hex: '#00f' }, undefined, { name: 'red', hex: '#f00' }, { name: 'blue', hex: '#00f' }]);
    expect(bound).toEqual(['[["blue"],["pink"],["red"],["blue"]]']);

    // A later turn gets a statement of its own, which reads the table as it is by then.
    await database.knex('colours').where({ name: 'red' }).update({ hex: '#e00' });
    expect(await colour(['red'])).toEqual({ name: 'red', hex: '#e00' });
    expect(bound).toHaveLength(2);
  });

  it('answer the other keys of a batch when one key cannot be stored or matched (a lone surrogate from a hostile request)', async () => {
    const { bound, selectRows } = counted();
    const colour = batchedLookup<{ name: string; hex: string }>(selectRows, byName);
    const found = await Promise.all(['\ud800', 'green', 'a\udfffb', '\u2028'].map((name) => colour([name])));
    expect(found).toEqual([undefined, { name: 'green', hex: '#0f0' }, undefined, undefined]);
    expect(bound).toHaveLength(1);
  });

  it('split a burst into statements of at most 200 keys', async () => {
    const { bound, selectRows } = counted();
    const colour = batchedLookup<{ name: string }>(selectRows, byName);
    const found = await Promise.all(Array.from({ length: 450 }, (_, index) => colour([index % 2 ? 'green' : 'grey'])));
    expect(found.filter(Boolean)).toHaveLength(225);
    expect(bound.map((json) => JSON.parse(json).length)).toEqual([200, 200, 50]);
  });

  it('fail every lookup of a batch whose statement fails, and work again afterwards', async () => {
    const { selectRows } = counted();
    const broken = batchedLookup(selectRows, byName.replace('join colours', 'join no_such_table'));
    const outcomes = await Promise.allSettled([broken(['red']), broken(['green'])]);
    expect(outcomes.map((outcome) => outcome.status)).toEqual(['rejected', 'rejected']);
    expect(String((outcomes[0] as PromiseRejectedResult).reason)).toMatch(/no such table/);
    const colour = batchedLookup(selectRows, byName);
    expect(await colour(['green'])).toEqual({ name: 'green', hex: '#0f0' });
  });
});
