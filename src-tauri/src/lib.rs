//! The tokentray desktop shell: a thin Tauri layer over `tokentray-core`.
//!
//! Only this crate depends on tauri. Everything it shows or does is a call into the core. The
//! app runs the same instance as `tokentray daemon` (loopback endpoint, background refresh,
//! `endpoint.json`) for as long as it runs, and withdraws it on exit.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokentray_core::config::Config;
use tokentray_core::paths::Paths;
use tokentray_core::persist::Store;
use tokentray_core::tokens::{Tokens, system_clock};

/// Starts the desktop app and blocks until it quits.
///
/// # Errors
/// If the token store cannot be opened, or the window system or webview cannot start (e.g. no
/// display).
pub fn run() -> anyhow::Result<()> {
    let paths = Paths::from_env()?;
    let config = Config::load(&paths.config_file())?;
    let store = Store::open(&paths, &config)?;
    let tokens = Arc::new(Tokens::new(config, store, system_clock())?);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let instance: Arc<Mutex<Option<tauri::async_runtime::JoinHandle<()>>>> = Arc::default();

    let started = instance.clone();
    let app = tauri::Builder::default()
        .setup(move |_app| {
            let (tokens, paths, mut stop) = (tokens.clone(), paths.clone(), stop_rx.clone());
            let handle = tauri::async_runtime::spawn(async move {
                let stopped = async move {
                    let _ = stop.wait_for(|stop| *stop).await;
                };
                if let Err(e) = tokentray_core::cli::run_instance(&paths, tokens, stopped).await {
                    tracing::error!("the token endpoint is not running: {e}");
                }
            });
            if let Ok(mut slot) = started.lock() {
                *slot = Some(handle);
            }
            Ok(())
        })
        .build(tauri::generate_context!())
        .map_err(|e| anyhow::anyhow!("the tokentray window could not start: {e}"))?;

    app.run(move |_app, event| {
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
