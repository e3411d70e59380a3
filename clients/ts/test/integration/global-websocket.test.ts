// The built package (dist/, imported as `@fanfare/client`) on the standard
// global WebSocket, as in a browser: see global-websocket-client.mjs.

import { execFile } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { API_KEY, startServer, T, type Server } from './server.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));

let server: Server;
beforeAll(async () => {
  server = await startServer();
}, T.start);
afterAll(() => server?.stop());

describe('the built package on a standard WebSocket', { timeout: T.test }, () => {
  it('connects, subscribes, receives and pings without the WebSocket option', async () => {
    expect(fs.existsSync(path.join(HERE, '..', '..', 'dist', 'index.js')), 'dist/ is built (npm run build)').toBe(true);
    // Node 20 has the standard WebSocket behind a flag; later versions have it by default.
    const flags =
      typeof (globalThis as { WebSocket?: unknown }).WebSocket === 'function' ? [] : ['--experimental-websocket'];
    const output = await new Promise<string>((resolve, reject) => {
      execFile(
        process.execPath,
        [...flags, '--no-warnings', path.join(HERE, 'global-websocket-client.mjs')],
        {
          env: { ...process.env, FANFARE_URL: server.url, FANFARE_HTTP_URL: server.httpUrl, FANFARE_API_KEY: API_KEY },
          timeout: T.test,
        },
        (error, stdout, stderr) => (error ? reject(new Error(`${error.message}\n${stderr}`)) : resolve(stdout)),
      );
    });
    const result = JSON.parse(output.trim()) as { user: string; offset: number; data: unknown; rtt: number };
    expect(result).toMatchObject({ user: '', offset: 1, data: { text: 'to a standard WebSocket' } });
    expect(result.rtt).toBeGreaterThanOrEqual(0);
  });
});
