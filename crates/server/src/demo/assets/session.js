// What every demo page does first: find out who the visitor is (a made-up
// name, from ?user= or a small form), and build a FanfareClient that asks
// the server's demo endpoint for a fresh token before every (re)connect.
import { FanfareClient } from './fanfare-client.js';

/** Asks POST /demo/token for a short-lived token of `user`. */
async function demoToken(user) {
  const response = await fetch('/demo/token', {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ user }),
  });
  const body = await response.json();
  if (!response.ok) throw new Error(body.error?.message ?? `token: HTTP ${response.status}`);
  return body;
}

/**
 * Resolves once the visitor has a name and a token: `{user, team, client}`,
 * the client connecting. `?user=alice` signs in at once (the tests use it).
 */
export async function signIn() {
  const form = document.getElementById('sign-in');
  const input = document.getElementById('user-name');
  const error = document.getElementById('sign-in-error');
  const given = new URLSearchParams(location.search).get('user');
  input.value = given ?? sessionStorage.getItem('fanfare-demo-user') ?? `guest-${Math.floor(Math.random() * 1000)}`;
  let first;
  for (;;) {
    const name = given && !first ? given : await submitted(form, input);
    try {
      first = await demoToken(name);
      break;
    } catch (e) {
      error.textContent = e.message;
      if (given) first = {}; // a bad ?user=: ask with the form from now on
    }
  }
  const user = first.user;
  sessionStorage.setItem('fanfare-demo-user', user);
  form.hidden = true;
  document.body.classList.add('signed-in');
  document.getElementById('me').textContent = user;

  let token = first.token;
  const client = new FanfareClient({
    url: `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/connection/websocket`,
    // Called before every attempt: the first uses the token we have, every
    // later one (after a drop, a restart, an expiry) asks for a new one.
    getToken: async () => {
      const fresh = token ?? (await demoToken(user)).token;
      token = null;
      return fresh;
    },
  });
  showState(client);
  client.connect();
  return { user, team: first.team, client };
}

function submitted(form, input) {
  form.hidden = false;
  input.focus();
  return new Promise((resolve) => {
    form.addEventListener(
      'submit',
      (event) => {
        event.preventDefault();
        resolve(input.value);
      },
      { once: true },
    );
  });
}

/** The connection's state in the header's pill (`data-state` for the tests). */
function showState(client) {
  const pill = document.getElementById('status');
  const label = {
    idle: 'starting',
    connecting: 'connecting…',
    connected: 'live',
    disconnected: 'reconnecting…',
    closed: 'offline',
  };
  client.on('state', ({ state }) => {
    pill.dataset.state = state;
    pill.textContent = label[state] ?? state;
  });
}

/** A text node helper: the pages never put user input in innerHTML. */
export function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === 'class') node.className = value;
    else if (name.startsWith('data-')) node.setAttribute(name, value);
    else node[name] = value;
  }
  node.append(...children);
  return node;
}

/** `12:04`, in the visitor's time zone. */
export function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
}
