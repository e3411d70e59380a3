// Compile-time check (tsc -p tsconfig.test.json, part of `npm test`): the
// browser's WebSocket and the `ws` package's both fit the `WebSocket`
// option without a cast.

import WebSocket from 'ws';

import { FanfareClient, type WebSocketLike } from '../../src/index.js';

const nodeSocket: WebSocketLike = new WebSocket('ws://127.0.0.1:1/connection/websocket');
const browserSocket: WebSocketLike = new globalThis.WebSocket('ws://127.0.0.1:1/connection/websocket');
export const sockets = [nodeSocket, browserSocket];

export const clients = [
  new FanfareClient({ url: 'ws://127.0.0.1:1/connection/websocket', WebSocket }),
  new FanfareClient({ url: 'ws://127.0.0.1:1/connection/websocket', WebSocket: globalThis.WebSocket }),
];
