//! `tokentray`, the CLI and daemon: every subcommand, with no display and no GUI library.
//! Without a subcommand it starts the tray app, `tokentray-app`, installed next to it; started
//! as `az` (the shim's link) it is the `az` shim, as `docker-credential-tokentray` docker's
//! credential helper.

use std::process::ExitCode;

use clap::Parser as _;
use tokentray_core::cli::{self, Cli};

fn main() -> ExitCode {
    tokentray_core::heap::return_big_buffers();
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    if let Some(shim_args) = cli::az_shim_args(&argv) {
        return ExitCode::from(cli::run_az_shim(shim_args));
    }
    if let Some(helper_args) = cli::docker_helper_args(&argv) {
        return ExitCode::from(cli::run_docker_helper(helper_args));
    }
    let args = Cli::parse_from(argv);
    cli::init_logging(matches!(args.command, Some(cli::Command::Daemon)));
    let output = if args.json {
        cli::Output::Json
    } else {
        args.output
    };
    ExitCode::from(cli::run(args.command, output))
}
