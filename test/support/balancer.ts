import http from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A minimal HTTP load balancer for tests: the issuer URL points here and `route(n)` picks which backend instance
 * the next requests go to, as a real balancer would for a user's successive requests.
 */
export async function startBalancer() {
  let target = 0;
  const backends: number[] = [];
  const server = http.createServer((req, res) => {
    const upstream = http.request(
      { host: '127.0.0.1', port: backends[target], method: req.method, path: req.url, headers: req.headers },
      (answer) => {
        res.writeHead(answer.statusCode!, answer.headers);
        answer.pipe(res);
      },
    );
    upstream.on('error', () => res.writeHead(502).end());
    req.pipe(upstream);
  });
  await new Promise<void>((resolve) => server.listen(0, resolve));
  return {
    port: (server.address() as AddressInfo).port,
    setBackends(ports: number[]) {
      backends.splice(0, backends.length, ...ports);
    },
    route(index: number) {
      target = index;
    },
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}
