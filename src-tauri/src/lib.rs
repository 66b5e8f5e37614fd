//! The tokentray desktop shell: a thin Tauri layer over `tokentray-core`.
//!
//! Only this crate depends on tauri. Everything it shows or does is a call into the core:
//! - [`commands`]: the window's commands (DTO in, core call, DTO or `{code, message}` out);
//! - [`tray`]: the tray icon and menu;
//! - here: the app's wiring. It runs the same instance as `tokentray daemon` (loopback endpoint,
//!   background refresh, `endpoint.json`) while it runs, pushes core events to the window
//!   (`tokentray://changed`), the tray and desktop notifications, hides the window on close, and
//!   stops the endpoint cleanly on Quit, SIGTERM or SIGINT. A second start focuses this one.

pub mod commands;
mod tray;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tauri::{AppHandle, Emitter as _, Manager as _, Runtime};
use tokentray_core::approval::Answer;
use tokentray_core::clock::system_clock;
use tokentray_core::desktop::{Desktop, Notices};
use tokentray_core::paths::Paths;
use tokentray_core::tokens::{Event, Tokens};

use crate::commands::UiError;

/// The event the window listens to: something changed, fetch the overview again.
pub const CHANGED: &str = "tokentray://changed";

/// The app's identity: tauri.conf.json's `identifier` (a test keeps them equal). The bundles
/// carry it: the macOS `.app` as its bundle id, and Tauri's Windows installers stamp it as the
/// AppUserModelID of the Start-menu shortcut they create (NSIS `SetLnkAppUserModelId`, MSI
/// `System.AppUserModel.ID`), which is what names and badges the app's notifications there.
#[cfg_attr(all(unix, not(target_os = "macos")), allow(dead_code))]
const APP_ID: &str = "dev.tokentray.app";

/// Starts the desktop app and blocks until it quits.
///
/// # Errors
/// If the token store cannot be opened, or the window system or webview cannot start (e.g. no
/// display). The reason is also shown as a desktop notification, since there may be no
/// terminal to read it in.
pub fn run() -> anyhow::Result<()> {
    let result = start();
    if let Err(e) = &result {
        notify_blocking("tokentray could not start".into(), format!("{e:#}"));
    }
    result
}

fn start() -> anyhow::Result<()> {
    let paths = Paths::from_env()?;
    let tokens = Arc::new(Tokens::open(&paths, system_clock())?);
    let desktop = Arc::new(Desktop::new(paths, tokens).starting_at_login());
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let instance: Arc<Mutex<Option<tauri::async_runtime::JoinHandle<()>>>> = Arc::default();

    let started = instance.clone();
    let shared = desktop.clone();
    // First, so a second start hands over before anything else is set up.
    let builder = single_instance(tauri::Builder::default())
        .plugin(tauri_plugin_clipboard_manager::init())
        .manage(desktop)
        .on_window_event(|window, event| {
            if let tauri::WindowEvent::CloseRequested { api, .. } = event {
                // The app lives in the tray: closing the window hides it.
                api.prevent_close();
                let _ = hide_window(window.app_handle());
            }
        })
        .setup(move |app| {
            let handle = app.handle().clone();
            tray::create(&handle, &shared)?;
            let endpoint = serve(handle.clone(), shared.clone(), stop_rx.clone());
            if let Ok(mut slot) = started.lock() {
                *slot = Some(endpoint);
            }
            tauri::async_runtime::spawn(forward(handle.clone(), shared.clone()));
            tauri::async_runtime::spawn(async move {
                tokentray_core::instance::shutdown_signal().await;
                handle.exit(0);
            });
            Ok(())
        });
    let app = commands::handler(builder)
        .build(tauri::generate_context!())
        .map_err(|e| anyhow::anyhow!("the tokentray window could not start: {e}"))?;

    app.run(move |app, event| {
        // macOS: a click on the Dock icon while the window is hidden brings it back.
        #[cfg(target_os = "macos")]
        if let tauri::RunEvent::Reopen { .. } = event {
            show_window(app);
        }
        #[cfg(not(target_os = "macos"))]
        let _ = app;
        if let tauri::RunEvent::Exit = event {
            let _ = stop_tx.send(true);
            let handle = instance.lock().ok().and_then(|mut slot| slot.take());
            if let Some(handle) = handle {
                // Stop serving and withdraw endpoint.json before the process ends.
                let _ = tauri::async_runtime::block_on(async {
                    tokio::time::timeout(Duration::from_secs(5), handle).await
                });
            }
        }
    });
    Ok(())
}

/// One app per user: a second start shows the first one's window and exits (the
/// single-instance plugin: the session bus on Linux, a session-local mutex on Windows).
#[cfg(not(target_os = "macos"))]
fn single_instance<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder.plugin(tauri_plugin_single_instance::init(|app, _args, _cwd| {
        show_window(app);
    }))
}

/// macOS: LaunchServices already keeps one instance of the bundled app per user, and a second
/// open of it reopens the first (`RunEvent::Reopen` shows the window). The plugin is not used:
/// its socket is one path in `/tmp` for every user of the machine, so another user could bind it
/// first and receive this user's second-start arguments and working directory, or block it. A
/// binary started directly (outside the bundle) is not guarded and follows the first one's
/// endpoint. Type-checked only.
#[cfg(target_os = "macos")]
fn single_instance<R: Runtime>(builder: tauri::Builder<R>) -> tauri::Builder<R> {
    builder
}

/// Runs the loopback endpoint until `stop`; its fate is shown in the window.
fn serve<R: Runtime>(
    app: AppHandle<R>,
    desktop: Arc<Desktop>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) -> tauri::async_runtime::JoinHandle<()> {
    tauri::async_runtime::spawn(async move {
        let stopped = async move {
            let _ = stop.wait_for(|stop| *stop).await;
        };
        let ready_app = app.clone();
        let ready = move |_: &tokentray_core::instance::Endpoint| {
            let _ = ready_app.emit(CHANGED, serde_json::json!({"kind": "endpoint_changed"}));
        };
        let approvals = desktop.approvals().clone();
        let paths = desktop.paths().clone();
        let run = tokentray_core::instance::run_or_follow(&paths, approvals, stopped, ready);
        if let Err(e) = run.await {
            tracing::error!("the token endpoint is not running: {e}");
            desktop.endpoint_stopped(e.to_string());
            let _ = app.emit(CHANGED, serde_json::json!({"kind": "endpoint_changed"}));
            notify("The token endpoint is not running".into(), e.to_string());
        }
    })
}

/// Pushes core events to the window, the tray and notifications.
async fn forward<R: Runtime>(app: AppHandle<R>, desktop: Arc<Desktop>) {
    use tokio::sync::broadcast::error::RecvError;
    let mut events = desktop.tokens().subscribe();
    let mut notices = Notices::default();
    loop {
        let event = match events.recv().await {
            Ok(event) => event,
            // Missed some: the window refetches everything anyway.
            Err(RecvError::Lagged(_)) => Event::AccountsChanged,
            Err(RecvError::Closed) => return,
        };
        let _ = app.emit(CHANGED, &event);
        if matches!(
            event,
            Event::AccountsChanged
                | Event::NeedsSignIn { .. }
                | Event::SignedIn { .. }
                | Event::RefreshFailed { .. }
                | Event::TokenRefreshed { .. }
        ) {
            tray::update(&app, &desktop);
        }
        if let Some(notice) = notices.notice(&event, desktop.tokens().now()) {
            match notice.question {
                Some(id) => ask(desktop.clone(), id, notice.summary, notice.body),
                None => notify(notice.summary, notice.body),
            }
        }
    }
}

/// Shows, unminimizes and focuses the window.
fn show_window<R: Runtime>(app: &AppHandle<R>) {
    if let Some(window) = app.get_webview_window("main") {
        #[cfg(target_os = "macos")]
        let _ = app.set_activation_policy(tauri::ActivationPolicy::Regular);
        let _ = window.show();
        let _ = window.unminimize();
        let _ = window.set_focus();
    }
}

/// Hides the window; tokentray goes on in the tray. On macOS the app is then menu-bar-only: its
/// Dock icon (and app switcher entry) is shown only while the window is ([`show_window`] brings
/// it back), as for other menu-bar apps. Type-checked only on macOS.
///
/// # Errors
/// If the window system refuses to hide the window.
fn hide_window<R: Runtime>(app: &AppHandle<R>) -> tauri::Result<()> {
    if let Some(window) = app.get_webview_window("main") {
        window.hide()?;
    }
    #[cfg(target_os = "macos")]
    app.set_activation_policy(tauri::ActivationPolicy::Accessory)?;
    Ok(())
}

/// Puts `text` on the clipboard.
fn copy<R: Runtime>(app: &AppHandle<R>, text: &str) -> Result<(), UiError> {
    use tauri_plugin_clipboard_manager::Clipboard;
    let clipboard = app
        .try_state::<Clipboard<R>>()
        .ok_or_else(|| UiError::new("clipboard_unavailable", "the clipboard is not available"))?;
    clipboard.write_text(text).map_err(|e| {
        UiError::new(
            "clipboard_unavailable",
            format!("could not use the clipboard ({e}); select the text and copy it yourself"),
        )
    })
}

/// How long a copied token stays on the clipboard.
const TOKEN_ON_CLIPBOARD: Duration = Duration::from_secs(60);

/// Puts a token on the clipboard and takes it off after [`TOKEN_ON_CLIPBOARD`], unless
/// something else was copied meanwhile.
fn copy_secret<R: Runtime>(
    app: &AppHandle<R>,
    secret: tokentray_core::secret::Secret,
) -> Result<(), UiError> {
    copy(app, secret.expose())?;
    let app = app.clone();
    tauri::async_runtime::spawn(async move {
        tokio::time::sleep(TOKEN_ON_CLIPBOARD).await;
        use tauri_plugin_clipboard_manager::Clipboard;
        if let Some(clipboard) = app.try_state::<Clipboard<R>>() {
            let still = clipboard
                .read_text()
                .is_ok_and(|now| secret.is(zeroize::Zeroizing::new(now).as_bytes()));
            if still {
                let _ = clipboard.write_text(String::new());
            }
        }
    });
    Ok(())
}

/// Notifications whose daemon has not answered yet; past this many, new ones are dropped.
const MAX_PENDING_NOTIFICATIONS: usize = 2;
static PENDING_NOTIFICATIONS: AtomicUsize = AtomicUsize::new(0);

/// Shows a desktop notification without waiting for it: a notification daemon that never
/// answers must not hang the app (notify-rust blocks until it replies).
fn notify(summary: String, body: String) {
    if PENDING_NOTIFICATIONS.fetch_add(1, Ordering::SeqCst) >= MAX_PENDING_NOTIFICATIONS {
        PENDING_NOTIFICATIONS.fetch_sub(1, Ordering::SeqCst);
        tracing::debug!("notification dropped: the notification daemon is not answering");
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("notify".into())
        .spawn(move || {
            show_notification(&summary, &body);
            PENDING_NOTIFICATIONS.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        PENDING_NOTIFICATIONS.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Shows the approval question `id` as a notification whose actions answer it, on its own
/// thread: it waits for a click (or the notification closing) for at most the question's life.
/// Where the notification server offers no actions, the window still asks.
fn ask(desktop: Arc<Desktop>, id: u64, summary: String, body: String) {
    let spawned = std::thread::Builder::new()
        .name("approval-notice".into())
        .spawn(move || {
            let mut notification = notification();
            notification
                .summary(&summary)
                .body(&body)
                .timeout(notify_rust::Timeout::Milliseconds(
                    u32::try_from(tokentray_core::approval::WAIT.as_millis()).unwrap_or(u32::MAX),
                ));
            for answer in Answer::ALL {
                notification.action(answer.id(), answer.label());
            }
            match notification.show() {
                #[cfg(all(unix, not(target_os = "macos")))]
                Ok(shown) => shown.wait_for_action(|action| {
                    if let Some(answer) = Answer::from_id(action) {
                        // Already answered in the window, or timed out: nothing to do.
                        let _ = desktop.answer_approval(id, answer);
                    }
                }),
                // No notification actions on this system: the window asks.
                #[cfg(not(all(unix, not(target_os = "macos"))))]
                Ok(_) => drop((desktop, id)),
                Err(e) => tracing::debug!("no approval notification ({e}): {summary}"),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!("could not show the approval notification: {e}");
    }
}

/// [`notify`], waiting at most 3 seconds for it (used when the app is about to exit).
fn notify_blocking(summary: String, body: String) {
    let (tx, rx) = std::sync::mpsc::channel();
    let spawned = std::thread::Builder::new()
        .name("notify".into())
        .spawn(move || {
            show_notification(&summary, &body);
            let _ = tx.send(());
        });
    if spawned.is_ok() {
        let _ = rx.recv_timeout(Duration::from_secs(3));
    }
}

fn show_notification(summary: &str, body: &str) {
    let shown = notification()
        .summary(summary)
        .body(body)
        .timeout(notify_rust::Timeout::Milliseconds(10_000))
        .show();
    if let Err(e) = shown {
        tracing::debug!("no desktop notification ({e}): {summary}");
    }
}

/// A notification from tokentray.
/// - macOS: it comes from the app's bundle ([`APP_ID`]), not from Finder; an unbundled dev build
///   stays with notify-rust's default.
/// - Windows: it carries [`APP_ID`] as its AppUserModelID when the app runs from where an
///   installer put it ([`installed`]), so Windows shows tokentray's name and icon, not
///   "Windows PowerShell" (notify-rust's default). A build run from cargo's `target` directory
///   keeps the default: Windows drops toasts whose id no shortcut registers. The same rule as
///   tauri-plugin-notification's. Type-checked only.
fn notification() -> notify_rust::Notification {
    #[cfg(target_os = "macos")]
    {
        static APP: std::sync::Once = std::sync::Once::new();
        APP.call_once(|| {
            let _ = notify_rust::set_application(APP_ID);
        });
    }
    let mut notification = notify_rust::Notification::new();
    notification.appname("tokentray");
    #[cfg(windows)]
    if std::env::current_exe().is_ok_and(|exe| installed(&exe)) {
        notification.app_id(APP_ID);
    }
    notification
}

/// Whether `exe` runs from where an installer put it rather than from a cargo build directory
/// (`target/debug`, `target/release`, or a cross target's `target/<triple>/<profile>`).
#[cfg_attr(not(windows), allow(dead_code))]
fn installed(exe: &std::path::Path) -> bool {
    let mut dirs = exe
        .ancestors()
        .skip(1)
        .take(3)
        .filter_map(std::path::Path::file_name);
    let profile = dirs.next();
    let built = matches!(profile.and_then(|p| p.to_str()), Some("debug" | "release"))
        && dirs.take(2).any(|d| d == "target");
    !built
}

#[cfg(test)]
mod tests;
