//! `tokentray`: with a subcommand, the CLI (no display needed); without, the tray app.
#![cfg_attr(not(debug_assertions), windows_subsystem = "windows")]

use std::process::ExitCode;

use clap::Parser as _;
use tokentray_core::cli::{self, Cli};

fn main() -> ExitCode {
    let args = Cli::parse();
    cli::init_logging();
    match args.command {
        Some(command) => ExitCode::from(cli::run(command, args.json)),
        None => match tokentray::run() {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                tracing::error!("{e:#}");
                ExitCode::FAILURE
            }
        },
    }
}
