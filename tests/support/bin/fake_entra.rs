//! `fake-entra`: runs the fake Entra ID authority until SIGINT/SIGTERM.
//!
//! Prints the base URL (e.g. `https://127.0.0.1:8443`) as the first stdout line once it accepts
//! connections; `--ca-out` has been written by then. Flags and the `/_fake/` API: tests/README.md.

use std::path::PathBuf;

use clap::Parser;
use tokentray_tests::fake_entra::{FakeConfig, FakeEntra, UserSpec};

/// A fake Microsoft Entra ID authority on loopback, for tests and demos.
#[derive(Debug, Parser)]
#[command(name = "fake-entra", version)]
struct Args {
    /// Port on 127.0.0.1 (0 picks a free one).
    #[arg(long, default_value_t = 0)]
    port: u16,
    /// Write the CA certificate (PEM) that clients must trust to this file.
    #[arg(long, value_name = "PATH")]
    ca_out: Option<PathBuf>,
    /// A user who can sign in (repeatable). oid, home tenant and name derive from the username.
    #[arg(long = "user", value_name = "USERNAME:PASSWORD")]
    users: Vec<UserSpec>,
    /// One home tenant id (GUID) for all users, instead of one per username domain.
    #[arg(long, value_name = "ID")]
    tenant: Option<String>,
    /// Access-token lifetime (expires_in) in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 3599)]
    access_token_lifetime: u64,
    /// Send refresh_in (half the lifetime) with every token (Entra sends it only with some).
    #[arg(long)]
    refresh_in: bool,
    /// A refresh token stops working once redeemed (Entra leaves it valid).
    #[arg(long)]
    strict_rotation: bool,
    /// Refresh-token lifetime in seconds (renewed on every rotation).
    #[arg(long, value_name = "SECS", default_value_t = 90 * 24 * 3600)]
    refresh_token_lifetime: u64,
    /// Device-code lifetime (expires_in) in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 900)]
    device_code_lifetime: u64,
    /// Minimum seconds between device-code polls (interval); faster polls get slow_down.
    #[arg(long, value_name = "SECS", default_value_t = 5)]
    device_code_interval: u64,
    /// Authorization-code lifetime in seconds.
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    code_lifetime: u64,
    /// A client id in the family of client ids (repeatable): gets foci "1", shares refresh tokens.
    #[arg(long = "foci-client", value_name = "ID")]
    foci_clients: Vec<String>,
    /// The address clients reach the fake at, when a proxy stands in front of it: every URL the
    /// fake gives out names it (the first stdout line still names the fake's own address).
    #[arg(long, value_name = "URL")]
    public_url: Option<String>,
    /// Entra's loop detection: more than N refreshes of one client, user and scope within 5
    /// minutes get AADSTS50196 (off by default; Entra's threshold is not published).
    #[arg(long, value_name = "N")]
    loop_limit: Option<u32>,
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let fake = FakeEntra::start(FakeConfig {
        port: args.port,
        users: args.users,
        tenant: args.tenant,
        access_token_lifetime: args.access_token_lifetime,
        refresh_in: args.refresh_in,
        strict_rotation: args.strict_rotation,
        refresh_token_lifetime: args.refresh_token_lifetime,
        device_code_lifetime: args.device_code_lifetime,
        device_code_interval: args.device_code_interval,
        code_lifetime: args.code_lifetime,
        foci_clients: args.foci_clients,
        public_url: args.public_url,
        loop_limit: args.loop_limit,
    })?;
    if let Some(path) = &args.ca_out {
        std::fs::write(path, fake.ca_pem())?;
        // Whatever the umask: tokentray refuses a CA file that others can write.
        #[cfg(unix)]
        std::fs::set_permissions(path, std::os::unix::fs::PermissionsExt::from_mode(0o644))?;
    }
    println!("https://{}", fake.addr());
    wait_for_signal()?;
    drop(fake);
    Ok(())
}

/// Blocks until SIGINT or (on Unix) SIGTERM.
fn wait_for_signal() -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        #[cfg(unix)]
        {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
            tokio::select! {
                r = tokio::signal::ctrl_c() => r,
                _ = term.recv() => Ok(()),
            }
        }
        #[cfg(not(unix))]
        {
            tokio::signal::ctrl_c().await
        }
    })
}
