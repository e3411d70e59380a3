// The team chat demo (/demo/team): two members talk in #general, see each
// other online, get an unread badge for a channel they do not have open
// (cleared when they open it), and keep talking across a restart of the
// server, each page recovering the message published while it was away;
// typing shows and clears, read receipts say who has seen a message, and
// an author's edits and deletes reach the other page.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';

import {
  T,
  badge,
  launchBrowser,
  openPage,
  publishElsewhere,
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

const messages = (page) => texts(page, '#messages .message .text');

function opened(page, channel) {
  return waitInPage(
    page,
    `${channel} open`,
    (c) => document.querySelector(`.sidebar a.open[data-channel="${c}"]`) !== null,
    channel,
  );
}

describe('team chat demo', { skip }, () => {
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

  /** Two members in #general, both connected and seeing each other online. */
  async function twoMembers() {
    const [alice, bob] = [unique('alice'), unique('bob')];
    const a = await openPage(browser, `${server.httpUrl}/demo/team?user=${alice}`);
    const b = await openPage(browser, `${server.httpUrl}/demo/team?user=${bob}`);
    await Promise.all([opened(a, 'team:general'), opened(b, 'team:general')]);
    await waitInPage(
      a,
      `${bob} online`,
      (u) => document.querySelector(`#members li.online[data-user="${u}"]`) !== null,
      bob,
    );
    return { alice, bob, a, b };
  }

  it('two members talk, see each other online, and get unread badges', { timeout: T.test }, async () => {
    const { bob, a, b } = await twoMembers();
    await waitInPage(b, 'alice online', () => document.querySelectorAll('#members li.online').length >= 2);
    assert.ok(
      (await texts(a, '#members li')).some((t) => t === bob),
      'bob is listed among the members',
    );

    await send(a, 'morning all');
    await showsMessage(b, 'morning all');
    await send(b, 'morning!');
    await showsMessage(a, 'morning!');

    // Alice moves to #random and posts twice; Bob, still in #general, sees a badge.
    await a.click('.sidebar a[data-channel="team:random"]');
    await opened(a, 'team:random');
    await send(a, 'anyone for lunch?');
    await badge(b, 'team:random', 1);
    await send(a, 'the usual place');
    await badge(b, 'team:random', 2);
    await badge(b, 'team:general', 0);
    console.log(`screenshot: ${await screenshot(b, 'team')}`);
    // Opening the channel reads it: the badge goes, the messages are there.
    await b.click('.sidebar a[data-channel="team:random"]');
    await opened(b, 'team:random');
    await badge(b, 'team:random', 0);
    await showsMessage(b, 'the usual place');
    assert.deepEqual(await messages(b), ['anyone for lunch?', 'the usual place']);

    // Read stays read on a new page load (the server keeps the cursor).
    await b.goto(`${server.httpUrl}/demo/team?user=${bob}`);
    await opened(b, 'team:general');
    await badge(b, 'team:random', 0);
    assert.deepEqual([...a.problems, ...b.problems], [], 'no script errors');
  });

  it('each page recovers what was published while the server restarted', { timeout: T.test }, async () => {
    const { a, b } = await twoMembers();
    await send(a, 'before the restart');
    await showsMessage(b, 'before the restart');

    await server.stop();
    await Promise.all([waitReconnecting(a), waitReconnecting(b)]);
    await publishElsewhere(server, 'team:general', {
      text: 'the server is back',
      user: 'ops-bot',
    });
    server = await startDemo({ dataDir: server.dataDir, port: server.port });
    await Promise.all([showsMessage(a, 'the server is back'), showsMessage(b, 'the server is back')]);
    await Promise.all([waitState(a, 'connected'), waitState(b, 'connected')]);
    await send(b, 'after the restart');
    await showsMessage(a, 'after the restart');

    for (const page of [a, b]) {
      const list = await messages(page);
      const tail = list.slice(list.indexOf('before the restart'));
      assert.deepEqual(tail, ['before the restart', 'the server is back', 'after the restart'], 'once each, in order');
    }
    assert.deepEqual([...a.problems, ...b.problems], [], 'no script errors');
  });

  it('typing shows to the other member and clears', { skip, timeout: T.test }, async () => {
    const { alice, a, b } = await twoMembers();
    const typists = () => b.evaluate(() => document.getElementById('typing').dataset.users);
    // Typing shows, then clears by itself after `expires_ms` (5 s by default).
    await a.type('#text', 'I am writ');
    await waitInPage(b, `${alice} typing`, (u) => document.getElementById('typing').dataset.users === u, alice);
    const shown = Date.now();
    await b.waitForFunction(() => document.getElementById('typing').dataset.users === '', null, {
      timeout: T.event + 6_000,
    });
    assert.ok(Date.now() - shown > 2_000, 'it stayed for expires_ms');
    // Typing again (the server's interval has passed): it shows, and the
    // typist's message clears it at once.
    await a.type('#text', 'ing');
    await waitInPage(b, `${alice} typing again`, (u) => document.getElementById('typing').dataset.users === u, alice);
    await a.press('#text', 'Enter');
    await showsMessage(b, 'I am writing');
    assert.equal(await typists(), '', 'the message cleared it');
    console.log(`screenshot: ${await screenshot(b, 'team-typing')}`);
  });

  it('read receipts show who has seen a message', { skip, timeout: T.test }, async () => {
    const { bob, a, b } = await twoMembers();
    await send(a, 'did you see this?');
    // Bob has #general open: his page reads the message, Alice gets his receipt.
    await showsMessage(b, 'did you see this?');
    await waitInPage(
      a,
      `seen by ${bob}`,
      ([u, t]) => {
        const last = [...document.querySelectorAll('#messages .message')].pop();
        return (
          last?.querySelector('.text')?.textContent === t &&
          (last.querySelector('.seen')?.dataset.users ?? '').split(',').includes(u)
        );
      },
      [bob, 'did you see this?'],
    );
    console.log(`screenshot: ${await screenshot(a, 'team-receipts')}`);
  });

  it('an author edits and deletes a message, and the other member sees both', { skip, timeout: T.test }, async () => {
    const { a, b } = await twoMembers();
    await send(a, 'teh launch is at noon');
    await showsMessage(b, 'teh launch is at noon');
    const mine = a.locator('#messages .message.mine', {
      hasText: 'teh launch is at noon',
    });
    a.once('dialog', (dialog) => dialog.accept('the launch is at noon'));
    await mine.hover();
    await mine.locator('button.edit').click();
    await showsMessage(b, 'the launch is at noon');
    await waitInPage(b, 'marked edited', () =>
      [...document.querySelectorAll('#messages .message')].some((m) => m.querySelector('.edited')),
    );
    const edited = a.locator('#messages .message.mine', {
      hasText: 'the launch is at noon',
    });
    await edited.hover();
    await edited.locator('button.delete').click();
    await waitInPage(
      b,
      'the message gone',
      () => ![...document.querySelectorAll('#messages .text')].some((n) => n.textContent === 'the launch is at noon'),
    );
  });
});
