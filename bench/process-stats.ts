import fs from 'node:fs';

/** CPU seconds and resident memory of a process and all its descendants (WORKERS=N forks), read from /proc. */
export type TreeSample = { cpuSeconds: number; rssBytes: number };

const clockTicks = 100; // USER_HZ on Linux
const pageBytes = 4096;

function childrenOf(pid: number): number[] {
  const children: number[] = [];
  let tasks: string[] = [];
  try {
    tasks = fs.readdirSync(`/proc/${pid}/task`);
  } catch {
    return children;
  }
  for (const task of tasks) {
    try {
      const list = fs.readFileSync(`/proc/${pid}/task/${task}/children`, 'utf8').trim();
      if (list) children.push(...list.split(/\s+/).map(Number));
    } catch {
      // the task ended while we looked
    }
  }
  return children;
}

function sampleOne(pid: number): TreeSample {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name (which may contain spaces) start at state: utime and stime are fields 14 and 15.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const ticks = Number(fields[11]) + Number(fields[12]);
    const rssPages = Number(fields[21]);
    return { cpuSeconds: ticks / clockTicks, rssBytes: rssPages * pageBytes };
  } catch {
    return { cpuSeconds: 0, rssBytes: 0 };
  }
}

/** The sum over the process trees of `roots` (one server, or several instances). */
export function sampleTree(roots: number | number[]): TreeSample {
  const total = { cpuSeconds: 0, rssBytes: 0 };
  const pending = [roots].flat();
  while (pending.length > 0) {
    const pid = pending.pop()!;
    const sample = sampleOne(pid);
    total.cpuSeconds += sample.cpuSeconds;
    total.rssBytes += sample.rssBytes;
    pending.push(...childrenOf(pid));
  }
  return total;
}

/** Samples a process tree's RSS every `intervalMs` until stopped; reports the peak and the CPU used meanwhile. */
export function watchTree(roots: number | number[], intervalMs = 100) {
  const start = sampleTree(roots);
  let peakRssBytes = start.rssBytes;
  const timer = setInterval(() => {
    peakRssBytes = Math.max(peakRssBytes, sampleTree(roots).rssBytes);
  }, intervalMs);
  return {
    stop(): { cpuSeconds: number; peakRssBytes: number } {
      clearInterval(timer);
      const end = sampleTree(roots);
      return { cpuSeconds: end.cpuSeconds - start.cpuSeconds, peakRssBytes: Math.max(peakRssBytes, end.rssBytes) };
    },
  };
}
