// Run by global-websocket.test.ts in a Node process whose global WebSocket
// is the standard one (undici's; `--experimental-websocket` in Node 20): the
// built package, imported by its own name, as a browser app would use it —
// no `WebSocket` option, no Ping frames visible. Prints one JSON line.

import { FanfareClient } from '@fanfare/client';

const { FANFARE_URL, FANFARE_HTTP_URL, FANFARE_API_KEY } = process.env;
const timer = setTimeout(() => {
  console.error('global-websocket-client: timed out');
  process.exit(1);
}, 10_000);

const client = new FanfareClient({ url: FANFARE_URL });
const session = await client.connect();
const sub = client.subscribe('news:global');
await sub.ready;
const received = new Promise((resolve) => sub.once('publication', resolve));
const response = await fetch(`${FANFARE_HTTP_URL}/api/publish`, {
  method: 'POST',
  headers: { authorization: `Bearer ${FANFARE_API_KEY}`, 'content-type': 'application/json' },
  body: JSON.stringify({ channel: 'news:global', data: { text: 'to a standard WebSocket' } }),
});
if (!response.ok) throw new Error(`publish: ${response.status}`);
const publication = await received;
const rtt = await client.ping();
client.close();
clearTimeout(timer);
console.log(JSON.stringify({ user: session.user, offset: publication.offset, data: publication.data, rtt }));
