// The conversation view the team chat and the direct messages share: one
// open channel at a time (history, live messages, recovery, typing, read
// receipts, edits and deletes), and the unread badges of all the others.
import { clock, element } from './session.js';

/** How often at most this page tells the server its user is typing. */
const TYPING_EVERY_MS = 1500;

export class Chat {
  /**
   * `elements`: {title, messages, typing, composer, text, members?}.
   * `badges`: the Badges of the page, told which channel is open.
   */
  constructor({ client, user, elements, badges }) {
    this.client = client;
    this.user = user;
    this.el = elements;
    this.badges = badges;
    this.channel = null;
    this.subscription = null;
    this.stops = [];
    /** offset → {user, text, time, edited} of the open channel. */
    this.messages = new Map();
    /** user → the offset their read receipt says they have read. */
    this.receipts = new Map();
    /** user → the timer that hides their "typing…". */
    this.typists = new Map();
    /** user → online (presence) in the open channel. */
    this.online = new Set();
    this.lastTyping = 0;
    this.el.composer.addEventListener('submit', (event) => {
      event.preventDefault();
      this.send();
    });
    this.el.text.addEventListener('input', () => this.typing());
  }

  /** Opens `channel`: the subscription first, then its recent history. */
  async open(channel, title) {
    if (this.channel === channel) return;
    this.close();
    this.channel = channel;
    this.el.title.textContent = title;
    this.el.composer.hidden = false;
    this.badges.opened(channel);
    const sub = this.client.subscribe(channel);
    this.subscription = sub;
    this.stops = [
      sub.on('publication', (p) => this.received(p)),
      sub.on('update', ({ target, data }) => this.edited(target, data)),
      sub.on('delete', ({ offsets }) => this.deleted(offsets)),
      sub.on('tombstone', (p) => this.deleted([p.offset])),
      sub.on('notRecovered', () => this.reload()),
      sub.on('typing', ({ user, expires_ms }) => this.showTyping(user, expires_ms)),
      sub.on('read', ({ user, offset }) => this.receipt(user, offset)),
      sub.on('join', ({ user }) => this.presence(user, true)),
      sub.on('leave', ({ user }) => this.presence(user, false)),
      sub.on('members', () => this.loadMembers().catch(() => {})),
      sub.on('subscribed', () => this.loadPresence()),
    ];
    await sub.ready;
    await this.reload();
    await this.loadMembers().catch(() => {}); // listed again on the next change
  }

  close() {
    for (const stop of this.stops) stop();
    this.stops = [];
    this.subscription?.unsubscribe().catch(() => {}); // a dropped connection forgets it anyway
    this.subscription = null;
    this.messages.clear();
    this.receipts.clear();
    for (const timer of this.typists.values()) clearTimeout(timer);
    this.typists.clear();
    this.online.clear();
    this.render();
    this.renderTyping();
  }

  /** The last 50 messages, from history (live ones already in are kept). */
  async reload() {
    const channel = this.channel;
    const page = await this.client.history(channel, { limit: 50, reverse: true });
    if (channel !== this.channel) return;
    for (const p of page.publications) if (isMessage(p)) this.keep(p);
    this.render();
    this.markRead(page.epoch, page.top_offset);
  }

  received(p) {
    if (!isMessage(p)) return; // fanfare:members and the like
    this.keep(p);
    this.stopTyping(p.data.user);
    this.render();
    if (p.data.user !== this.user) this.markRead(p.epoch, p.offset);
  }

  keep(p) {
    this.messages.set(p.offset, { user: p.data.user, text: p.data.text, time: p.time, edited: p.edited === true });
  }

  edited(target, data) {
    const message = this.messages.get(target);
    if (!message || typeof data?.text !== 'string') return;
    message.text = data.text;
    message.edited = true;
    this.render();
  }

  deleted(offsets) {
    for (const offset of offsets) this.messages.delete(offset);
    this.render();
  }

  /** Moves this user's read cursor: the others see a receipt. */
  markRead(epoch, offset) {
    if (!epoch || !offset || document.visibilityState === 'hidden') return;
    this.client.read(this.channel, { epoch, offset }).catch(() => {});
  }

  async send() {
    const text = this.el.text.value.trim();
    if (!text || !this.channel) return;
    this.el.text.value = '';
    // The key makes a retry after an unknown outcome (a drop before the
    // reply) publish once.
    const key = crypto.randomUUID();
    try {
      const sent = await this.client.publish(this.channel, { text, user: this.user }, { idempotencyKey: key });
      this.keep({ offset: sent.offset, data: { text, user: this.user }, time: Date.now() });
      this.render();
    } catch (error) {
      this.el.text.value = text; // not sent (or not known to be): the user may send it again
      console.warn(`not sent: ${error.code ?? ''} ${error.message}`);
    }
  }

  typing() {
    const now = Date.now();
    if (!this.channel || now - this.lastTyping < TYPING_EVERY_MS) return;
    this.lastTyping = now;
    this.client.typing(this.channel).catch(() => {}); // a server without `typing` shows nothing
  }

  showTyping(user, expiresMs) {
    clearTimeout(this.typists.get(user));
    const timer = setTimeout(() => this.stopTyping(user), expiresMs);
    this.typists.set(user, timer);
    this.renderTyping();
  }

  stopTyping(user) {
    if (!this.typists.has(user)) return;
    clearTimeout(this.typists.get(user));
    this.typists.delete(user);
    this.renderTyping();
  }

  receipt(user, offset) {
    if (user === this.user || (this.receipts.get(user) ?? 0) >= offset) return;
    this.receipts.set(user, offset);
    this.render();
  }

  async loadPresence() {
    const channel = this.channel;
    try {
      const { members } = await this.client.presence(channel);
      if (channel !== this.channel) return;
      this.online = new Set(members.map((m) => m.user));
    } catch {
      this.online = new Set();
    }
    this.renderMembers();
  }

  presence(user, online) {
    if (online) this.online.add(user);
    else this.online.delete(user);
    this.renderMembers();
  }

  async loadMembers() {
    if (!this.el.members) return;
    const channel = this.channel;
    const { members } = await this.client.members(channel, { limit: 100 });
    if (channel !== this.channel) return;
    this.memberList = members;
    this.renderMembers();
  }

  renderMembers() {
    if (!this.el.members) return;
    const users = this.memberList ?? [...this.online];
    this.el.members.replaceChildren(
      ...users.map((user) =>
        element(
          'li',
          { 'data-user': user, class: this.online.has(user) ? 'online' : 'away' },
          element('span', { class: 'dot' }),
          user === this.user ? `${user} (you)` : user,
        ),
      ),
    );
  }

  renderTyping() {
    const names = [...this.typists.keys()];
    this.el.typing.textContent =
      names.length === 0 ? '' : `${names.join(', ')} ${names.length === 1 ? 'is' : 'are'} typing…`;
    this.el.typing.dataset.users = names.join(',');
  }

  render() {
    const offsets = [...this.messages.keys()].sort((a, b) => a - b);
    // Each other user's receipt goes under the newest message they have read.
    const seenAt = new Map();
    for (const [user, read] of this.receipts) {
      const last = offsets.filter((offset) => offset <= read).pop();
      if (last !== undefined) seenAt.set(last, [...(seenAt.get(last) ?? []), user]);
    }
    const items = offsets.map((offset) => {
      const m = this.messages.get(offset);
      const mine = m.user === this.user;
      const item = element(
        'li',
        { class: mine ? 'message mine' : 'message', 'data-offset': String(offset), 'data-user': m.user ?? '' },
        element('span', { class: 'author' }, m.user ?? 'server'),
        element('time', {}, clock(m.time)),
        element('p', { class: 'text' }, m.text ?? ''),
      );
      if (m.edited) item.append(element('span', { class: 'edited' }, '(edited)'));
      if (mine) item.append(this.actions(offset));
      const seen = seenAt.get(offset);
      if (seen)
        item.append(element('div', { class: 'seen', 'data-users': seen.join(',') }, `Seen by ${seen.join(', ')}`));
      return item;
    });
    const list = this.el.messages;
    const atBottom = list.scrollHeight - list.scrollTop - list.clientHeight < 40;
    list.replaceChildren(...items);
    if (atBottom) list.scrollTop = list.scrollHeight;
  }

  /** Edit and delete, for the author's own messages. */
  actions(offset) {
    const edit = element('button', { type: 'button', class: 'edit', title: 'Edit' }, 'edit');
    edit.addEventListener('click', async () => {
      const text = prompt('Edit the message', this.messages.get(offset)?.text ?? '');
      if (text === null || !text.trim()) return;
      await this.client.edit(this.channel, offset, { text: text.trim(), user: this.user }).catch(report);
    });
    const remove = element('button', { type: 'button', class: 'delete', title: 'Delete' }, 'delete');
    remove.addEventListener('click', () => this.client.delete(this.channel, offset).catch(report));
    return element('span', { class: 'actions' }, edit, remove);
  }
}

/**
 * Unread badges: how many messages each channel not open has after the
 * user's read cursor. The server's `unread` counts every stored
 * publication (member changes too); a badge counts messages only, so it is
 * made of the user's feed: each message of a members channel puts a notice
 * `{channel, epoch, offset, from, preview}` in `feed:<user>`.
 */
export class Badges {
  constructor({ client, user, onChange }) {
    this.client = client;
    this.user = user;
    this.onChange = onChange;
    this.open = null;
    /** channel → {epoch, read}: the user's cursor, from `unread`. */
    this.cursors = new Map();
    /** channel → Map offset → notice: messages not read yet. */
    this.unread = new Map();
    this.feed = client.subscribe(`feed:${user}`);
    this.feed.on('notice', (notice) => this.noticed(notice));
    // After a reconnect the feed replays the notices missed; the cursors
    // may have moved meanwhile (another tab): count again.
    client.on('restored', () => this.load().catch(() => {})); // the next restore counts again
  }

  /** The cursors, then the feed's recent notices after them. */
  async load() {
    const cursors = new Map();
    let after;
    do {
      const page = await this.client.unread({ after, limit: 100 });
      for (const c of page.channels) cursors.set(c.channel, { epoch: c.epoch, read: c.read });
      after = page.next;
    } while (after);
    this.cursors = cursors;
    const { publications } = await this.client.history(this.feed.channel, { limit: 200, reverse: true });
    this.unread = new Map();
    for (const p of publications) if (p.event === 'fanfare:notice') this.noticed(p.data, false);
    this.onChange();
  }

  noticed(notice, announce = true) {
    const { channel, epoch, offset } = notice;
    const cursor = this.cursors.get(channel);
    if (!this.cursors.has(channel)) this.cursors.set(channel, { epoch, read: 0 });
    if (channel === this.open || (cursor && cursor.epoch === epoch && offset <= cursor.read)) return;
    if (!this.unread.has(channel)) this.unread.set(channel, new Map());
    this.unread.get(channel).set(offset, notice);
    if (announce) this.onChange(channel, notice);
  }

  /** The open channel has nothing unread (the chat marks it read). */
  opened(channel) {
    this.open = channel;
    this.unread.delete(channel);
    this.onChange();
  }

  count(channel) {
    return this.unread.get(channel)?.size ?? 0;
  }

  /** The channels the feed or `unread` know of (direct ones included). */
  channels() {
    return [...new Set([...this.cursors.keys(), ...this.unread.keys()])];
  }
}

function isMessage(p) {
  return !p.event && p.data && typeof p.data.text === 'string' && p.updates === undefined && !p.deleted;
}

function report(error) {
  alert(`${error.code ?? 'error'}: ${error.message}`);
}
