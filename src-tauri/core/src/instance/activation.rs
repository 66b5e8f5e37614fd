//! Socket activation (Linux): listening sockets passed in by systemd (`tokentray.socket`), or by
//! any launcher that speaks its protocol (`systemd-socket-activate`), instead of binding them.
//!
//! The protocol (sd_listen_fds(3)): `LISTEN_PID` is this process's id and `LISTEN_FDS` the
//! number N of descriptors passed, open at 3 to 3+N-1. tokentray takes them only if each is a
//! listening TCP socket on a loopback address (127.0.0.0/8 or `[::1]`): a socket unit edited
//! to listen on another interface is refused with the fix, never served. The descriptors are
//! made close-on-exec, so nothing tokentray starts (a browser) inherits them; the variables are
//! left as they are, which is harmless: `LISTEN_PID` names this process only.
//!
//! With a socket unit the port belongs to the user from login: a tool that connects before the
//! daemon runs waits for it instead of getting "connection refused", and the daemon starts on
//! that first connection.

use std::net::TcpListener;
use std::os::fd::{FromRawFd as _, OwnedFd, RawFd};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::{Error, Result};

/// The first descriptor passed (`SD_LISTEN_FDS_START`).
const FIRST: RawFd = 3;
/// More than any socket unit of tokentray's passes (it has two: IPv4 and IPv6).
const MAX: RawFd = 16;

/// Set once the passed descriptors are taken: each is owned by one listener, once.
static TAKEN: AtomicBool = AtomicBool::new(false);

/// The listeners passed to this process, if any were: `Ok(None)` when not socket-activated
/// (or when they were already taken, by an earlier call in this process).
///
/// # Errors
/// [`Error::InvalidInput`] if a passed descriptor is not a listening TCP socket on loopback.
pub(super) fn listeners() -> Result<Option<Vec<TcpListener>>> {
    let var = |name| std::env::var(name).ok();
    let Some(count) = passed(var("LISTEN_PID"), var("LISTEN_FDS"), std::process::id()) else {
        return Ok(None);
    };
    if TAKEN.swap(true, Ordering::SeqCst) {
        return Ok(None);
    }
    (FIRST..FIRST + count)
        .map(adopt)
        .collect::<Result<_>>()
        .map(Some)
}

/// How many descriptors were passed to process `me`, from `LISTEN_PID` and `LISTEN_FDS`.
fn passed(pid: Option<String>, fds: Option<String>, me: u32) -> Option<RawFd> {
    let for_me = pid?.trim().parse::<u32>().ok()? == me;
    let count = fds?.trim().parse::<RawFd>().ok()?;
    (for_me && (1..=MAX).contains(&count)).then_some(count)
}

/// Takes descriptor `fd` as a listener, after checking it is one tokentray may serve on.
#[allow(unsafe_code)]
fn adopt(fd: RawFd) -> Result<TcpListener> {
    let what = || format!("descriptor {fd} passed by socket activation (LISTEN_FDS)");
    let refuse = |detail: String| Error::InvalidInput {
        what: what(),
        detail,
    };
    // SAFETY: `LISTEN_PID` names this process, so by the protocol descriptors FIRST to
    // FIRST+LISTEN_FDS-1 were passed to it open and owned by nothing else in it; `TAKEN` makes
    // this the only adoption of each.
    let owned = unsafe { OwnedFd::from_raw_fd(fd) };
    rustix::io::fcntl_setfd(&owned, rustix::io::FdFlags::CLOEXEC)
        .map_err(|e| Error::io("adopt", what(), e.into()))?;
    let stream = rustix::net::sockopt::socket_type(&owned).ok();
    let listening = rustix::net::sockopt::socket_acceptconn(&owned).unwrap_or(false);
    if stream != Some(rustix::net::SocketType::STREAM) || !listening {
        return Err(refuse(
            "it is not a listening stream socket; the socket unit needs `ListenStream=`".into(),
        ));
    }
    let listener = TcpListener::from(owned);
    let local = listener
        .local_addr()
        .map_err(|_| refuse("it is not a TCP socket; use `ListenStream=127.0.0.1:PORT`".into()))?;
    if !local.ip().is_loopback() {
        return Err(refuse(format!(
            "it listens on {local}, which other machines can reach; tokentray serves only \
             loopback: set `ListenStream=127.0.0.1:{port}` and `ListenStream=[::1]:{port}` in \
             the socket unit (`systemctl --user edit tokentray.socket`)",
            port = local.port()
        )));
    }
    listener
        .set_nonblocking(true)
        .map_err(|e| Error::io("adopt", what(), e))?;
    Ok(listener)
}

#[cfg(test)]
mod tests {
    use super::passed;

    #[test]
    fn descriptors_count_only_when_passed_to_this_process() {
        let s = |v: &str| Some(v.to_string());
        assert_eq!(passed(s("42"), s("2"), 42), Some(2));
        assert_eq!(passed(s("42"), s("1"), 42), Some(1));
        assert_eq!(passed(s("41"), s("2"), 42), None, "meant for the parent");
        assert_eq!(passed(None, s("2"), 42), None);
        assert_eq!(passed(s("42"), None, 42), None);
        assert_eq!(passed(s("42"), s("0"), 42), None);
        assert_eq!(passed(s("42"), s("-1"), 42), None);
        assert_eq!(
            passed(s("42"), s("999"), 42),
            None,
            "not from a tokentray socket unit"
        );
        assert_eq!(passed(s("42"), s("two"), 42), None);
    }
}
