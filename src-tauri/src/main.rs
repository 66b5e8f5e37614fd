//! `tokentray-app`, the tray app. It takes no arguments; the CLI is `tokentray`, which starts
//! this binary when run without a subcommand.
// A GUI program on Windows: no console window of its own (release builds; debug builds keep
// one for their logs).
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::process::ExitCode;

fn main() -> ExitCode {
    tokentray_core::heap::return_big_buffers();
    tokentray_core::cli::init_logging(true);
    #[cfg(target_os = "linux")]
    route_gtk_messages();
    match tokentray::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}

/// GLib's and GTK's messages (a tray host without some feature, a theme, accessibility) are
/// for GTK's developers, not this app's users: they go to the log, at debug
/// (`TOKENTRAY_LOG=debug` shows them), and only GLib's fatal errors at error.
#[cfg(target_os = "linux")]
fn route_gtk_messages() {
    glib::log_set_writer_func(|level, fields| {
        let field = |key: &str| {
            fields
                .iter()
                .find(|f| f.key() == key)
                .and_then(glib::LogField::value_str)
                .unwrap_or_default()
        };
        let (domain, message) = (field("GLIB_DOMAIN"), field("MESSAGE"));
        match level {
            glib::LogLevel::Error => tracing::error!("{domain}: {message}"),
            _ => tracing::debug!("{domain}: {message}"),
        }
        glib::LogWriterOutput::Handled
    });
}
