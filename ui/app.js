// tokentray's window: renders the backend's overview and drives sign-in, sign-out and settings.
// Data refreshes only on `tokentray://changed` events (plus the first load); a one-second local
// timer re-renders countdowns from the last overview, on the server's clock.

import * as api from './api.js';

const $ = (selector, root = document) => root.querySelector(selector);
const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

/** Tokens with less than this many seconds left are shown as a warning. */
const WARN_SECONDS = 5 * 60;
const TABS = ['accounts', 'endpoint', 'activity', 'settings'];
/** Setting key (as in `overridden` and `save_settings`) to its input. */
const SETTING_INPUTS = {
  authority: '#set-authority',
  tenant: '#set-tenant',
  client_id: '#set-client-id',
  redirect_ports: '#set-redirect-ports',
  port: '#set-port',
  start_at_login: '#set-start-at-login',
  plaintext: '#set-plaintext',
  require_approval: '#set-require-approval',
  every_app: '#set-every-app',
};
/** The answers to an approval question, in the order offered. */
const ANSWERS = [
  ['allow_once', 'Allow once'],
  ['always_allow', 'Always allow'],
  ['deny', 'Deny'],
];

const state = {
  /** The last overview, or null before the first one. */
  overview: null,
  /** Server clock minus local clock, in seconds, as of the last overview. */
  offset: 0,
  /** The running sign-in: {mode, hint, cancelled, done, expiresOn, opener}, or null. */
  signIn: null,
  /** Whether the settings form holds the backend's values yet. */
  settingsFilled: false,
};

// ---------------------------------------------------------------------------------------------
// Small helpers

/** Builds an element; `props` become attributes (`class`, `text` special), children are appended. */
function h(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value == null || value === false) continue;
    if (key === 'class') node.className = value;
    else if (key === 'text') node.textContent = value;
    else node.setAttribute(key, value === true ? '' : String(value));
  }
  for (const child of children.flat()) {
    if (child == null || child === false || child === '') continue;
    node.append(child instanceof Node ? child : String(child));
  }
  return node;
}

/** `text` with line-break opportunities after '/' and '.', for long URLs in narrow cells. */
function breakable(text) {
  return String(text).split(/([/.])/).flatMap((part) => (part === '/' || part === '.' ? [part, h('wbr')] : [part]));
}

const serverNow = () => Date.now() / 1000 + state.offset;
const pad = (n) => String(n).padStart(2, '0');

/** A duration in whole seconds: "42s", "59m 12s", "2h 03m", "1d 04h". */
function formatSpan(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const days = Math.floor(s / 86400);
  const hours = Math.floor((s % 86400) / 3600);
  const minutes = Math.floor((s % 3600) / 60);
  if (days > 0) return `${days}d ${pad(hours)}h`;
  if (hours > 0) return `${hours}h ${pad(minutes)}m`;
  if (minutes > 0) return `${minutes}m ${pad(s % 60)}s`;
  return `${s % 60}s`;
}

/** Time left before expiry, or how long ago it expired. */
function formatExpiry(remaining) {
  if (remaining > 0) return formatSpan(remaining);
  const ago = Math.floor(-remaining);
  if (ago < 1) return 'expired just now';
  if (ago < 60) return `expired ${ago}s ago`;
  if (ago < 3600) return `expired ${Math.floor(ago / 60)}m ago`;
  if (ago < 86400) return `expired ${Math.floor(ago / 3600)}h ${pad(Math.floor((ago % 3600) / 60))}m ago`;
  return `expired ${Math.floor(ago / 86400)}d ago`;
}

const timeFormat = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit' });
const dayTimeFormat = new Intl.DateTimeFormat(undefined, {
  weekday: 'short', day: 'numeric', month: 'short', hour: '2-digit', minute: '2-digit',
});
const fullFormat = new Intl.DateTimeFormat(undefined, { dateStyle: 'medium', timeStyle: 'medium' });

/** Local time of an epoch-seconds instant: "14:05" today, "Tue 4 Mar, 14:05" otherwise. */
function formatLocalTime(epoch) {
  const date = new Date(epoch * 1000);
  return date.toDateString() === new Date().toDateString()
    ? timeFormat.format(date)
    : dayTimeFormat.format(date);
}

// ---------------------------------------------------------------------------------------------
// Errors and announcements

function errorCode(err) {
  return err && typeof err === 'object' && typeof err.code === 'string' ? err.code : null;
}

/** Readable text for a rejection: the backend's message, a plain string, never raw JSON. */
function errorText(err) {
  if (typeof err === 'string' && err.trim()) return err;
  if (err && typeof err === 'object') {
    if (typeof err.message === 'string' && err.message.trim()) return err.message;
    if (typeof err.code === 'string') return `Something went wrong (${err.code.replaceAll('_', ' ')}). Try again.`;
  }
  return 'Something went wrong. Try again; if it keeps happening, restart tokentray.';
}

function showError(err, from = null) {
  $('#error-message').textContent = errorText(err);
  $('#error').hidden = false;
  $('#error').dataset.from = from ?? '';
}

function hideError() {
  const banner = $('#error');
  const hadFocus = banner.contains(document.activeElement);
  banner.hidden = true;
  $('#error-message').textContent = '';
  if (hadFocus) activeTab().focus();
}

let announceTimer = 0;

/** Puts `message` in the status region (re-announced even when it repeats). */
function announce(message) {
  const status = $('#status');
  clearTimeout(announceTimer);
  if (status.textContent === message) {
    status.textContent = '';
    announceTimer = setTimeout(() => { status.textContent = message; }, 100);
  } else {
    status.textContent = message;
  }
}

/** Runs `action` for `button` unless it is already running; the button reads busy meanwhile. */
async function whileBusy(button, action) {
  if (button.getAttribute('aria-disabled') === 'true') return;
  button.setAttribute('aria-disabled', 'true');
  try {
    await action();
  } catch (err) {
    showError(err);
  } finally {
    button.removeAttribute('aria-disabled');
  }
}

// ---------------------------------------------------------------------------------------------
// Focus bookkeeping (the account list is rebuilt on every overview)

/** What to focus again later: the element, and for account buttons, which account and action. */
function rememberFocus(element = document.activeElement) {
  if (!element || element === document.body) return null;
  const card = element.closest?.('.account');
  return { element, account: card?.dataset.account ?? null, action: element.dataset?.action ?? null };
}

function focusable(element) {
  return element?.isConnected && !element.disabled && !element.closest('[hidden]') && !element.closest('dialog:not([open])');
}

/** The same control of the same account, else another control of that account, else null. */
function accountControl(account, action) {
  const card = $$('#accounts .account').find((c) => c.dataset.account === account);
  if (!card) return null;
  const buttons = $$('button', card).filter((b) => !b.disabled);
  return buttons.find((b) => b.dataset.action === action) ?? buttons[0] ?? null;
}

/** Refocuses `memo` if focus was lost (it sits on the body or a removed element). */
function focusIfLost(memo) {
  const active = document.activeElement;
  if (active && active !== document.body && active.isConnected) return;
  let target = focusable(memo?.element) ? memo.element : null;
  if (!target && memo?.account) target = accountControl(memo.account, memo.action);
  (target ?? activeTab()).focus();
}

// ---------------------------------------------------------------------------------------------
// Tabs

function activeTab() {
  return $('[role="tab"][aria-selected="true"]') ?? $('#tab-accounts');
}

function selectTab(name, focus = false) {
  for (const tabName of TABS) {
    const selected = tabName === name;
    const tab = $(`#tab-${tabName}`);
    tab.setAttribute('aria-selected', String(selected));
    tab.tabIndex = selected ? 0 : -1;
    $(`#panel-${tabName}`).hidden = !selected;
  }
  // A settings error is about the settings: it does not follow the user to other tabs.
  if (name !== 'settings' && $('#error').dataset.from === 'settings') hideError();
  // Roving tabindex: focus never stays on a tab that is not selected.
  if (focus || document.activeElement?.getAttribute('role') === 'tab') $(`#tab-${name}`).focus();
}

function setUpTabs() {
  for (const name of TABS) $(`#tab-${name}`).addEventListener('click', () => selectTab(name));
  $('[role="tablist"]').addEventListener('keydown', (event) => {
    const current = TABS.findIndex((name) => $(`#tab-${name}`) === document.activeElement);
    if (current < 0) return;
    const last = TABS.length - 1;
    const next = {
      ArrowRight: current === last ? 0 : current + 1,
      ArrowLeft: current === 0 ? last : current - 1,
      Home: 0,
      End: last,
    }[event.key];
    if (next === undefined) return;
    event.preventDefault();
    selectTab(TABS[next], true);
  });
}

// ---------------------------------------------------------------------------------------------
// Fetching the overview: at most one request in flight and one queued

let fetching = null;
let fetchQueued = false;

function refresh() {
  if (fetching) {
    fetchQueued = true;
    return fetching;
  }
  fetching = (async () => {
    try {
      do {
        fetchQueued = false;
        try {
          const overview = await api.overview();
          state.offset = Number(overview.now) - Date.now() / 1000;
          state.overview = overview;
          render();
        } catch (err) {
          showError(err);
        }
      } while (fetchQueued);
    } finally {
      fetching = null;
    }
  })();
  return fetching;
}

/** The offer after a sign-in: installed (or declined), it goes; a refusal stays under it. */
async function answerEveryAppOffer(accept, button) {
  const error = $('#every-app-offer-error');
  error.hidden = true;
  await whileBusy(button, async () => {
    try {
      const settings = await api.answerEveryAppOffer(accept);
      if (state.overview) state.overview.settings = { ...state.overview.settings, ...settings };
      $('#every-app-offer').hidden = true;
      if (state.settingsFilled && $('#revert-settings').disabled) fillSettings(state.overview?.settings ?? settings);
      announce(accept ? 'Every app you start from now on uses tokentray.' : 'Not now: Settings has the switch.');
    } catch (err) {
      error.textContent = err?.message ?? String(err);
      error.hidden = false;
    }
  });
}

async function ensureOverview() {
  if (!state.overview) await refresh();
  return state.overview;
}

function findAccount(homeAccountId) {
  return state.overview?.accounts?.find((a) => a.home_account_id === homeAccountId) ?? null;
}

function render() {
  const overview = state.overview;
  $('#every-app-offer').hidden = !overview.offer_every_app;
  renderAccounts(overview.accounts ?? []);
  renderApprovals(overview.approvals ?? {});
  renderEndpoint(overview.endpoint ?? {});
  renderActivity(overview.activity ?? []);
  renderSettingsInfo(overview.settings ?? {});
  if (!state.settingsFilled && overview.settings) fillSettings(overview.settings);
  // Start at login is live state (the autostart entry exists or not), which the first sign-in
  // may change: follow it while the form has no unsaved edits.
  else if (overview.settings && $('#revert-settings').disabled) {
    $('#set-start-at-login').checked = Boolean(overview.settings.start_at_login);
    $('#set-every-app').checked = Boolean(overview.settings.every_app);
  }
  tick();
}

// ---------------------------------------------------------------------------------------------
// Accounts

function renderAccounts(accounts) {
  const list = $('#accounts');
  const panel = $('#panel-accounts');
  $('#accounts-loading').hidden = true;
  $('#no-accounts').hidden = accounts.length > 0;
  $('#accounts-count').textContent = accounts.length ? String(accounts.length) : '';

  const active = document.activeElement;
  const focusMemo = list.contains(active) ? rememberFocus(active) : null;
  const focusIndex = focusMemo ? $$('.account', list).findIndex((c) => c.contains(active)) : -1;
  const scrollTop = panel.scrollTop;

  list.replaceChildren(...accounts.map(accountCard));
  $('#account-tools').hidden = accounts.length < 2;
  filterAccounts();

  panel.scrollTop = scrollTop;
  if (focusMemo) {
    const cards = $$('.account', list);
    const target = accountControl(focusMemo.account, focusMemo.action)
      ?? (cards.length ? $('button', cards[Math.min(focusIndex, cards.length - 1)]) : null)
      ?? activeTab();
    target.focus({ preventScroll: true });
  }
}

function accountCard(account, index) {
  const nameId = `account-${index}-name`;
  const display = account.name || account.username;
  const health = account.health ?? { state: 'ok' };
  // Needs sign-in, or a request waits for a sign-in of its own (Conditional Access, consent).
  const needs = health.state === 'needs_sign_in' || Boolean(account.sign_in_for);
  const signingIn = state.signIn !== null;

  const actions = h('div', { class: 'account-actions' },
    needs && h('button', {
      type: 'button', class: 'primary', 'data-action': 'sign-in-again', 'aria-describedby': nameId,
      disabled: signingIn,
    }, 'Sign in again…'),
    !account.is_default && h('button', {
      type: 'button', 'data-action': 'make-default', 'aria-describedby': nameId,
    }, 'Make default'),
    h('button', { type: 'button', 'data-action': 'sign-out', 'aria-describedby': nameId }, 'Sign out…'),
  );

  const meta = h('dl', { class: 'account-meta' },
    h('div', {}, h('dt', {}, 'Tenant'), h('dd', {}, tenantLabel(account.tenant, account.tenant_name))),
    h('div', {}, h('dt', {}, 'Environment'), h('dd', {}, account.environment || '—')),
  );

  const stateLine = healthLine(health);

  return h('li', {
    class: `account card${account.is_default ? ' is-default' : ''}${needs ? ' needs-sign-in' : ''}`,
    'data-health': health.state,
    'data-account': account.home_account_id,
    'data-username': account.username,
    'aria-labelledby': nameId,
  },
    h('div', { class: 'account-head' },
      h('div', { class: 'account-id' },
        h('h2', { class: 'account-name' },
          h('span', { id: nameId }, display),
          account.is_default && h('span', { class: 'default-marker' }, 'Default')),
        account.name && h('p', { class: 'account-username' }, account.username),
        meta),
      actions),
    stateLine,
    account.sign_in_for && h('p', { class: 'state warn sign-in-for' },
      'Waiting for you to sign in again for ', breakable(account.sign_in_for),
      ' (Conditional Access or consent): choose "Sign in again…".'),
    failingList(account.failing ?? []),
    tokenTable(account, display),
    subscriptionList(account.subscriptions ?? []),
  );
}

/** A tenant by name, its id on hover (and its id alone when it has no known name). */
function tenantLabel(id, name) {
  if (!id) return '—';
  return name ? h('span', { class: 'tenant-name', title: id, 'data-tenant-id': id }, name) : breakable(id);
}

/** The subscriptions ARM listed for the account, behind a disclosure. */
function subscriptionList(subscriptions) {
  if (!subscriptions.length) return null;
  return h('details', { class: 'subscriptions' },
    h('summary', {}, `Subscriptions (${subscriptions.length})`),
    h('ul', {}, subscriptions.map((s) => h('li', { class: 'subscription', 'data-state': s.state },
      h('span', { class: 'subscription-name' }, s.displayName),
      ' ',
      h('code', { class: 'subscription-id' }, s.subscriptionId),
      s.state !== 'Enabled' && h('span', { class: 'muted' }, ` (${s.state})`)))));
}

/** The account's health: a one-line summary, and what Entra ID said behind "Details". */
function healthLine(health) {
  const details = (text) => text && h('details', { class: 'health-details' },
    h('summary', {}, 'Details'), h('p', {}, text));
  switch (health.state) {
    case 'needs_sign_in':
      return h('div', { class: 'state warn health' },
        h('span', { class: 'health-summary' }, `Needs sign-in: ${health.summary}`),
        details(health.details));
    case 'retrying':
      return h('div', { class: 'state warn health' },
        h('span', { class: 'health-summary' },
          `Can't reach Entra ID, retrying at ${formatLocalTime(health.at)} (try ${health.attempt}). `
          + 'Cached tokens are still served until they expire.'),
        details(health.reason));
    case 'refreshing':
      return h('p', { class: 'state ok health' }, h('span', { class: 'health-summary' }, 'Signed in, refreshing…'));
    default:
      return h('p', { class: 'state ok health' }, h('span', { class: 'health-summary' }, 'Signed in'));
  }
}

/** Requests of the account that fail on their own (consent, Conditional Access, a bad scope). */
function failingList(failing) {
  if (!failing.length) return null;
  return h('ul', { class: 'failing' }, failing.map((f) => h('li', {},
    h('strong', {}, breakable(f.scopes)), f.tenant ? ` (tenant ${f.tenant})` : '', `: ${f.reason}`)));
}

function tokenTable(account, display) {
  const tokens = account.tokens ?? [];
  if (!tokens.length) {
    return h('p', { class: 'no-tokens muted' }, 'No access tokens cached yet: tools get one on first request.');
  }
  return h('table', { class: 'tokens' },
    h('caption', { class: 'visually-hidden' }, `Access tokens of ${display}`),
    h('colgroup', {},
      h('col', { class: 'col-resource' }), h('col', { class: 'col-tenant' }), h('col', { class: 'col-expires' }),
      h('col', { class: 'col-refresh' }), h('col', { class: 'col-served' }), h('col', { class: 'col-copy' })),
    h('thead', {}, h('tr', {},
      h('th', { scope: 'col' }, 'Resource and scopes'),
      h('th', { scope: 'col' }, 'Tenant'),
      h('th', { scope: 'col' }, 'Expires in'),
      h('th', { scope: 'col' }, 'Refresh at'),
      h('th', { scope: 'col' }, 'Last served to'),
      h('th', { scope: 'col' }, h('span', { class: 'visually-hidden' }, 'Actions')))),
    h('tbody', {}, tokens.map(tokenRow)),
  );
}

function tokenRow(token) {
  const expiresOn = Number(token.expires_on);
  return h('tr', { class: 'token' },
    h('td', { class: 'resource' },
      h('strong', {}, breakable(token.resource || token.scopes)),
      token.scopes && h('small', { class: 'scopes' }, breakable(token.scopes))),
    h('td', { class: 'tenant' }, tenantLabel(token.tenant, token.tenant_name)),
    h('td', {
      class: 'expires-in', 'data-expires-on': expiresOn, title: `Expires ${fullFormat.format(new Date(expiresOn * 1000))}`,
    }, formatExpiry(expiresOn - serverNow())),
    token.refresh_on != null
      ? h('td', { class: 'refresh-at', title: fullFormat.format(new Date(token.refresh_on * 1000)) },
        formatLocalTime(token.refresh_on))
      : h('td', { class: 'refresh-at' }, '—'),
    h('td', { class: 'last-served' }, token.last_served_to ? breakable(token.last_served_to) : '—'),
    h('td', { class: 'token-actions' }, h('button', {
      type: 'button', class: 'link-button', 'data-action': 'copy-token',
      'data-scopes': token.scopes, 'data-tenant': token.tenant,
    }, 'Copy token…')),
  );
}

/** After a warning, puts the token on the clipboard for 60 seconds. */
async function copyToken(button, homeAccountId) {
  const ok = await confirmAction({
    title: 'Copy this token?',
    text: 'An access token is a secret: anyone who has it can act as you on its resource until it expires. tokentray clears it from the clipboard after 60 seconds.',
    ok: 'Copy token',
  });
  if (!ok) return;
  await whileBusy(button, async () => {
    await api.copyToken(homeAccountId, button.dataset.scopes, button.dataset.tenant);
    announce('Token copied; it leaves the clipboard in 60 seconds.');
  });
}

async function makeDefault(button, homeAccountId) {
  await whileBusy(button, async () => {
    const account = await api.switchAccount(homeAccountId);
    const username = account?.username ?? findAccount(homeAccountId)?.username ?? 'updated';
    announce(`Default account: ${username}.`);
  });
}

async function confirmSignOut(homeAccountId) {
  await ensureOverview();
  const account = findAccount(homeAccountId);
  if (!account) {
    showError('That account is no longer in tokentray: it may have been signed out already.');
    return;
  }
  const ok = await confirmAction({
    title: 'Sign out?',
    text: `Sign out ${account.username}? Its tokens are removed from this computer; tools using it will need you to sign in again.`,
    ok: 'Sign out',
  });
  if (!ok) return;
  try {
    await api.signOut(homeAccountId);
    announce(`Signed out ${account.username}.`);
  } catch (err) {
    showError(err);
  }
}

/** Whether the account matches `needle` (lower case): username, name or tenant (id or name). */
function accountMatches(account, needle) {
  return [account.username, account.name, account.tenant, account.tenant_name]
    .some((field) => String(field ?? '').toLowerCase().includes(needle));
}

/** Shows only the cards the Find box matches; the Compact box hides their token tables. */
function filterAccounts() {
  const needle = $('#account-filter').value.trim().toLowerCase();
  const accounts = state.overview?.accounts ?? [];
  let shown = 0;
  for (const card of $$('#accounts .account')) {
    const account = findAccount(card.dataset.account);
    const match = !needle || (account && accountMatches(account, needle));
    card.hidden = !match;
    if (match) shown += 1;
  }
  const none = $('#no-account-match');
  none.hidden = !(needle && accounts.length && shown === 0);
  none.textContent = none.hidden ? '' : `No account matches “${needle}”.`;
  $('#accounts').classList.toggle('compact', $('#compact-accounts').checked);
}

function setUpAccounts() {
  $('#account-filter').addEventListener('input', filterAccounts);
  $('#compact-accounts').addEventListener('change', filterAccounts);
  $('#accounts').addEventListener('click', (event) => {
    const button = event.target.closest('button[data-action]');
    const card = button?.closest('.account');
    if (!button || !card || button.disabled) return;
    const { account, username } = card.dataset;
    switch (button.dataset.action) {
      case 'make-default': makeDefault(button, account); break;
      case 'sign-out': confirmSignOut(account); break;
      case 'sign-in-again': startSignIn('browser', username, button); break;
      case 'copy-token': copyToken(button, account); break;
      default: break;
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Countdowns (one-second local timer over the last overview; no backend calls)

function tick() {
  const now = serverNow();
  for (const cell of $$('.expires-in[data-expires-on]')) {
    const remaining = Number(cell.dataset.expiresOn) - now;
    const text = formatExpiry(remaining);
    if (cell.textContent !== text) cell.textContent = text;
    cell.classList.toggle('expired', remaining <= 0);
    cell.classList.toggle('warn', remaining > 0 && remaining < WARN_SECONDS);
  }
  for (const line of $$('.approval .countdown[data-expires]')) {
    const remaining = Number(line.dataset.expires) - now;
    const text = remaining > 0
      ? `It waits ${formatSpan(remaining)} more for your answer.`
      : 'It stopped waiting; it asks again on its next request.';
    if (line.textContent !== text) line.textContent = text;
  }
  const countdown = $('#device-countdown');
  const expiresOn = state.signIn?.expiresOn;
  if (expiresOn != null) {
    const remaining = expiresOn - now;
    const text = remaining > 0
      ? `The code expires in ${formatSpan(remaining)}.`
      : 'The code has expired. Cancel and start again.';
    if (countdown.textContent !== text) countdown.textContent = text;
    countdown.dataset.expiresOn = String(expiresOn);
    countdown.classList.toggle('expired', remaining <= 0);
    countdown.classList.toggle('warn', remaining > 0 && remaining < 60);
  }
}

// ---------------------------------------------------------------------------------------------
// Sign-in (browser or device code): one at a time, in #sign-in-dialog

function setSignInRunning(running) {
  $('#sign-in-browser').disabled = running;
  $('#sign-in-device').disabled = running;
  for (const button of $$('button[data-action="sign-in-again"]')) button.disabled = running;
}

function openSignInDialog(mode, hint) {
  const dialog = $('#sign-in-dialog');
  $('#sign-in-title').textContent = mode === 'device'
    ? 'Sign in with a device code'
    : hint ? `Sign in again as ${hint}` : 'Sign in with your browser';
  $('#browser-waiting').hidden = mode !== 'browser';
  $('#sign-in-page').hidden = true;
  $('#sign-in-url').textContent = '';
  $('#copy-sign-in-url').textContent = 'Copy address';
  $('#device-code').hidden = mode !== 'device';
  $('#device-loading').hidden = false;
  $('#device-ready').hidden = true;
  $('#user-code').textContent = '';
  $('#verification-link').textContent = '';
  const countdown = $('#device-countdown');
  countdown.textContent = '';
  countdown.className = 'muted countdown';
  delete countdown.dataset.expiresOn;
  $('#sign-in-live').textContent = '';
  $('#sign-in-error').hidden = true;
  $('#copy-user-code').textContent = 'Copy code';
  const cancel = $('#cancel-sign-in');
  cancel.disabled = false;
  cancel.textContent = 'Cancel';
  if (!dialog.open) dialog.showModal();
  cancel.focus();
}

function showDeviceCode(code) {
  state.signIn.expiresOn = Number(code.expires_on);
  state.signIn.userCode = code.user_code;
  $('#user-code').textContent = code.user_code;
  $('#verification-link').textContent = code.verification_uri;
  $('#device-loading').hidden = true;
  $('#device-ready').hidden = false;
  $('#sign-in-live').textContent =
    `Your code is ${[...code.user_code].join(' ')}. Enter it at ${code.verification_uri}.`;
  // The footer says what is happening now, not "Getting a device code…".
  announce('Waiting for you to enter the code and sign in…');
  tick();
}

/** The browser sign-in's page, to open by hand or copy when no browser window appeared. */
function showSignInPage(url) {
  if (state.signIn?.mode !== 'browser' || state.signIn.done) return;
  state.signIn.pageUrl = url;
  $('#sign-in-url').textContent = url;
  $('#sign-in-page').hidden = false;
}

function showDialogError(err) {
  const line = $('#sign-in-error');
  line.textContent = errorText(err);
  line.hidden = false;
}

async function startSignIn(mode, hint = null, opener = document.activeElement) {
  const dialog = $('#sign-in-dialog');
  if (state.signIn) {
    if (!dialog.open && !state.signIn.cancelled) dialog.showModal();
    announce('A sign-in is already in progress: finish or cancel it first.');
    return;
  }
  const session = {
    mode, hint, cancelled: false, done: false, expiresOn: null, userCode: null, opener: rememberFocus(opener),
  };
  state.signIn = session;
  setSignInRunning(true);
  hideError();
  openSignInDialog(mode, hint);
  announce(mode === 'device' ? 'Getting a device code…' : 'Waiting for you to sign in in your browser…');

  let account = null;
  let failure = null;
  try {
    if (mode === 'device') {
      const code = await api.startDeviceCode();
      if (!session.cancelled) {
        showDeviceCode(code);
        account = await api.finishDeviceCode();
      }
    } else {
      account = await api.signInBrowser(hint);
    }
  } catch (err) {
    failure = err;
  }

  session.done = true;
  state.signIn = null;
  setSignInRunning(false);
  if (dialog.open) dialog.close();
  focusIfLost(session.opener);

  if (failure === null && account) {
    announce(`Signed in as ${account.username}.`);
  } else if (failure === null || (session.cancelled && errorCode(failure) === 'sign_in_cancelled')) {
    announce('Sign-in cancelled.');
  } else {
    showError(failure);
    announce('Sign-in did not complete.');
  }
}

/** Cancels the running sign-in; the dialog closes when the pending call rejects. */
async function cancelSignIn() {
  const session = state.signIn;
  if (!session || session.done || session.cancelled) return;
  session.cancelled = true;
  const dialog = $('#sign-in-dialog');
  const cancel = $('#cancel-sign-in');
  cancel.disabled = true;
  cancel.textContent = 'Cancelling…';
  // Should the backend be slow to settle, do not hold the window hostage.
  setTimeout(() => { if (state.signIn === session && dialog.open) dialog.close(); }, 3000);
  try {
    await api.cancelSignIn();
    // Nothing was pending yet (device code still being fetched): the start call ends it.
  } catch (err) {
    if (session.done) return;
    session.cancelled = false;
    cancel.disabled = false;
    cancel.textContent = 'Cancel';
    if (!dialog.open) dialog.showModal();
    showDialogError(err);
  }
}

/** Makes the button `selector` copy `text()` (if any): "Copied" for two seconds, `message`
 * announced, `then()` after a copy. */
function copyButton(selector, text, message, then = () => {}) {
  const button = $(selector);
  const label = button.textContent;
  button.addEventListener('click', () => {
    const value = text();
    if (!value) return;
    whileBusy(button, async () => {
      try {
        await api.copyText(value);
      } catch (err) {
        showDialogError(err);
        return;
      }
      button.textContent = 'Copied';
      then();
      announce(message);
      setTimeout(() => { button.textContent = label; }, 2000);
    });
  });
}

function setUpSignIn() {
  for (const [id, accept] of [['#every-app-yes', true], ['#every-app-no', false]]) {
    $(id).addEventListener('click', (e) => answerEveryAppOffer(accept, e.currentTarget));
  }
  $('#sign-in-browser').addEventListener('click', (e) => startSignIn('browser', null, e.currentTarget));
  $('#sign-in-device').addEventListener('click', (e) => startSignIn('device', null, e.currentTarget));
  $('#cancel-sign-in').addEventListener('click', () => cancelSignIn());
  // Escape, or the dialog closing any other way while a sign-in runs, cancels it.
  $('#sign-in-dialog').addEventListener('close', () => {
    if (state.signIn && !state.signIn.done) cancelSignIn();
  });
  copyButton('#copy-user-code', () => state.signIn?.userCode ?? $('#user-code').textContent, 'Code copied.', () => {
    $('#sign-in-live').textContent = 'Code copied.';
  });
  copyButton('#copy-sign-in-url', () => state.signIn?.pageUrl,
    'Address copied: paste it into a browser on this computer.');
  $('#verification-link').addEventListener('click', (e) => {
    whileBusy(e.currentTarget, async () => {
      try {
        await api.openVerificationPage();
      } catch (err) {
        showDialogError(err);
      }
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Confirmation dialog (sign-out, secret rotation)

let confirmResolve = null;

/** Asks in #confirm-dialog; resolves true only on OK. */
function confirmAction({ title, text, ok }) {
  const dialog = $('#confirm-dialog');
  const previous = confirmResolve;
  confirmResolve = null;
  previous?.(false);
  $('#confirm-title').textContent = title;
  $('#confirm-text').textContent = text;
  $('#confirm-ok').textContent = ok;
  const memo = rememberFocus();
  return new Promise((resolve) => {
    confirmResolve = (value) => {
      resolve(value);
      if (!dialog.open) queueMicrotask(() => focusIfLost(memo));
    };
    if (!dialog.open) {
      dialog.returnValue = '';
      dialog.showModal();
    }
    $('#confirm-cancel').focus();
  });
}

function setUpConfirm() {
  const dialog = $('#confirm-dialog');
  dialog.addEventListener('close', () => {
    const resolve = confirmResolve;
    confirmResolve = null;
    resolve?.(dialog.returnValue === 'ok');
  });
}

// ---------------------------------------------------------------------------------------------
// Approval of programs

function programName(path) {
  return String(path).split('/').pop() || String(path);
}

function renderApprovals(approvals) {
  const questions = approvals.questions ?? [];
  const section = $('#approvals');
  section.hidden = questions.length === 0;
  const list = $('#approval-list');
  const focused = list.contains(document.activeElement)
    ? { id: document.activeElement.dataset.question, answer: document.activeElement.dataset.answer }
    : null;
  list.replaceChildren(...questions.map((q) => h('li', {
    class: 'approval', 'data-question': String(q.id), 'data-program': q.program.path,
  },
  h('p', { class: 'approval-what' },
    h('strong', {}, programName(q.program.path)), ' asks for a token',
    q.changed ? ' (it changed since you last decided on it)' : ''),
  h('p', { class: 'muted' }, h('code', {}, breakable(q.program.path)),
    ` · pid ${q.pids.join(', ')} · sha256 ${String(q.program.sha256).slice(0, 12)}`),
  h('p', { class: 'muted countdown', 'data-expires': String(q.expires_at) }, ''),
  h('div', { class: 'actions' }, ...ANSWERS.map(([answer, label]) => h('button', {
    type: 'button',
    class: answer === 'deny' ? 'danger' : (answer === 'allow_once' ? 'primary' : ''),
    'data-question': String(q.id),
    'data-answer': answer,
  }, label))))));
  if (focused) {
    const again = $(`button[data-question="${focused.id}"][data-answer="${focused.answer}"]`, list);
    (again ?? activeTab()).focus({ preventScroll: true });
  }

  $('#clients-mode').textContent = approvals.required
    ? 'Approval of new programs is on: a program not listed here asks before it gets a token.'
    : 'Approval of new programs is off: every program of yours gets tokens. Turn it on in Settings.';
  const clients = approvals.clients ?? [];
  $('#no-clients').hidden = clients.length > 0;
  $('#client-list').replaceChildren(...clients.map((c) => h('li', {
    class: 'client', 'data-program': c.path, 'data-verdict': c.verdict,
  },
  h('span', { class: `verdict verdict-${c.verdict}` }, c.verdict === 'allow' ? 'Allowed' : 'Denied'),
  ' ', h('code', {}, breakable(c.path)),
  h('span', { class: 'muted' }, ` · since ${formatLocalTime(c.decided)}`),
  ' ', h('button', { type: 'button', class: 'revoke', 'data-program': c.path }, 'Forget'))));
}

async function answerApproval(button) {
  const id = Number(button.dataset.question);
  await whileBusy(button, async () => {
    await api.answerApproval(id, button.dataset.answer);
    const label = ANSWERS.find(([a]) => a === button.dataset.answer)?.[1] ?? 'Answered';
    announce(`${label}: done.`);
    await refresh();
  });
}

function setUpApprovals() {
  $('#approval-list').addEventListener('click', (e) => {
    const button = e.target.closest('button[data-answer]');
    if (button) answerApproval(button);
  });
  $('#client-list').addEventListener('click', (e) => {
    const button = e.target.closest('button.revoke');
    if (!button) return;
    whileBusy(button, async () => {
      await api.revokeClient(button.dataset.program);
      announce(`${programName(button.dataset.program)} will be asked about again.`);
      await refresh();
    });
  });
}

// ---------------------------------------------------------------------------------------------
// Endpoint

function renderEndpoint(endpoint) {
  const status = $('#endpoint-status');
  const kind = ['running', 'starting', 'stopped'].includes(endpoint.status) ? endpoint.status : 'stopped';
  const label = { running: 'Running', starting: 'Starting…', stopped: 'Stopped' }[kind];
  status.dataset.status = kind;
  status.replaceChildren(...[
    h('span', { class: 'status-dot', 'aria-hidden': 'true' }),
    h('span', { class: 'status-label' }, label),
    endpoint.detail ? h('span', { class: 'status-detail' }, `: ${endpoint.detail}`) : null,
  ].filter(Boolean));
  $('#endpoint-url').textContent = endpoint.url || '—';
  $('#endpoint-served').textContent = Number(endpoint.requests_served ?? 0).toLocaleString();
  const previews = endpoint.env_preview ?? {};
  const lines = previews[$('#env-shell').value || endpoint.native_shell] ?? [];
  $('#env-lines').textContent = lines.length
    ? lines.join('\n')
    : 'No environment to show while the endpoint is not running.';
}

function setUpEndpoint() {
  $('#env-shell').addEventListener('change', () => renderEndpoint(state.overview?.endpoint ?? {}));
  $('#copy-env').addEventListener('click', (e) => whileBusy(e.currentTarget, async () => {
    await api.copyEnv($('#env-shell').value || null);
    announce("Copied: paste it into your shell or your IDE's environment.");
  }));
  $('#rotate-secret').addEventListener('click', (e) => whileBusy(e.currentTarget, async () => {
    const ok = await confirmAction({
      title: 'Rotate secret?',
      text: 'Rotate the endpoint secret? Tools configured with the current one get 401 until you copy the new environment.',
      ok: 'Rotate secret',
    });
    if (!ok) return;
    await api.rotateSecret();
    announce('Secret rotated. Copy the environment again and give it to your tools.');
  }));
}

// ---------------------------------------------------------------------------------------------
// Keyboard shortcuts: Ctrl+F finds (accounts or activity), Ctrl+W and Escape hide the window
// (tokentray goes on in the tray), Ctrl+Q quits. Escape in a dialog is the dialog's.

function setUpShortcuts() {
  document.addEventListener('keydown', (event) => {
    const ctrl = event.ctrlKey || event.metaKey;
    const key = event.key.toLowerCase();
    if (ctrl && key === 'f') {
      event.preventDefault();
      if (activeTab().id !== 'tab-activity') selectTab('accounts');
      const box = activeTab().id === 'tab-activity' ? $('#activity-filter') : $('#account-filter');
      $('#account-tools').hidden = false;
      box.focus();
      box.select();
    } else if (ctrl && key === 'w') {
      event.preventDefault();
      api.hideWindow().catch(showError);
    } else if (ctrl && key === 'q') {
      event.preventDefault();
      api.quitApp().catch(showError);
    } else if (event.key === 'Escape' && !document.querySelector('dialog[open]')) {
      const box = event.target.closest?.('input[type="search"]');
      if (box && box.value) return; // Escape clears a search box first
      event.preventDefault();
      api.hideWindow().catch(showError);
    }
  });
}

// ---------------------------------------------------------------------------------------------
// Activity

/** Whether `entry` has `needle` (lower case) in its program, account, scopes or route. */
function activityMatches(entry, needle) {
  return [entry.client, entry.account, entry.scopes, entry.route]
    .some((field) => String(field ?? '').toLowerCase().includes(needle));
}

/** `pid 4242 (/usr/bin/python3.11)` → `python3.11 (pid 4242)`; anything else as it is. */
function clientName(client) {
  const m = /^pid (\d+) \((.*)\)$/.exec(String(client));
  return m ? `${programName(m[2])} (pid ${m[1]})` : String(client);
}

function renderActivity(activity) {
  const needle = $('#activity-filter').value.trim().toLowerCase();
  const shown = needle ? activity.filter((e) => activityMatches(e, needle)) : activity;
  const empty = $('#no-activity');
  empty.hidden = shown.length > 0;
  empty.textContent = activity.length
    ? `Nothing served matches “${needle}”.`
    : 'Nothing served yet. Tools that ask the endpoint for a token appear here.';
  $('#activity-table').hidden = shown.length === 0;
  $('#activity-rows').replaceChildren(...shown.map((e) => h('tr', {},
    h('td', { title: fullFormat.format(new Date(e.at * 1000)) }, formatLocalTime(e.at)),
    h('td', { class: 'mono', title: e.client }, clientName(e.client)),
    h('td', {}, e.account),
    h('td', { class: 'mono' }, breakable(e.scopes)),
    h('td', { class: 'mono route' }, e.route),
    h('td', { class: 'num', title: e.count > 1 ? `since ${fullFormat.format(new Date(e.since * 1000))}` : null }, String(e.count)),
  )));
}

function setUpActivity() {
  $('#activity-filter').addEventListener('input', () => renderActivity(state.overview?.activity ?? []));
}

// ---------------------------------------------------------------------------------------------
// Settings

/** `TOKENTRAY_CLIENT_ID`, `client-id` or `client_id` → `client_id`. */
function settingKey(key) {
  return String(key).replace(/^TOKENTRAY_/i, '').toLowerCase().replaceAll('-', '_');
}

function overrideHint(key, fixed) {
  const hint = $(`#override-${key}`);
  if (!hint) return;
  hint.hidden = !fixed;
  hint.textContent = fixed ? `Set by TOKENTRAY_${key.toUpperCase()} in the environment.` : '';
}

/** Under the input of `key`: saved, but the running app still uses the old value. */
function pendingHint(key, pending) {
  const field = $(`#settings-form .field[data-key="${key}"]`);
  if (!field) return;
  let hint = $('.pending-hint', field);
  if (!hint) {
    hint = h('p', { class: 'pending-hint', id: `pending-${key}` }, 'Saved: applies after tokentray restarts.');
    field.append(hint);
  }
  hint.hidden = !pending;
}

/** The read-only parts (storage, config file): safe to redo on every overview. */
function renderSettingsInfo(settings) {
  const encrypted = Boolean(settings.encrypted);
  $('#store-backend').replaceChildren(...[
    h('p', { class: 'store-line' },
      'In use: ', h('strong', {}, settings.store || 'unknown'), ' · ',
      h('span', { class: encrypted ? 'enc enc-yes' : 'enc enc-no' }, encrypted ? 'encrypted' : 'NOT encrypted')),
    settings.store_persistence ? h('p', { class: 'muted' }, settings.store_persistence) : null,
  ].filter(Boolean));
  const overridden = new Set((settings.overridden ?? []).map(settingKey));
  overrideHint('store', overridden.has('store'));
  const configFile = $('#config-file');
  if (settings.config_file) configFile.replaceChildren('Settings file: ', h('code', {}, settings.config_file));
  else configFile.replaceChildren();
}

/** Fills the form from `settings`: on first load, after a save, and on "Discard changes". */
function fillSettings(settings) {
  $('#set-authority').value = settings.authority ?? '';
  $('#set-tenant').value = settings.tenant ?? '';
  $('#set-client-id').value = settings.client_id ?? '';
  $('#set-redirect-ports').value = settings.redirect_ports ?? '';
  $('#set-port').value = settings.port ?? '';
  $('#set-start-at-login').checked = Boolean(settings.start_at_login);
  $('#set-plaintext').checked = Boolean(settings.plaintext);
  $('#set-require-approval').checked = Boolean(settings.require_approval);
  $('#set-every-app').checked = Boolean(settings.every_app);
  const blocked = $('#blocked-every_app');
  blocked.textContent = settings.every_app_blocked ? `Not yet: ${settings.every_app_blocked}.` : '';
  blocked.hidden = !settings.every_app_blocked;
  const overridden = new Set((settings.overridden ?? []).map(settingKey));
  const pending = new Set(settings.pending ?? []);
  for (const [key, selector] of Object.entries(SETTING_INPUTS)) {
    const fixed = overridden.has(key);
    $(selector).disabled = fixed;
    overrideHint(key, fixed);
    pendingHint(key, pending.has(key));
  }
  clearFieldErrors();
  updatePlaintextWarning();
  state.settingsFilled = true;
  setSettingsDirty(false);
}

function setSettingsDirty(dirty) {
  $('#revert-settings').disabled = !dirty;
}

function updatePlaintextWarning() {
  $('#plaintext-warning').hidden = !$('#set-plaintext').checked;
}

function clearFieldErrors() {
  for (const line of $$('#settings-form .field-error')) {
    line.hidden = true;
    line.textContent = '';
  }
  for (const input of $$('#settings-form [aria-invalid]')) input.removeAttribute('aria-invalid');
}

function readSettingsForm() {
  return {
    authority: $('#set-authority').value.trim(),
    tenant: $('#set-tenant').value.trim(),
    client_id: $('#set-client-id').value.trim(),
    redirect_ports: $('#set-redirect-ports').value.trim(),
    port: $('#set-port').value.trim(),
    start_at_login: $('#set-start-at-login').checked,
    plaintext: $('#set-plaintext').checked,
    require_approval: $('#set-require-approval').checked,
    every_app: $('#set-every-app').checked,
  };
}

/** Marks the input of setting `key` invalid with `message` under it, and focuses it. */
function markFieldError(key, message) {
  const line = $(`#err-${key}`);
  line.textContent = message;
  line.hidden = false;
  $(SETTING_INPUTS[key]).setAttribute('aria-invalid', 'true');
  $(SETTING_INPUTS[key]).focus();
  announce('One setting needs fixing: see the message under it.');
}

async function saveSettings(event) {
  event.preventDefault();
  const button = $('#save-settings');
  if (button.getAttribute('aria-disabled') === 'true') return;
  clearFieldErrors();
  const values = readSettingsForm();
  // The backend validates every value; an error naming a setting is shown under its input.
  await whileBusy(button, async () => {
    let saved;
    try {
      saved = await api.saveSettings(values);
    } catch (err) {
      if (err?.field && SETTING_INPUTS[err.field] && $(`#err-${err.field}`)) {
        // The refusal says what the "Not yet" hint said: one of them is enough.
        if (err.field === 'every_app') $('#blocked-every_app').hidden = true;
        markFieldError(err.field, err.message);
      } else {
        showError(err, 'settings');
      }
      return;
    }
    // Saved: an earlier error about the settings no longer applies.
    if ($('#error').dataset.from === 'settings') hideError();
    const settings = saved ?? {};
    if (state.overview) state.overview.settings = { ...state.overview.settings, ...settings };
    fillSettings(state.overview?.settings ?? settings);
    renderSettingsInfo(state.overview?.settings ?? settings);
    announce(settings.notice || 'Settings saved.');
  });
}

function setUpSettings() {
  const form = $('#settings-form');
  form.addEventListener('submit', saveSettings);
  form.addEventListener('input', () => setSettingsDirty(true));
  form.addEventListener('change', () => setSettingsDirty(true));
  $('#set-plaintext').addEventListener('change', updatePlaintextWarning);
  $('#revert-settings').addEventListener('click', () => {
    if (!state.overview?.settings) return;
    fillSettings(state.overview.settings);
    $('#set-authority').disabled ? $('#save-settings').focus() : $('#set-authority').focus();
    announce('Changes discarded.');
  });
}

// ---------------------------------------------------------------------------------------------
// Tray requests

/** The tray may name an account by home_account_id or by username; the hint is the username. */
async function usernameFor(account) {
  await ensureOverview();
  return findAccount(account)?.username ?? account;
}

async function onTray(payload) {
  const action = payload?.action;
  const account = payload?.account ?? null;
  switch (action) {
    case 'show':
      selectTab('accounts');
      break;
    case 'sign-in-browser':
      selectTab('accounts');
      startSignIn('browser', account ? await usernameFor(account) : null);
      break;
    case 'sign-in-device':
      selectTab('accounts');
      startSignIn('device');
      break;
    case 'sign-out':
      selectTab('accounts');
      if (account) confirmSignOut(account);
      break;
    default:
      break;
  }
}

// ---------------------------------------------------------------------------------------------

async function main() {
  setUpTabs();
  setUpAccounts();
  setUpSignIn();
  setUpConfirm();
  setUpApprovals();
  setUpEndpoint();
  setUpActivity();
  setUpShortcuts();
  setUpSettings();
  $('#dismiss-error').addEventListener('click', hideError);

  // Subscribe first so that no change between the first fetch and the subscription is missed.
  const changed = (event) => {
    if (event?.kind === 'sign_in_page') showSignInPage(event.url);
    refresh();
  };
  const subscribed = await Promise.allSettled([api.onChanged(changed), api.onTray(onTray)]);
  const failed = subscribed.find((result) => result.status === 'rejected');
  await refresh();
  if (failed && $('#error').hidden) showError(failed.reason);
  setInterval(tick, 1000);
}

main();
