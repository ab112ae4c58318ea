import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { createHashingQueue, createPasswordHasher, HashingBusyError } from '../src/accounts/passwords.js';
import { hashingConcurrency, workerThreadPoolSize } from '../src/thread-pool.js';

describe('password hashing', () => {
  it('runs at most its concurrency of tasks at once and the rest in arrival order', async () => {
    const runInQueue = createHashingQueue(2, 10);
    let running = 0;
    let peak = 0;
    const started: number[] = [];
    const releases: (() => void)[] = [];
    const tasks = Array.from({ length: 5 }, (_, index) => runInQueue(async () => {
      started.push(index);
      running += 1;
      peak = Math.max(peak, running);
      await new Promise<void>((resolve) => releases.push(resolve));
      running -= 1;
      return index;
    }));
    for (let released = 0; released < 5; released++) {
      await new Promise((resolve) => setImmediate(resolve));
      expect(running).toBeLessThanOrEqual(2);
      releases.shift()!();
    }
    expect(await Promise.all(tasks)).toEqual([0, 1, 2, 3, 4]);
    expect(started).toEqual([0, 1, 2, 3, 4]);
    expect(peak).toBe(2);
  });

  it('a failing task frees its place for the next one', async () => {
    const runInQueue = createHashingQueue(1, 10);
    await expect(runInQueue(async () => { throw new Error('boom'); })).rejects.toThrow('boom');
    expect(await runInQueue(async () => 'next')).toBe('next');
  });

  it('refuses a task at once when the queue is full, and queues again once a place is free', async () => {
    const runInQueue = createHashingQueue(1, 2);
    const releases: (() => void)[] = [];
    const task = () => runInQueue(() => new Promise<void>((resolve) => releases.push(resolve)));
    const accepted = [task(), task(), task()];
    // The fourth is refused before the next turn of the event loop, not queued.
    const fourth = await Promise.race([task().then(() => 'ran', (error: unknown) => error), new Promise((resolve) => setImmediate(() => resolve('queued')))]);
    expect(fourth).toBeInstanceOf(HashingBusyError);
    await new Promise((resolve) => setImmediate(resolve));
    releases.shift()!();
    await accepted[0];
    const another = task();
    for (let i = 0; i < 3; i++) {
      await new Promise((resolve) => setImmediate(resolve));
      releases.shift()!();
    }
    await Promise.all([...accepted, another]);
  });

  it('hashes and verifies many passwords at once, more than there are cores', async () => {
    const hasher = createPasswordHasher({ concurrency: os.availableParallelism(), queueLength: os.availableParallelism() * 3 });
    const count = os.availableParallelism() * 3;
    const hashes = await Promise.all(Array.from({ length: count }, (_, i) => hasher.hash(`password number ${i}`)));
    const results = await Promise.all(hashes.map((hash, i) => hasher.verify(hash, `password number ${i}`)));
    expect(results).toEqual(Array(count).fill(true));
    expect(await hasher.verify(hashes[0], 'password number 1')).toBe(false);
    expect(await hasher.verify('not an argon2 hash', 'password number 1')).toBe(false);
  });

  it('shares the cores among worker processes: one hash per core for the whole host', () => {
    // (workers, thread-pool size, cores)
    expect(hashingConcurrency(1, 10, 8)).toBe(8);
    expect(hashingConcurrency(8, 4, 8)).toBe(1);
    expect(hashingConcurrency(32, 4, 8)).toBe(1);
  });

  it('never lets hashes take the two thread-pool threads that statements and signatures need', () => {
    // libuv's default pool of 4 on an 8-core host: 8 hashes at once would leave no thread for any other request.
    expect(hashingConcurrency(1, 4, 8)).toBe(2);
    expect(hashingConcurrency(1, 4, 2)).toBe(2);
    expect(hashingConcurrency(1, 1, 8)).toBe(1);
  });

  it("sizes each worker process's thread pool so it can hash on its share of the cores, unless the operator set it", () => {
    // (workers, UV_THREADPOOL_SIZE as configured, cores)
    expect(workerThreadPoolSize(1, null, 2)).toBe(4);
    expect(workerThreadPoolSize(1, null, 8)).toBe(10);
    expect(workerThreadPoolSize(4, null, 8)).toBe(4);
    expect(workerThreadPoolSize(1, 6, 8)).toBe(6);
  });
});
