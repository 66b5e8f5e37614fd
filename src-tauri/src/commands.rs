//! The window's commands: DTO in, one core call, DTO or [`UiError`] out. Each is registered in
//! [`handler`]; `ui/api.js` has one wrapper per command.

use std::sync::Arc;

use tauri::{AppHandle, Runtime, State};
use tokentray_core::Error;
use tokentray_core::approval::Answer;
use tokentray_core::cache::AccountInfo;
use tokentray_core::desktop::Shell;
use tokentray_core::desktop::{Desktop, DeviceCodeView, Overview, SettingsInput, SettingsView};

/// What a failed command sends the window: a stable code to branch on and a sentence that says
/// what to do next. Never a token: core errors carry none.
#[derive(Debug, serde::Serialize)]
pub struct UiError {
    code: &'static str,
    pub(crate) message: String,
    /// The setting the error is about (`authority`, `port`, ...), so the window marks its input.
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'static str>,
}

impl UiError {
    /// An error of the shell itself (core errors convert with `From`).
    pub(crate) fn new(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }
}

impl From<Error> for UiError {
    fn from(e: Error) -> Self {
        Self {
            code: e.code().as_str(),
            message: e.to_string(),
            field: e.setting().map(|s| s.key()),
        }
    }
}

type Reply<T> = Result<T, UiError>;
type Shared<'a> = State<'a, Arc<Desktop>>;

/// Registers every command on `builder` (the real app and the mock-runtime tests alike).
pub fn handler<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.invoke_handler(tauri::generate_handler![
        overview,
        sign_in_browser,
        start_device_code,
        finish_device_code,
        cancel_sign_in,
        open_verification_page,
        switch_account,
        sign_out,
        rotate_secret,
        copy_env,
        copy_text,
        copy_token,
        save_settings,
        answer_every_app_offer,
        answer_approval,
        revoke_client,
        hide_window,
        quit_app,
    ])
}

/// Hides the window (Ctrl+W or Escape): tokentray goes on in the tray, as when the window is
/// closed.
#[tauri::command]
fn hide_window<R: Runtime>(app: AppHandle<R>) -> Reply<()> {
    crate::hide_window(&app).map_err(|e| {
        UiError::new(
            "window_unavailable",
            format!("could not hide the window: {e}"),
        )
    })
}

/// Quits the app (Ctrl+Q in the window), as the tray's "Quit tokentray" does: the endpoint
/// stops cleanly and withdraws `endpoint.json`.
#[tauri::command]
fn quit_app<R: Runtime>(app: AppHandle<R>) {
    app.exit(0);
}

/// Accounts, tokens, endpoint and settings.
#[tauri::command]
fn overview(desktop: Shared<'_>) -> Reply<Overview> {
    Ok(desktop.overview()?)
}

/// Browser sign-in; resolves when the user finished in the browser.
#[tauri::command]
async fn sign_in_browser(desktop: Shared<'_>, account: Option<String>) -> Reply<AccountInfo> {
    Ok(desktop
        .sign_in_browser(account, tokentray_core::desktop::open_url)
        .await?)
}

/// Starts a device code sign-in.
#[tauri::command]
async fn start_device_code(desktop: Shared<'_>) -> Reply<DeviceCodeView> {
    Ok(desktop.start_device_code().await?)
}

/// Waits for the device code sign-in to complete.
#[tauri::command]
async fn finish_device_code(desktop: Shared<'_>) -> Reply<AccountInfo> {
    Ok(desktop.finish_device_code().await?)
}

/// Cancels the sign-in in progress.
#[tauri::command]
fn cancel_sign_in(desktop: Shared<'_>) {
    desktop.cancel_sign_in();
}

/// Opens the device code's verification page in the system browser.
#[tauri::command]
fn open_verification_page(desktop: Shared<'_>) -> Reply<()> {
    let uri = desktop.verification_uri().ok_or_else(|| {
        Error::invalid("verification page", "no device code sign-in is in progress")
    })?;
    let url = url_of(&uri)?;
    tokentray_core::desktop::open_url(&url)?;
    Ok(())
}

/// Makes `account` (home account id) the default.
#[tauri::command]
fn switch_account(desktop: Shared<'_>, account: String) -> Reply<AccountInfo> {
    Ok(desktop.switch(&account)?)
}

/// Signs out `account` (home account id).
#[tauri::command]
fn sign_out(desktop: Shared<'_>, account: String) -> Reply<()> {
    desktop.sign_out(Some(&account))?;
    Ok(())
}

/// Replaces the endpoint secret.
#[tauri::command]
fn rotate_secret(desktop: Shared<'_>) -> Reply<()> {
    Ok(desktop.rotate_secret()?)
}

/// Puts the environment lines for tools (with the secret), in `shell`'s syntax (the system's
/// usual shell if none), on the clipboard.
#[tauri::command]
fn copy_env<R: Runtime>(app: AppHandle<R>, desktop: Shared<'_>, shell: Option<Shell>) -> Reply<()> {
    let lines = desktop.env(shell.unwrap_or_else(Shell::native))?;
    crate::copy(&app, &lines)
}

/// Puts `text` (e.g. the device code's user code) on the clipboard.
#[tauri::command]
fn copy_text<R: Runtime>(app: AppHandle<R>, text: String) -> Reply<()> {
    crate::copy(&app, &text)
}

/// Puts the access token of `account` (home account id) for `scopes` in `tenant` on the
/// clipboard (refreshed first if it is about to expire), for 60 seconds.
#[tauri::command]
async fn copy_token<R: Runtime>(
    app: AppHandle<R>,
    desktop: Shared<'_>,
    account: String,
    scopes: String,
    tenant: String,
) -> Reply<()> {
    let token = desktop.token(&account, &scopes, &tenant).await?;
    crate::copy_secret(&app, token)
}

/// Validates and saves the settings.
#[tauri::command]
fn save_settings(desktop: Shared<'_>, settings: SettingsInput) -> Reply<SettingsView> {
    Ok(desktop.save_settings(settings)?)
}

/// Answers the offer to let every app use tokentray (`accept`: install the session environment).
#[tauri::command]
fn answer_every_app_offer(desktop: Shared<'_>, accept: bool) -> Reply<SettingsView> {
    Ok(desktop.answer_every_app_offer(accept)?)
}

/// Answers the approval question `id` with `answer` (`allow_once`, `always_allow`, `deny`).
#[tauri::command]
fn answer_approval(desktop: Shared<'_>, id: u64, answer: Answer) -> Reply<()> {
    Ok(desktop.answer_approval(id, answer)?)
}

/// Forgets the kept decision about the program at `path`.
#[tauri::command]
fn revoke_client(desktop: Shared<'_>, path: String) -> Reply<()> {
    desktop.revoke_client(&path)?;
    Ok(())
}

fn url_of(text: &str) -> Result<url::Url, Error> {
    url::Url::parse(text)
        .map_err(|e| Error::invalid("verification page", format!("{text:?} is not a URL ({e})")))
}

#[cfg(test)]
mod tests;
