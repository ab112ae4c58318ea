import type { Database } from '../database.js';

/**
 * A counter in a fixed window: at most `limit` reservations in `windowMs` from the first one. With `lockMs`, the
 * reservation that fills the window also moves its end to `lockMs` from then (a lock that starts at the last
 * attempt, not at the first).
 */
export type CounterRule = { limit: number; windowMs: number; lockMs?: number };

/** Whether a reservation was within its counter's limit, and when the counter's window ends. */
export type Reservation = { isWithin: true; points: number; endsAt: number } | { isWithin: false; endsAt: number };

export type LevelReservation = { isWithin: true; points: number; endsAt: number; level: number } | { isWithin: false; endsAt: number };

export type CounterStore = ReturnType<typeof createCounterStore>;

// Migration 0004 named the table for its first user, the login throttle; every counter of the server lives in it.
const tableName = 'login_throttle';

type CounterRow = { points: number; expire: number };

/** `?, ?, …`: one placeholder per key of a short list (a few counters of one request). */
const placeholders = (keys: string[]) => keys.map(() => '?').join(', ');

/** The limit of a counter that only counts: the largest `integer` of PostgreSQL, which the column is. */
const uncapped = 2_147_483_647;

/**
 * One statement per reservation: it starts a new window (the row is missing or its window is over), or adds one
 * within the limit, or changes nothing, and RETURNING says which (no row: the limit was reached). PostgreSQL and
 * SQLite both run an upsert as one atomic step on the row, so however many requests, workers or instances reserve
 * at once, no more than `limit` of them are ever told yes.
 */
const reserveSql = `insert into ${tableName} (key, points, expire) values (?, 1, ?)
  on conflict (key) do update set
    points = case when ${tableName}.expire <= ? then 1 else ${tableName}.points + 1 end,
    expire = case
      when ${tableName}.expire <= ? then excluded.expire
      when ${tableName}.points + 1 >= ? and cast(? as bigint) > 0 then cast(? as bigint)
      else ${tableName}.expire
    end
  where ${tableName}.expire <= ? or ${tableName}.points < ?
  returning points, expire`;

/** The pair of values a reservation binds for its rule: when a new window ends, and when a filling one locks until. */
function windowEnds(rule: CounterRule, now: number): { firstEnds: number; lockedUntil: number } {
  const lockedUntil = rule.lockMs === undefined ? 0 : now + rule.lockMs;
  return { lockedUntil, firstEnds: rule.limit <= 1 && rule.lockMs !== undefined ? lockedUntil : now + rule.windowMs };
}

/**
 * reserveSql with its rule picked inside the same statement by the count in another counter (the level): `rules`
 * lists the rule of each level from 0, and the last one applies to every level above it. The upsert is the same
 * atomic step on the row as reserveSql's; RETURNING adds the level it read.
 */
function reserveByLevelSql(ruleCount: number): string {
  const rule = '(cast(? as bigint), cast(? as bigint), cast(? as bigint), cast(? as bigint))';
  return `with level as (
    select coalesce((select points from ${tableName} where key = ? and expire > ?), 0) as n
  ), rules (level, lim, first_ends, locked_until) as (
    values ${Array.from({ length: ruleCount }, () => rule).join(', ')}
  ), chosen as (
    select rules.lim, rules.first_ends, rules.locked_until, level.n from rules, level
    where rules.level <= level.n order by rules.level desc limit 1
  )
  insert into ${tableName} (key, points, expire)
  select ?, 1, first_ends from chosen where true
  on conflict (key) do update set
    points = case when ${tableName}.expire <= ? then 1 else ${tableName}.points + 1 end,
    expire = case
      when ${tableName}.expire <= ? then excluded.expire
      when ${tableName}.points + 1 >= (select lim from chosen) and (select locked_until from chosen) > 0 then (select locked_until from chosen)
      else ${tableName}.expire
    end
    where ${tableName}.expire <= ? or ${tableName}.points < (select lim from chosen)
  returning points, expire, (select n from chosen) as level`;
}

/**
 * The counters every instance and worker process shares, in the database: login throttling and request rate
 * limits. The rule for anything counted or single-use (CHECK-THEN-ACT): reserve with one atomic statement here
 * *before* the expensive or irreversible step, and refund afterwards if the step should not count; never read a
 * count, act, and write it back later. Time is always passed in (`now`, epoch milliseconds).
 */
export function createCounterStore(database: Database) {
  const { knex, statements } = database;

  /** The reservations in the counter's running window (0 when there is none). */
  async function count(key: string, now: number): Promise<number> {
    const [row] = await statements.rows<CounterRow>(`select points, expire from ${tableName} where key = ? and expire > ?`, [key, now]);
    return row ? Number(row.points) : 0;
  }

  /** Takes one place in the counter if its rule allows; a refusal changes nothing. */
  async function reserve(key: string, rule: CounterRule, now: number): Promise<Reservation> {
    const { firstEnds, lockedUntil } = windowEnds(rule, now);
    const [row] = await statements.rows<CounterRow>(reserveSql, [key, firstEnds, now, now, rule.limit, lockedUntil, lockedUntil, now, rule.limit]);
    return row ? { isWithin: true, points: Number(row.points), endsAt: Number(row.expire) } : refused(key, now);
  }

  /**
   * Refused: nothing was written. When the window ends is read for Retry-After; if it ended in between (or the
   * purge deleted it), the caller may try again at once.
   */
  async function refused(key: string, now: number): Promise<{ isWithin: false; endsAt: number }> {
    const [current] = await statements.rows<Pick<CounterRow, 'expire'>>(`select expire from ${tableName} where key = ?`, [key]);
    return { isWithin: false, endsAt: current ? Number(current.expire) : now };
  }

  return {
    reserve,

    /**
     * Takes one place in `key` under the rule of the level that the counter `levelKey` holds at `now` (`rules[level]`,
     * the last rule for any level beyond), reading the level in the same statement as the reservation. A reservation
     * within its limit says which level's rule it was taken under.
     */
    async reserveByLevel(key: string, levelKey: string, rules: CounterRule[], now: number): Promise<LevelReservation> {
      const bindings = rules.flatMap((rule, level) => {
        const { firstEnds, lockedUntil } = windowEnds(rule, now);
        return [level, rule.limit, firstEnds, lockedUntil];
      });
      const [row] = await statements.rows<CounterRow & { level: number }>(reserveByLevelSql(rules.length), [levelKey, now, ...bindings, key, now, now, now]);
      if (row) return { isWithin: true, points: Number(row.points), endsAt: Number(row.expire), level: Number(row.level) };
      return refused(key, now);
    },

    /** Adds one to a counter that has no limit (how often something happened in its window). */
    async increment(key: string, windowMs: number, now: number): Promise<void> {
      await reserve(key, { limit: uncapped, windowMs }, now);
    },

    /**
     * Gives back one reservation in each of the counters whose window is still running (an attempt that should not
     * count after all), in one statement.
     */
    async refund(keys: string[], now: number): Promise<void> {
      if (keys.length === 0) return;
      await statements.run(`update ${tableName} set points = points - 1 where key in (${placeholders(keys)}) and expire > ? and points > 0`, [...keys, now]);
    },

    count,

    /** Forgets counters, in one statement (a successful sign-in forgets its pair's failures and locks). */
    async clear(keys: string[]): Promise<void> {
      if (keys.length === 0) return;
      await statements.run(`delete from ${tableName} where key in (${placeholders(keys)})`, keys);
    },

    /** Deletes counters whose window ended before `now`, at most `batchSize`; returns how many. */
    async deleteExpired(now: number, batchSize: number): Promise<number> {
      const expired = knex(tableName).select('key').where('expire', '<=', now).limit(batchSize);
      return knex(tableName).whereIn('key', expired).delete();
    },
  };
}
