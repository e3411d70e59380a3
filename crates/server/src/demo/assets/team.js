// The team chat: the team's channels on the left with unread badges, the
// open channel in the middle, its members and who is online on the right.
import { Badges, Chat } from './chat.js';
import { element, signIn } from './session.js';

const { user, team, client } = await signIn();
const channelList = document.getElementById('channels');

const badges = new Badges({ client, user, onChange: renderChannels });
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
    members: document.getElementById('members'),
  },
});

function renderChannels() {
  channelList.replaceChildren(
    ...team.map((channel) => {
      const count = badges.count(channel);
      const link = element('a', { href: `#${name(channel)}`, 'data-channel': channel }, `# ${name(channel)}`);
      if (count > 0) link.append(element('span', { class: 'badge', 'data-count': String(count) }, String(count)));
      if (channel === chat.channel) link.classList.add('open');
      return element('li', {}, link);
    }),
  );
}

/** `team:general` → `general`. */
function name(channel) {
  return channel.slice(channel.indexOf(':') + 1);
}

function openFromHash() {
  const wanted = team.find((channel) => `#${name(channel)}` === location.hash) ?? team[0];
  chat.open(wanted, `# ${name(wanted)}`).then(renderChannels);
}

window.addEventListener('hashchange', openFromHash);
await badges.feed.ready;
await badges.load();
openFromHash();
