// Direct messages: a conversation with anyone is the channel
// `dm:<a>,<b>` (the two names sorted), which only those two can read and
// write. Conversations are listed from the user's read state and feed.
import { Badges, Chat } from './chat.js';
import { element, signIn } from './session.js';

const { user, client } = await signIn();
const list = document.getElementById('conversations');
const form = document.getElementById('new-dm');
const peerInput = document.getElementById('peer');

const badges = new Badges({ client, user, onChange: renderConversations });
const chat = new Chat({
  client,
  user,
  badges,
  elements: {
    title: document.getElementById('channel-title'),
    messages: document.getElementById('messages'),
    typing: document.getElementById('typing'),
    composer: document.getElementById('composer'),
    text: document.getElementById('text'),
  },
});

/** The direct channel of `user` and `peer`. */
function directChannel(peer) {
  const [a, b] = [user, peer].sort();
  return `dm:${a},${b}`;
}

/** The other user of a direct channel. */
function peerOf(channel) {
  const [a, b] = channel.slice(3).split(',');
  return a === user ? b : a;
}

function renderConversations() {
  const channels = badges.channels().filter((channel) => channel.startsWith('dm:'));
  if (chat.channel && !channels.includes(chat.channel)) channels.push(chat.channel);
  channels.sort();
  list.replaceChildren(
    ...channels.map((channel) => {
      const peer = peerOf(channel);
      const link = element('a', { href: `#${peer}`, 'data-channel': channel, 'data-peer': peer }, peer);
      const count = badges.count(channel);
      if (count > 0) link.append(element('span', { class: 'badge', 'data-count': String(count) }, String(count)));
      if (channel === chat.channel) link.classList.add('open');
      return element('li', {}, link);
    }),
  );
}

function openFromHash() {
  const peer = decodeURIComponent(location.hash.slice(1)).trim().toLowerCase();
  if (!peer || peer === user) return;
  chat.open(directChannel(peer), `@ ${peer}`).then(renderConversations);
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  location.hash = peerInput.value.trim().toLowerCase();
  peerInput.value = '';
});
window.addEventListener('hashchange', openFromHash);
await badges.feed.ready;
await badges.load();
openFromHash();
