//! `tokentray`: with a subcommand, the CLI (no display needed); without, the tray app.
//!
//! On Windows this one binary is a console program, for the CLI's sake; the tray app closes a
//! console made just for it (`tokentray::release_own_console`).

use std::process::ExitCode;

use clap::Parser as _;
use tokentray_core::cli::{self, Cli};

fn main() -> ExitCode {
    let args = Cli::parse();
    cli::init_logging();
    match args.command {
        Some(command) => ExitCode::from(cli::run(command, args.json)),
        None => {
            #[cfg(windows)]
            tokentray::release_own_console();
            match tokentray::run() {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    tracing::error!("{e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
