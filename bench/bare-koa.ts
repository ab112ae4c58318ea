import Koa from 'koa';
import { readDocuments } from './static-documents.js';

// The ceiling for static documents in Koa: a Koa app answering the very bytes Latchkey answered, nothing else.
const documents = readDocuments();
const app = new Koa();
app.use((ctx) => {
  const document = documents.get(ctx.url);
  if (!document) return;
  ctx.set(document.headers);
  ctx.body = document.body;
});
const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`${address.port}\n`);
});
