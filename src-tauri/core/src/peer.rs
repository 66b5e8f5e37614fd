//! Who is on the other end of a loopback TCP connection: the owner of the peer's socket,
//! found before a byte of the request is read, and, for the audit, the process holding it.
//!
//! - Linux: the kernel looks the peer's socket up by its exact 4-tuple (`NETLINK_SOCK_DIAG`,
//!   `SOCK_DIAG_BY_FAMILY` without `NLM_F_DUMP`: one socket, constant time, whatever the number
//!   of sockets on the host) and answers its owner's uid and inode; if sock_diag is unavailable,
//!   `/proc/net/tcp{,6}` is read instead (linear in the sockets). The process is then the one
//!   holding `socket:[inode]` in `/proc/*/fd`: a scan of every process, so it runs only for
//!   connections that were served a token, on a blocking thread, cached per inode. Verified by
//!   the tests here and the endpoint's black-box tests.
//! - macOS ([`macos`]): libproc finds the process holding the socket with that 4-tuple, and its
//!   uid is compared with ours. Type-checked only (see the module for what is tested).
//! - Windows ([`windows`]): `GetExtendedTcpTable` names the pid owning the connection, and its
//!   token's user SID is compared with ours. Type-checked only.
//! - Other systems: [`admits`] answers [`Admission::Unchecked`]: the secret decides alone.
//!
//! A connection whose process cannot be identified is refused on all three.

#[cfg(any(target_os = "macos", test))]
mod macos;
#[cfg(any(windows, test))]
mod windows;

use std::net::SocketAddr;

/// The peer's socket: its owner, and what names the process holding it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct PeerSocket {
    /// Who owns it: the uid (Linux, macOS); on Windows, which names users by SID, the pid of
    /// the process holding it.
    pub owner: u32,
    /// What [`process_of`] takes: the socket's inode on Linux (it names the socket in
    /// `/proc/PID/fd`), the pid of the process holding it on macOS and Windows.
    pub handle: u64,
}

/// Whether a connection from `peer` to our `local` address may be served: on Linux, macOS and
/// Windows only when the peer's socket belongs to this process's user (a socket that cannot be
/// found is refused); elsewhere always (see the module doc). Blocking (one netlink round trip on
/// Linux, a process scan on macOS, a table read on Windows): call it on a blocking thread.
pub(crate) fn admits(peer: SocketAddr, local: SocketAddr) -> Admission {
    #[cfg(target_os = "linux")]
    {
        let me = rustix::process::getuid().as_raw();
        match socket_of(peer, local) {
            Some(s) if s.owner == me => Admission::Own(s),
            Some(s) => Admission::OtherUser(s.owner),
            None => Admission::Unknown,
        }
    }
    #[cfg(target_os = "macos")]
    {
        let me = rustix::process::getuid().as_raw();
        let Some(pid) = macos::holder(peer, local) else {
            return Admission::Unknown;
        };
        match macos::uid(pid) {
            Some(uid) if uid == me => Admission::Own(PeerSocket {
                owner: uid,
                handle: pid.into(),
            }),
            Some(uid) => Admission::OtherUser(uid),
            None => Admission::Unknown,
        }
    }
    #[cfg(windows)]
    {
        let Some(pid) = windows::holder(peer, local) else {
            return Admission::Unknown;
        };
        match windows::same_user(pid) {
            Some(true) => Admission::Own(PeerSocket {
                owner: pid,
                handle: pid.into(),
            }),
            Some(false) => Admission::OtherUser(pid),
            None => Admission::Unknown,
        }
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    {
        let _ = (peer, local);
        Admission::Unchecked
    }
}

/// What [`admits`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Admission {
    /// This user's process: serve it.
    Own(PeerSocket),
    /// Another user's (uid; on Windows the pid of that user's process): refuse without
    /// reading.
    OtherUser(u32),
    /// The peer's socket is not found (gone already, or no way to ask): refuse.
    Unknown,
    /// This system cannot tell (not Linux, macOS or Windows): the secret decides alone.
    #[cfg_attr(
        any(target_os = "linux", target_os = "macos", windows),
        allow(dead_code)
    )]
    Unchecked,
}

impl Admission {
    /// Whether the connection is served.
    pub(crate) fn allowed(self) -> bool {
        matches!(self, Self::Own(_) | Self::Unchecked)
    }

    /// What names the peer's process for [`process_of`] (see [`PeerSocket::handle`]), when
    /// known.
    pub(crate) fn handle(self) -> Option<u64> {
        match self {
            Self::Own(s) => Some(s.handle),
            _ => None,
        }
    }
}

/// The socket of the local process connected from `peer` to our `local` address.
#[cfg(target_os = "linux")]
pub(crate) fn socket_of(peer: SocketAddr, local: SocketAddr) -> Option<PeerSocket> {
    match sock_diag::lookup(peer, local) {
        Ok(found) => found,
        // No sock_diag (an old or restricted kernel): the socket tables.
        Err(_) => proc_net_tcp(peer, local),
    }
}

/// A process on the other end of a connection: what the audit names and what approval
/// (`crate::approval`) decides on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Process {
    /// Its pid.
    pub pid: u32,
    /// Its executable as the OS names it; `None` when it cannot be read (another user's, or
    /// gone).
    pub exe: Option<std::path::PathBuf>,
    /// When it started (Linux: clock ticks after boot, `/proc/PID/stat` field 22; macOS:
    /// microseconds since the epoch; Windows: its creation time in 100 ns units since 1601).
    /// With the pid it names this process and not a later one that reuses the pid.
    pub started: Option<u64>,
}

impl Process {
    /// Opens the executable the process runs, for hashing its content: on Linux
    /// `/proc/PID/exe`, the very file mapped even if its path was replaced since; elsewhere
    /// the path.
    pub(crate) fn open_image(&self) -> std::io::Result<std::fs::File> {
        #[cfg(target_os = "linux")]
        {
            std::fs::File::open(format!("/proc/{}/exe", self.pid))
        }
        #[cfg(not(target_os = "linux"))]
        {
            match &self.exe {
                Some(exe) => std::fs::File::open(exe),
                None => Err(std::io::ErrorKind::NotFound.into()),
            }
        }
    }
}

impl std::fmt::Display for Process {
    /// `pid N (exe)`, or `pid N` when the executable is unknown.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.exe {
            Some(exe) => write!(f, "pid {} ({})", self.pid, exe.display()),
            None => write!(f, "pid {}", self.pid),
        }
    }
}

/// The process holding the peer's socket, by its [`PeerSocket::handle`]: the socket's inode on
/// Linux, the pid on macOS and Windows.
pub(crate) fn process_of(handle: u64) -> Option<Process> {
    #[cfg(target_os = "linux")]
    let pid = holder(handle)?;
    #[cfg(not(target_os = "linux"))]
    let pid = u32::try_from(handle).ok()?;
    Some(Process {
        pid,
        exe: executable(pid),
        started: started(pid),
    })
}

/// The running process `pid`, if this system says it runs: the peer a Unix socket's
/// credentials name (and the tests' stand-in for a peer).
#[cfg(unix)]
pub(crate) fn process(pid: u32) -> Option<Process> {
    Some(Process {
        pid,
        started: Some(started(pid)?),
        exe: executable(pid),
    })
}

/// The executable the process `pid` runs, as the OS names it.
pub(crate) fn executable(pid: u32) -> Option<std::path::PathBuf> {
    #[cfg(target_os = "linux")]
    {
        std::fs::read_link(format!("/proc/{pid}/exe")).ok()
    }
    #[cfg(target_os = "macos")]
    {
        macos::executable(pid)
    }
    #[cfg(windows)]
    {
        windows::executable(pid)
    }
    #[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
    {
        let _ = pid;
        None
    }
}

#[cfg(target_os = "macos")]
use macos::started;
#[cfg(windows)]
use windows::started;
#[cfg(windows)]
pub(crate) use windows::{running, with_own_sid};
#[cfg(not(any(target_os = "linux", target_os = "macos", windows)))]
fn started(_: u32) -> Option<u64> {
    None
}

/// Field 22 of `/proc/PID/stat` (start time), read after the command name, which may hold
/// spaces and parentheses.
#[cfg(target_os = "linux")]
fn started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let after_name = &stat[stat.rfind(')')? + 1..];
    // After the name come field 3 (state) onwards: the start time is the 20th of those.
    after_name.split_whitespace().nth(19)?.parse().ok()
}

/// `/proc/net/tcp{,6}`: the row whose local address is `peer` and remote is `local`.
#[cfg(target_os = "linux")]
fn proc_net_tcp(peer: SocketAddr, local: SocketAddr) -> Option<PeerSocket> {
    fn hex(a: SocketAddr) -> String {
        match a {
            SocketAddr::V4(a) => format!(
                "{:08X}:{:04X}",
                u32::from_le_bytes(a.ip().octets()),
                a.port()
            ),
            SocketAddr::V6(a) => {
                let words: String = a
                    .ip()
                    .octets()
                    .chunks(4)
                    .map(|w| format!("{:08X}", u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
                    .collect();
                format!("{words}:{:04X}", a.port())
            }
        }
    }
    let table = if peer.is_ipv4() {
        "/proc/net/tcp"
    } else {
        "/proc/net/tcp6"
    };
    let (want_local, want_remote) = (hex(peer), hex(local));
    let text = std::fs::read_to_string(table).ok()?;
    text.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let matches =
            cols.get(1) == Some(&want_local.as_str()) && cols.get(2) == Some(&want_remote.as_str());
        matches
            .then(|| {
                Some(PeerSocket {
                    owner: cols.get(7)?.parse().ok()?,
                    handle: cols.get(9)?.parse().ok()?,
                })
            })
            .flatten()
            // A closed socket in TIME_WAIT shows uid 0 and inode 0: it has no owner any more.
            .filter(|s| s.handle != 0)
    })
}

/// The pid holding `socket:[inode]`. The newest processes are searched first: a tool that just
/// connected (a CLI, a credential helper) was most likely started last, and each process
/// searched costs a read of every link in its `fd` directory (other users' are refused at once).
#[cfg(target_os = "linux")]
fn holder(inode: u64) -> Option<u32> {
    let needle = format!("socket:[{inode}]");
    let mut pids: Vec<u32> = std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse().ok())
        .collect();
    pids.sort_unstable_by(|a, b| b.cmp(a));
    pids.into_iter().find(|pid| {
        std::fs::read_dir(format!("/proc/{pid}/fd")).is_ok_and(|fds| {
            fds.flatten().any(|fd| {
                std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == needle.as_str())
            })
        })
    })
}

/// One exact socket lookup over `NETLINK_SOCK_DIAG` (linux/inet_diag.h).
#[cfg(target_os = "linux")]
mod sock_diag {
    use std::net::{IpAddr, SocketAddr};
    use std::time::Duration;

    use rustix::net::{
        AddressFamily, RecvFlags, SendFlags, SocketType, netlink, recv, send, sockopt,
    };

    use super::PeerSocket;

    const SOCK_DIAG_BY_FAMILY: u16 = 20;
    const NLMSG_ERROR: u16 = 2;
    const NLM_F_REQUEST: u16 = 1;
    const IPPROTO_TCP: u8 = 6;
    const TCP_TIME_WAIT: u8 = 6;
    const HEADER: usize = 16;
    /// `struct inet_diag_msg`: uid at 64, inode at 68, 72 bytes in all.
    const MSG_LEN: usize = 72;

    /// The socket from `peer` to `local`; `Ok(None)` when the kernel has none; `Err` when
    /// sock_diag cannot be used at all.
    pub(super) fn lookup(
        peer: SocketAddr,
        local: SocketAddr,
    ) -> std::io::Result<Option<PeerSocket>> {
        let fd = rustix::net::socket(
            AddressFamily::NETLINK,
            SocketType::DGRAM,
            Some(netlink::SOCK_DIAG),
        )?;
        sockopt::set_socket_timeout(
            &fd,
            sockopt::Timeout::Recv,
            Some(Duration::from_millis(500)),
        )?;
        send(&fd, &request(peer, local), SendFlags::empty())?;
        let mut answer = [0u8; 512];
        let n = recv(&fd, &mut answer, RecvFlags::empty())?.0;
        Ok(parse(answer.get(..n).unwrap_or_default()))
    }

    /// `nlmsghdr` + `inet_diag_req_v2` for the socket whose source is `peer` and destination
    /// `local` (the kernel's `inet_diag_find_one_icsk`).
    fn request(peer: SocketAddr, local: SocketAddr) -> Vec<u8> {
        let (family, src, dst) = match (peer.ip(), local.ip()) {
            (IpAddr::V4(p), IpAddr::V4(l)) => (2u8, pad(&p.octets()), pad(&l.octets())),
            (p, l) => (10u8, v6(p), v6(l)),
        };
        let mut m = Vec::with_capacity(HEADER + 56);
        let len = u32::try_from(HEADER + 56).unwrap_or(u32::MAX);
        m.extend(len.to_ne_bytes());
        m.extend(SOCK_DIAG_BY_FAMILY.to_ne_bytes());
        m.extend(NLM_F_REQUEST.to_ne_bytes());
        m.extend(1u32.to_ne_bytes()); // sequence
        m.extend(0u32.to_ne_bytes()); // port id: the kernel assigns
        m.extend([family, IPPROTO_TCP, 0, 0]);
        m.extend(u32::MAX.to_ne_bytes()); // every TCP state
        m.extend(peer.port().to_be_bytes());
        m.extend(local.port().to_be_bytes());
        m.extend(src);
        m.extend(dst);
        m.extend(0u32.to_ne_bytes()); // any interface
        m.extend([0xff; 8]); // INET_DIAG_NOCOOKIE
        m
    }

    fn pad(v4: &[u8; 4]) -> [u8; 16] {
        let mut out = [0u8; 16];
        out[..4].copy_from_slice(v4);
        out
    }

    fn v6(ip: IpAddr) -> [u8; 16] {
        match ip {
            IpAddr::V6(a) => a.octets(),
            IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
        }
    }

    fn parse(answer: &[u8]) -> Option<PeerSocket> {
        let kind = u16::from_ne_bytes(answer.get(4..6)?.try_into().ok()?);
        if kind == NLMSG_ERROR || kind != SOCK_DIAG_BY_FAMILY {
            return None;
        }
        let msg = answer.get(HEADER..HEADER + MSG_LEN)?;
        // A closed socket waiting out TIME_WAIT has no owner any more (uid 0, inode 0).
        if msg.get(1) == Some(&TCP_TIME_WAIT) {
            return None;
        }
        let word = |at: usize| -> Option<u32> {
            Some(u32::from_ne_bytes(msg.get(at..at + 4)?.try_into().ok()?))
        };
        Some(PeerSocket {
            owner: word(64)?,
            handle: u64::from(word(68)?),
        })
        .filter(|s| s.handle != 0)
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn finds_this_users_process_behind_a_loopback_connection() {
        for host in ["127.0.0.1:0", "[::1]:0"] {
            let Ok(listener) = std::net::TcpListener::bind(host) else {
                continue; // no IPv6 loopback here
            };
            let local = listener.local_addr().unwrap();
            let client = std::net::TcpStream::connect(local).unwrap();
            let (_server_side, peer) = listener.accept().unwrap();
            assert_eq!(peer, client.local_addr().unwrap());
            let by_kernel = sock_diag::lookup(peer, local).unwrap().expect("sock_diag");
            assert_eq!(Some(by_kernel), proc_net_tcp(peer, local), "{host}");
            assert_eq!(by_kernel.owner, rustix::process::getuid().as_raw());
            assert_eq!(admits(peer, local), Admission::Own(by_kernel));
            let who = process_of(by_kernel.handle).expect("the holder is found");
            assert_eq!(who.pid, std::process::id());
            assert_eq!(who.exe, std::env::current_exe().ok(), "{host}");
            assert!(who.started.is_some_and(|t| t > 0), "{who:?}");
            assert_eq!(process_of(by_kernel.handle), Some(who.clone()), "stable");
            // No such connection: refused.
            let nobody = SocketAddr::new(peer.ip(), 1);
            assert_eq!(admits(nobody, local), Admission::Unknown, "{host}");
        }
    }
}
