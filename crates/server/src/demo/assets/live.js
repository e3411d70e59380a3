// Live comments beside a stream: everyone signed in may comment
// (namespace `stream`, publish = "anyone"); presence counts the viewers.
import { clock, element, signIn } from './session.js';

const CHANNEL = 'stream:main';
const { user, client } = await signIn();
const list = document.getElementById('comments');
const viewers = document.getElementById('viewers');
const form = document.getElementById('comment-form');
const input = document.getElementById('comment');
/** offset → {user, text, time}: every comment once, in order. */
const comments = new Map();
const watching = new Set();

const stream = client.subscribe(CHANNEL);
stream.on('publication', (p) => {
  if (typeof p.data?.text !== 'string' || p.offset === undefined) return;
  comments.set(p.offset, { user: p.data.user, text: p.data.text, time: p.time });
  render();
});
// A gap the server cannot replay (the history was trimmed): start over.
stream.on('notRecovered', () => {
  comments.clear();
  loadRecent();
});
stream.on('subscribed', () => countViewers().catch(() => {}));
stream.on('join', ({ user }) => {
  watching.add(user);
  showViewers();
});
stream.on('leave', ({ user }) => {
  watching.delete(user);
  showViewers();
});

async function loadRecent() {
  const page = await client.history(CHANNEL, { limit: 100, reverse: true });
  for (const p of page.publications) {
    if (typeof p.data?.text === 'string')
      comments.set(p.offset, { user: p.data.user, text: p.data.text, time: p.time });
  }
  render();
}

async function countViewers() {
  const { members } = await client.presence(CHANNEL);
  watching.clear();
  for (const member of members) watching.add(member.user);
  showViewers();
}

function showViewers() {
  viewers.textContent = `${watching.size} watching`;
  viewers.dataset.count = String(watching.size);
}

function render() {
  const offsets = [...comments.keys()].sort((a, b) => a - b);
  list.replaceChildren(
    ...offsets.map((offset) => {
      const c = comments.get(offset);
      return element(
        'li',
        {
          class: c.user === user ? 'comment mine' : 'comment',
          'data-offset': String(offset),
          'data-user': c.user ?? '',
        },
        element('span', { class: 'author' }, c.user ?? 'server'),
        element('span', { class: 'text' }, c.text),
        element('time', {}, clock(c.time)),
      );
    }),
  );
  list.scrollTop = list.scrollHeight;
}

form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const text = input.value.trim();
  if (!text) return;
  input.value = '';
  try {
    await client.publish(CHANNEL, { text, user }, { idempotencyKey: crypto.randomUUID() });
  } catch (error) {
    input.value = text; // not sent (or not known to be): the user may send it again
    console.warn(`not sent: ${error.code ?? ''} ${error.message}`);
  }
});

await stream.ready;
await loadRecent();
