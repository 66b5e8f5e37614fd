//! Which local process is on the other end of a loopback TCP connection, for the audit log.
//!
//! Linux: the peer's socket is found in `/proc/net/tcp{,6}` by its address (our peer address is
//! its local address), then the process holding that socket inode in `/proc/*/fd`. This scans
//! every process's descriptors, so callers run it off the request path. Elsewhere: unknown.

use std::net::SocketAddr;

/// `pid N (exe)` of the process owning the local socket `peer`, when the OS tells.
pub fn describe(peer: SocketAddr) -> Option<String> {
    #[cfg(target_os = "linux")]
    {
        let inode = socket_inode(peer)?;
        let pid = owner(inode)?;
        let exe = std::fs::read_link(format!("/proc/{pid}/exe")).ok();
        Some(match exe {
            Some(exe) => format!("pid {pid} ({})", exe.display()),
            None => format!("pid {pid}"),
        })
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = peer;
        None
    }
}

#[cfg(target_os = "linux")]
fn socket_inode(peer: SocketAddr) -> Option<u64> {
    let (table, want) = match peer {
        SocketAddr::V4(a) => (
            "/proc/net/tcp",
            format!(
                "{:08X}:{:04X}",
                u32::from_le_bytes(a.ip().octets()),
                a.port()
            ),
        ),
        SocketAddr::V6(a) => {
            let o = a.ip().octets();
            let words: String = o
                .chunks(4)
                .map(|w| format!("{:08X}", u32::from_le_bytes([w[0], w[1], w[2], w[3]])))
                .collect();
            ("/proc/net/tcp6", format!("{words}:{:04X}", a.port()))
        }
    };
    let text = std::fs::read_to_string(table).ok()?;
    text.lines().skip(1).find_map(|line| {
        let cols: Vec<&str> = line.split_whitespace().collect();
        (cols.get(1) == Some(&want.as_str()))
            .then(|| cols.get(9)?.parse().ok())
            .flatten()
    })
}

#[cfg(target_os = "linux")]
fn owner(inode: u64) -> Option<u32> {
    let needle = format!("socket:[{inode}]");
    std::fs::read_dir("/proc")
        .ok()?
        .flatten()
        .find_map(|proc_dir| {
            let pid: u32 = proc_dir.file_name().to_str()?.parse().ok()?;
            let fds = std::fs::read_dir(proc_dir.path().join("fd")).ok()?;
            fds.flatten()
                .any(|fd| {
                    std::fs::read_link(fd.path()).is_ok_and(|l| l.as_os_str() == needle.as_str())
                })
                .then_some(pid)
        })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    #[test]
    fn finds_this_process_behind_a_loopback_connection() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (_server_side, peer) = listener.accept().unwrap();
        assert_eq!(peer, client.local_addr().unwrap());
        let who = super::describe(peer).expect("the peer is found");
        assert!(
            who.starts_with(&format!("pid {} (", std::process::id())),
            "{who}"
        );
    }
}
