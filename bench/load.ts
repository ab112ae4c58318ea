import autocannon from 'autocannon';
import { watchTree } from './process-stats.js';

export type LoadOptions = {
  url: string;
  connections: number;
  /** Seconds; ignored when `amount` is set. */
  duration?: number;
  /** Exactly this many requests (pools of single-use codes). */
  amount?: number;
  method?: 'GET' | 'POST';
  headers?: Record<string, string>;
  body?: string;
  /** Builds each request (a fresh token from a pool); return a body or headers to send. */
  setupRequest?: (request: autocannon.Request, context: object) => autocannon.Request;
  onResponse?: (status: number, body: string, context: object) => void;
  /** The server processes whose CPU and memory are measured during the run. */
  pid?: number | number[];
};

export type LoadResult = {
  requests: number;
  requestsPerSecond: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  /** Non-2xx responses, connection errors and timeouts: must be 0. */
  failures: number;
  cpuSecondsPer1000: number | null;
  peakRssBytes: number | null;
  durationSeconds: number;
};

export async function runLoad(options: LoadOptions): Promise<LoadResult> {
  const watch = options.pid ? watchTree(options.pid) : null;
  const started = performance.now();
  const result = await autocannon({
    url: options.url,
    connections: options.connections,
    ...(options.amount ? { amount: options.amount } : { duration: options.duration ?? 10 }),
    timeout: 10,
    requests: [{
      method: options.method ?? 'GET',
      ...(options.headers ? { headers: options.headers } : {}),
      ...(options.body ? { body: options.body } : {}),
      ...(options.setupRequest ? { setupRequest: options.setupRequest } : {}),
      ...(options.onResponse ? { onResponse: options.onResponse } : {}),
    }],
  });
  const durationSeconds = (performance.now() - started) / 1000;
  const usage = watch?.stop() ?? null;
  const requests = result.requests.total;
  return {
    requests,
    requestsPerSecond: requests / durationSeconds,
    latencyP50Ms: result.latency.p50,
    latencyP99Ms: result.latency.p99,
    failures: result.non2xx + result.errors + result.timeouts,
    cpuSecondsPer1000: usage && requests > 0 ? (usage.cpuSeconds / requests) * 1000 : null,
    peakRssBytes: usage?.peakRssBytes ?? null,
    durationSeconds,
  };
}
