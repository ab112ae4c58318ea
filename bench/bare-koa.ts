import Koa from 'koa';

// The ceiling for static documents: Koa answering a discovery-sized JSON body serialised once, nothing else.
const document = JSON.stringify(Object.fromEntries(Array.from({ length: 40 }, (_, i) => [`field_${i}`, `https://localhost/value/${i}`])));
const app = new Koa();
app.use((ctx) => {
  ctx.type = 'application/json';
  ctx.body = document;
});
const server = app.listen(0, '127.0.0.1', () => {
  const address = server.address();
  if (address && typeof address === 'object') process.stdout.write(`${address.port}\n`);
});
