import http from 'node:http';
import { readDocuments } from './static-documents.js';

// The physical limit for static documents: node:http answering the very bytes Latchkey answered (status, headers,
// body), written once, nothing else. Prints its port when it is ready.
const documents = readDocuments();
const server = http.createServer((req, res) => {
  const document = documents.get(req.url ?? '');
  if (!document) return res.writeHead(404).end();
  res.writeHead(200, document.headers).end(document.body);
});
server.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`${address.port}\n`);
});
