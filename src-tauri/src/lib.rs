//! The tokentray desktop shell: a thin Tauri layer over `tokentray-core`.
//!
//! Only this crate depends on tauri. Everything it shows or does is a call into the core.

/// Starts the desktop app and blocks until it quits.
///
/// # Errors
/// If the window system or webview cannot start (e.g. no display).
pub fn run() -> anyhow::Result<()> {
    tauri::Builder::default()
        .run(tauri::generate_context!())
        .map_err(|e| anyhow::anyhow!("the tokentray window could not start: {e}"))
}
