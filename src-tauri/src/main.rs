//! `tokentray-app`, the tray app. It takes no arguments; the CLI is `tokentray`, which starts
//! this binary when run without a subcommand.
// A GUI program on Windows: no console window of its own (release builds; debug builds keep
// one for their logs).
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::process::ExitCode;

fn main() -> ExitCode {
    tokentray_core::cli::init_logging();
    match tokentray::run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e:#}");
            ExitCode::FAILURE
        }
    }
}
