// The live-comments demo (/demo/live): two viewers comment to each other;
// the server restarts between comments and each page recovers the comment
// published while it could not be reached.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  T,
  publishElsewhere,
  launchBrowser,
  openPage,
  screenshot,
  skip,
  startDemo,
  texts,
  unique,
  waitInPage,
  waitReconnecting,
  waitState,
} from './support.mjs';

describe('live comments demo', { skip }, () => {
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

  const comments = (page) => texts(page, '#comments .comment .text');
  const showsComment = (page, text) =>
    waitInPage(
      page,
      `the comment "${text}"`,
      (t) => [...document.querySelectorAll('#comments .text')].some((n) => n.textContent === t),
      text,
    );

  async function comment(page, text) {
    await page.fill('#comment', text);
    await page.press('#comment', 'Enter');
  }

  it('two viewers exchange comments, across a restart of the server', { timeout: T.test }, async () => {
    const [ann, ben] = [unique('ann'), unique('ben')];
    const first = await openPage(browser, `${server.httpUrl}/demo/live?user=${ann}`);
    const second = await openPage(browser, `${server.httpUrl}/demo/live?user=${ben}`);
    await Promise.all([waitState(first, 'connected'), waitState(second, 'connected')]);
    await waitInPage(first, 'two viewers', () => document.getElementById('viewers').dataset.count === '2');

    await comment(first, 'first!');
    await showsComment(second, 'first!');
    await comment(second, 'hello from the back row');
    await showsComment(first, 'hello from the back row');

    await server.stop();
    await Promise.all([waitReconnecting(first), waitReconnecting(second)]);
    await publishElsewhere(server, 'stream:main', { text: 'we are back live', user: 'host' });
    server = await startDemo({ dataDir: server.dataDir, port: server.port });
    await Promise.all([showsComment(first, 'we are back live'), showsComment(second, 'we are back live')]);
    await Promise.all([waitState(first, 'connected'), waitState(second, 'connected')]);
    await comment(second, 'welcome back');
    await showsComment(first, 'welcome back');

    const expected = ['first!', 'hello from the back row', 'we are back live', 'welcome back'];
    assert.deepEqual(await comments(first), expected, 'every comment once, in order');
    assert.deepEqual(await comments(second), expected);
    console.log(`screenshot: ${await screenshot(first, 'live')}`);
    assert.deepEqual([...first.problems, ...second.problems], [], 'no script errors');
  });
});
