// The direct messages demo (/demo/dm): Alice opens a conversation with
// Bob and writes; Bob's page lists the conversation with an unread badge
// (from his feed), he opens it and answers; then the server restarts and
// the message Alice sends as soon as she is back reaches Bob's page,
// live or by recovery.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  T,
  badge,
  launchBrowser,
  openPage,
  screenshot,
  send,
  showsMessage,
  skip,
  startDemo,
  texts,
  unique,
  waitInPage,
  waitReconnecting,
  waitState,
} from './support.mjs';

describe('direct messages demo', { skip }, () => {
  let server;
  let browser;

  before(
    async () => {
      server = await startDemo();
      browser = await launchBrowser();
    },
    { timeout: T.test },
  );

  after(
    async () => {
      await browser?.close();
      await server?.stop();
    },
    { timeout: T.test },
  );

  it(
    'two users write to each other, with a badge for the unread conversation, across a restart',
    { timeout: T.test },
    async () => {
      const [alice, bob] = [unique('alice'), unique('bob')];
      const channel = `dm:${alice},${bob}`;
      const a = await openPage(browser, `${server.httpUrl}/demo/dm?user=${alice}#${bob}`);
      await waitInPage(
        a,
        'the conversation open',
        (c) => document.querySelector(`.sidebar a.open[data-channel="${c}"]`) !== null,
        channel,
      );
      await send(a, 'psst, got a minute?');
      await showsMessage(a, 'psst, got a minute?');

      const b = await openPage(browser, `${server.httpUrl}/demo/dm?user=${bob}`);
      await badge(b, channel, 1);
      await send(a, 'it is about the launch');
      await badge(b, channel, 2);
      await b.click(`.sidebar a[data-channel="${channel}"]`);
      await showsMessage(b, 'it is about the launch');
      await badge(b, channel, 0);
      assert.deepEqual(await texts(b, '#messages .text'), ['psst, got a minute?', 'it is about the launch']);
      await send(b, 'sure, go ahead');
      await showsMessage(a, 'sure, go ahead');

      await server.stop();
      await Promise.all([waitReconnecting(a), waitReconnecting(b)]);
      server = await startDemo({ dataDir: server.dataDir, port: server.port });
      await waitState(a, 'connected');
      await send(a, 'still there?');
      await showsMessage(b, 'still there?');
      await waitState(b, 'connected');
      await send(b, 'yes');
      await showsMessage(a, 'yes');
      const expected = ['psst, got a minute?', 'it is about the launch', 'sure, go ahead', 'still there?', 'yes'];
      assert.deepEqual(await texts(a, '#messages .text'), expected, 'once each, in order');
      assert.deepEqual(await texts(b, '#messages .text'), expected);
      console.log(`screenshot: ${await screenshot(b, 'dm')}`);
      assert.deepEqual([...a.problems, ...b.problems], [], 'no script errors');
    },
  );
});
