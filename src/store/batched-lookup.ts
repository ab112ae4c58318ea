/** The values of one key, in the order the lookup's SQL reads them (`keys.value ->> 0`, `->> 1`, …). */
export type LookupKey = (string | number)[];

/** Finds at most one row per key. */
export type Lookup<Row> = (key: LookupKey) => Promise<Row | undefined>;

type SelectRows = <Row>(sql: string, bindings: [string]) => Promise<Row[]>;

/** Bounds the JSON bound to one statement when a burst of requests asks for many keys in one turn. */
const maxKeysPerStatement = 200;

/**
 * Looks up together the keys asked for during one turn of the event loop: one statement runs for all of them when
 * the turn ends (setImmediate). On SQLite every statement is a trip through libuv's thread pool that costs more than
 * the rows it reads (about 60 µs of CPU against a few µs per extra row), so concurrent requests share a trip instead
 * of taking one each. Nothing is cached: every key is read by a statement that starts after it was asked for.
 *
 * `sql` has one placeholder, bound to the keys as a JSON array (`from json_each(?) as keys`), and selects
 * `keys.key as key_index`, the key's position in that array, with the row it found.
 */
export function batchedLookup<Row>(selectRows: SelectRows, sql: string): Lookup<Row> {
  type Waiting = { key: LookupKey; resolve: (row: Row | undefined) => void; reject: (error: unknown) => void };
  let waiting: Waiting[] = [];

  async function lookUp(batch: Waiting[]): Promise<void> {
    try {
      const rows = await selectRows<Row & { key_index: number }>(sql, [JSON.stringify(batch.map((entry) => entry.key))]);
      const found = new Map<number, Row>();
      for (const { key_index: index, ...row } of rows) if (!found.has(index)) found.set(index, row as Row);
      batch.forEach((entry, index) => entry.resolve(found.get(index)));
    } catch (error) {
      for (const entry of batch) entry.reject(error);
    }
  }

  function flush(): void {
    const batch = waiting;
    waiting = [];
    for (let start = 0; start < batch.length; start += maxKeysPerStatement) {
      void lookUp(batch.slice(start, start + maxKeysPerStatement));
    }
  }

  return (key) =>
    new Promise((resolve, reject) => {
      if (waiting.length === 0) setImmediate(flush);
      waiting.push({ key, resolve, reject });
    });
}
