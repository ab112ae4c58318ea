import net from 'node:net';
import readline from 'node:readline';

// Several Latchkey instances behind one address, as a load balancer puts them: each incoming connection goes to the
// next backend in turn and is piped through unchanged (Host included, so the issuer check holds). It prints its own
// port when it listens (the instances' ISSUER), then reads the backends' ports, space-separated, as one line.
let backends: number[] = [];
let next = 0;
const server = net.createServer((client) => {
  const upstream = net.connect(backends[next++ % backends.length], '127.0.0.1');
  client.setNoDelay(true);
  upstream.setNoDelay(true);
  client.pipe(upstream).pipe(client);
  const close = () => {
    client.destroy();
    upstream.destroy();
  };
  client.on('error', close).on('close', close);
  upstream.on('error', close).on('close', close);
});
readline.createInterface({ input: process.stdin }).once('line', (line) => {
  backends = line.trim().split(/\s+/).map(Number);
  process.stdout.write('ready\n');
});
server.listen(0, () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`${address.port}\n`);
});
