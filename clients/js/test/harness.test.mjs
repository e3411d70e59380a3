// The harness itself: the binary starts on port 0, the native side answers,
// and SIGTERM makes it exit by itself. Needs nothing of the Pusher layer.
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';

import { T, nativePublish, setup, unique } from './support.mjs';

describe('harness', () => {
  it('starts fanfare, round-trips a native publication, stops on SIGTERM', { timeout: T.test }, async () => {
    const h = await setup();
    let stopped;
    try {
      assert.ok(h.server.port > 0);
      const native = await h.native();
      assert.equal(typeof native.session.client, 'string');
      const channel = unique('harness-');
      const sub = await native.command('subscribe', { channel });
      assert.equal(sub.offset, 0);
      const published = await nativePublish(h.server, channel, { text: 'hello' });
      const push = await native.waitPush('publication', (m) => m.type === 'publication' && m.channel === channel);
      assert.deepEqual(push.data, { text: 'hello' });
      assert.equal(push.offset, published.offset);
      assert.equal(push.epoch, published.epoch);
    } finally {
      stopped = await h.close();
    }
    assert.equal(stopped.bySelf, true, `fanfare did not exit by itself after SIGTERM: ${JSON.stringify(stopped)}`);
  });
});
