// The tokentray backend, as the window sees it: one async wrapper per Tauri command and the two
// event subscriptions. Rejections are the backend's `{code, message}` objects, passed through.

const UNAVAILABLE = {
  code: 'backend_unavailable',
  message: 'This window is not connected to tokentray. Close it and open it again from the tokentray tray icon.',
};

async function invoke(command, args) {
  const core = window.__TAURI__?.core;
  if (!core) throw UNAVAILABLE;
  return core.invoke(command, args);
}

async function listen(event, handler) {
  const events = window.__TAURI__?.event;
  if (!events) throw UNAVAILABLE;
  return events.listen(event, (e) => handler(e.payload));
}

/** Everything the window shows: `{now, accounts, endpoint, settings, approvals}`. */
export async function overview() {
  return invoke('overview');
}

/** Browser sign-in; `username` hints the account when signing one in again, else null. */
export async function signInBrowser(username) {
  return invoke('sign_in_browser', { account: username ?? null });
}

/** Starts a device code sign-in: `{user_code, verification_uri, expires_on, message}`. */
export async function startDeviceCode() {
  return invoke('start_device_code');
}

/** Resolves with the account once the device code sign-in is completed elsewhere. */
export async function finishDeviceCode() {
  return invoke('finish_device_code');
}

/** Makes the pending sign-in reject with `sign_in_cancelled`. */
export async function cancelSignIn() {
  return invoke('cancel_sign_in');
}

/** Opens the device code's verification page in the system browser. */
export async function openVerificationPage() {
  return invoke('open_verification_page');
}

/** Makes the account (home_account_id) the default; resolves with the account. */
export async function switchAccount(homeAccountId) {
  return invoke('switch_account', { account: homeAccountId });
}

/** Signs the account (home_account_id) out. */
export async function signOut(homeAccountId) {
  return invoke('sign_out', { account: homeAccountId });
}

/** Replaces the endpoint secret. */
export async function rotateSecret() {
  return invoke('rotate_secret');
}

/** Puts the full environment lines (with the real secret) on the clipboard, in `shell`'s
 * syntax (`posix`, `fish`, `powershell`; null: the system's usual shell). */
export async function copyEnv(shell = null) {
  return invoke('copy_env', { shell });
}

/** Puts the account's (home_account_id) token for `scopes` in `tenant` on the clipboard, for
 * 60 seconds. */
export async function copyToken(homeAccountId, scopes, tenant) {
  return invoke('copy_token', { account: homeAccountId, scopes, tenant });
}

/** Puts `text` on the clipboard. */
export async function copyText(text) {
  return invoke('copy_text', { text });
}

/** Saves the settings (snake_case keys, sent as written); resolves with the new settings. */
export async function saveSettings(s) {
  return invoke('save_settings', {
    settings: {
      authority: s.authority,
      tenant: s.tenant,
      client_id: s.client_id,
      redirect_ports: s.redirect_ports,
      port: s.port,
      start_at_login: s.start_at_login,
      plaintext: s.plaintext,
      require_approval: s.require_approval,
      every_app: s.every_app,
    },
  });
}

/** Answers the offer to let every app use tokentray; resolves with the new settings. */
export async function answerEveryAppOffer(accept) {
  return invoke('answer_every_app_offer', { accept });
}

/** Answers approval question `id`: `answer` is `allow_once`, `always_allow` or `deny`. */
export async function answerApproval(id, answer) {
  return invoke('answer_approval', { id, answer });
}

/** Forgets the kept decision about the program at `path`: it is asked about again. */
export async function revokeClient(path) {
  return invoke('revoke_client', { path });
}

/** Quits tokentray (the endpoint stops), as the tray's "Quit tokentray". */
export async function quitApp() {
  return invoke('quit_app');
}

/** Hides the window (tokentray keeps running in the tray). */
export async function hideWindow() {
  return invoke('hide_window');
}

/** Calls `handler(payload)` on every `tokentray://changed` event. */
export async function onChanged(handler) {
  return listen('tokentray://changed', handler);
}

/** Calls `handler({action, account})` when the tray menu asks the window for something. */
export async function onTray(handler) {
  return listen('tokentray://tray', handler);
}
