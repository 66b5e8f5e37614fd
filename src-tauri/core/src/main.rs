//! `tokentray`, the CLI and daemon: every subcommand, with no display and no GUI library.
//! Without a subcommand it starts the tray app, `tokentray-app`, installed next to it.

use std::process::ExitCode;

use clap::Parser as _;
use tokentray_core::cli::{self, Cli};

fn main() -> ExitCode {
    let args = Cli::parse();
    cli::init_logging();
    ExitCode::from(cli::run(args.command, args.json))
}
