// The admin page at /admin, in headless Chromium (Debian's `chromium`,
// driven by playwright-core): it loads, refuses a wrong key, and after
// logging in shows a connection this test opened, a chart that moves when
// the test publishes, and the tail of a channel the test publishes to. A
// screenshot is kept in target/test-artefacts/admin.png.
//
// The replay button is tested through the API in the Rust suite
// (crates/server/tests/e2e/admin.rs): a dead letter takes the binary five
// minutes of retries to make.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';

import { API_KEY, REPO_ROOT, T, nativeClient, nativePublish, startServer, unique } from './support.mjs';

const CHROMIUM = process.env.FANFARE_CHROMIUM || '/usr/bin/chromium';
const ARTEFACTS = path.join(REPO_ROOT, 'target', 'test-artefacts');

let playwright = null;
try {
  playwright = await import('playwright-core');
} catch {}
const skip = !playwright ? 'playwright-core is not installed' : !fs.existsSync(CHROMIUM) ? `no Chromium at ${CHROMIUM}` : false;

describe('admin page', { skip }, () => {
  let server;
  let browser;
  let page;
  const problems = [];

  before(async () => {
    server = await startServer();
    browser = await playwright.chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
    page = await browser.newPage({ viewport: { width: 1280, height: 1400 } });
    page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
    page.on('console', (message) => {
      if (message.type() === 'error' && !/401/.test(message.text())) problems.push(`console: ${message.text()}`);
    });
  }, { timeout: T.hook });

  after(async () => {
    await browser?.close();
    await server?.stop();
  }, { timeout: T.hook });

  const text = (selector) => page.locator(selector).textContent();
  // `{ is }` or `{ has }`: the element's text equals, or includes, it.
  const waitText = (selector, { is, has }, label) =>
    page.waitForFunction(
      ([sel, equal, part]) => {
        const t = document.querySelector(sel)?.textContent ?? '';
        return equal !== null ? t === equal : t.includes(part);
      },
      [selector, is ?? null, has ?? ''],
      { timeout: T.event * 2 },
    ).catch(async (error) => {
      throw new Error(`${label}: ${selector} is ${JSON.stringify(await text(selector))} (${error.message})`);
    });

  async function logIn(key) {
    await page.fill('#key', key);
    await page.click('#login-form button[type=submit]');
  }

  it('loads without a key and refuses a wrong one', { timeout: T.test }, async () => {
    const response = await page.goto(`${server.httpUrl}/admin`);
    assert.equal(response.status(), 200);
    assert.match(response.headers()['content-security-policy'], /frame-ancestors 'none'/);
    assert.equal(await page.isVisible('#login'), true);
    await logIn('not-the-key');
    await waitText('#login-error', { has: 'Wrong API key' }, 'the refusal');
    assert.equal(await page.isVisible('#dashboard'), false);
    assert.equal(await page.evaluate(() => sessionStorage.getItem('fanfare-admin-key')), null);
  });

  it('shows a connection, a moving chart and the tail of a channel', { timeout: T.test * 2 }, async () => {
    await logIn(API_KEY);
    await page.waitForSelector('#dashboard', { state: 'visible', timeout: T.event });
    await waitText('#connections', { is: '0' }, 'no connection yet');

    const channel = unique('admin-');
    const native = await nativeClient(server);
    try {
      await native.command('subscribe', { channel });
      await waitText('#connections', { is: '1' }, "the test's connection");
      await waitText('#channels', { has: channel }, "the test's channel");

      // Publish until a one-second sample shows it on the chart.
      let publishing = true;
      const publisher = (async () => {
        while (publishing) {
          await nativePublish(server, channel, { n: 1 });
          await new Promise((resolve) => setTimeout(resolve, 25));
        }
      })();
      try {
        await page.waitForFunction(
          () => JSON.parse(document.getElementById('chart').dataset.publications || '[]').some((v) => v > 0),
          null,
          { timeout: T.event * 2 },
        );
      } finally {
        publishing = false;
        await publisher;
      }
      assert.notEqual(await text('#publications-rate'), '–');

      await page.fill('#tail-channel', channel);
      await page.click('#tail-form button[type=submit]');
      await waitText('#tail-status', { has: channel }, 'the tail begins');
      // The tail is a subscriber once its stream answers: wait for it.
      const deadline = Date.now() + T.event;
      for (;;) {
        assert.ok(Date.now() < deadline, 'the tail did not subscribe in time');
        const res = await fetch(`${server.httpUrl}/api/channels?prefix=${channel}`, { headers: { authorization: `Bearer ${API_KEY}` } });
        const body = await res.json();
        if (body.channels[0]?.subscribers === 2) break;
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      await nativePublish(server, channel, { hello: 'from the admin test' });
      await waitText('#tail', { has: 'from the admin test' }, "the test's message in the tail");

      fs.mkdirSync(ARTEFACTS, { recursive: true });
      await page.screenshot({ path: path.join(ARTEFACTS, 'admin.png'), fullPage: true });
    } finally {
      native.close();
    }
    assert.deepEqual(problems, [], 'no script errors and no Content-Security-Policy violations');
  });
});
