//! Windows: the process holding a TCP socket and whether it runs as this user.
//!
//! [`holder`] asks `GetExtendedTcpTable(TCP_TABLE_OWNER_PID_ALL)` (iphlpapi) for the IPv4 or
//! IPv6 connection table with each row's owning pid, and takes the row whose local address is
//! `peer` and remote address `local` (linear in the connections). [`same_user`] opens that
//! process (`OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION)`), its token (`OpenProcessToken`),
//! reads the token's user SID (`GetTokenInformation(TokenUser)`) and compares it with this
//! process's (`EqualSid`). Another user's process usually cannot even be opened: that is
//! "unknown", refused all the same (fail closed).
//!
//! Verified how: the table parsing is unit-tested on Linux against buffers laid out as
//! `MIB_TCPTABLE_OWNER_PID` / `MIB_TCP6TABLE_OWNER_PID`; the FFI calls are type-checked for
//! `x86_64-pc-windows-gnu` only, never run here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `MIB_TCPROW_OWNER_PID`: state, local address, local port, remote address, remote port,
/// pid (DWORDs; addresses and ports in network byte order).
const ROW4_LEN: usize = 24;
/// `MIB_TCP6ROW_OWNER_PID`: local address (16), scope, port, remote address (16), scope, port,
/// state, pid.
const ROW6_LEN: usize = 56;

/// The owning pid of the row from `peer` to `local` in a `MIB_TCP{,6}TABLE_OWNER_PID` (a DWORD
/// count, then the rows) of `peer`'s address family.
pub(super) fn owner_in_table(table: &[u8], peer: SocketAddr, local: SocketAddr) -> Option<u32> {
    let dword = |b: &[u8], at: usize| Some(u32::from_ne_bytes(b.get(at..at + 4)?.try_into().ok()?));
    let port = |b: &[u8], at: usize| Some(u16::from_be_bytes(b.get(at..at + 2)?.try_into().ok()?));
    let ip16 = |b: &[u8], at: usize| -> Option<[u8; 16]> { b.get(at..at + 16)?.try_into().ok() };
    let count = usize::try_from(dword(table, 0)?).ok()?;
    let rows = table.get(4..)?;
    let row_len = if peer.is_ipv4() { ROW4_LEN } else { ROW6_LEN };
    rows.chunks_exact(row_len).take(count).find_map(|row| {
        let (from, to, pid) = if peer.is_ipv4() {
            let v4 = |at: usize| -> Option<IpAddr> {
                let o: [u8; 4] = row.get(at..at + 4)?.try_into().ok()?;
                Some(IpAddr::V4(Ipv4Addr::from(o)))
            };
            (
                SocketAddr::new(v4(4)?, port(row, 8)?),
                SocketAddr::new(v4(12)?, port(row, 16)?),
                dword(row, 20)?,
            )
        } else {
            (
                SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip16(row, 0)?)), port(row, 20)?),
                SocketAddr::new(IpAddr::V6(Ipv6Addr::from(ip16(row, 24)?)), port(row, 44)?),
                dword(row, 52)?,
            )
        };
        // Compare without the IPv6 scope and flow info, which the table does not carry.
        let same = |a: SocketAddr, b: SocketAddr| a.ip() == b.ip() && a.port() == b.port();
        (same(from, peer) && same(to, local)).then_some(pid)
    })
}

#[cfg(windows)]
#[allow(unsafe_code)]
mod ffi {
    use std::net::SocketAddr;
    use std::os::windows::ffi::OsStringExt as _;

    use windows_sys::Win32::Foundation::{
        CloseHandle, ERROR_INSUFFICIENT_BUFFER, FILETIME, HANDLE, NO_ERROR, STILL_ACTIVE,
    };
    use windows_sys::Win32::NetworkManagement::IpHelper::{
        GetExtendedTcpTable, TCP_TABLE_OWNER_PID_ALL,
    };
    use windows_sys::Win32::Networking::WinSock::{AF_INET, AF_INET6};
    use windows_sys::Win32::Security::{
        EqualSid, GetTokenInformation, PSID, TOKEN_QUERY, TokenUser,
    };
    use windows_sys::Win32::System::Threading::{
        GetCurrentProcess, GetExitCodeProcess, GetProcessTimes, OpenProcess, OpenProcessToken,
        PROCESS_NAME_WIN32, PROCESS_QUERY_LIMITED_INFORMATION, QueryFullProcessImageNameW,
    };

    use super::owner_in_table;

    /// A handle closed on drop.
    struct Owned(HANDLE);

    impl Drop for Owned {
        fn drop(&mut self) {
            // SAFETY: the handle was opened by us and is closed once.
            unsafe { CloseHandle(self.0) };
        }
    }

    fn open(pid: u32) -> Option<Owned> {
        // SAFETY: plain call; a null handle is failure.
        let h = unsafe { OpenProcess(PROCESS_QUERY_LIMITED_INFORMATION, 0, pid) };
        (!h.is_null()).then_some(Owned(h))
    }

    /// The pid holding the connection from `peer` to `local`.
    pub(in crate::peer) fn holder(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
        let family = u32::from(if peer.is_ipv4() { AF_INET } else { AF_INET6 });
        let mut size = 0u32;
        // u32s: the table's DWORD alignment.
        let mut table: Vec<u32> = Vec::new();
        // The table may grow between the call that sizes it and the one that fills it.
        for _ in 0..4 {
            table.resize(usize::try_from(size).ok()? / 4 + 1, 0);
            size = u32::try_from(table.len() * 4).ok()?;
            // SAFETY: the buffer is `size` bytes, as passed; the call writes at most that.
            let status = unsafe {
                GetExtendedTcpTable(
                    table.as_mut_ptr().cast(),
                    &mut size,
                    0,
                    family,
                    TCP_TABLE_OWNER_PID_ALL,
                    0,
                )
            };
            match status {
                NO_ERROR => {
                    let bytes: Vec<u8> = table.iter().flat_map(|d| d.to_ne_bytes()).collect();
                    return owner_in_table(&bytes, peer, local);
                }
                ERROR_INSUFFICIENT_BUFFER => continue,
                _ => return None,
            }
        }
        None
    }

    /// The user SID of `process`'s token, as the bytes `GetTokenInformation(TokenUser)` wrote
    /// (the `TOKEN_USER` and the SID it points into).
    fn token_user(process: HANDLE) -> Option<Vec<u64>> {
        let mut token: HANDLE = std::ptr::null_mut();
        // SAFETY: `token` receives a handle, closed by `Owned`.
        if unsafe { OpenProcessToken(process, TOKEN_QUERY, &mut token) } == 0 {
            return None;
        }
        let token = Owned(token);
        let mut len = 0u32;
        // SAFETY: a null buffer asks for the length.
        unsafe { GetTokenInformation(token.0, TokenUser, std::ptr::null_mut(), 0, &mut len) };
        // u64s: TOKEN_USER holds a pointer.
        let mut buf = vec![0u64; usize::try_from(len).ok()?.div_ceil(8).max(1)];
        let size = u32::try_from(buf.len() * 8).ok()?;
        // SAFETY: the buffer is `size` bytes, as passed.
        let ok = unsafe {
            GetTokenInformation(token.0, TokenUser, buf.as_mut_ptr().cast(), size, &mut len)
        };
        (ok != 0).then_some(buf)
    }

    /// Runs `f` with this process's user SID (valid during the call).
    pub(crate) fn with_own_sid<T>(f: impl FnOnce(PSID) -> T) -> Option<T> {
        use windows_sys::Win32::Security::TOKEN_USER;
        // SAFETY: the pseudo-handle of this process needs no closing.
        let ours = token_user(unsafe { GetCurrentProcess() })?;
        // SAFETY: the buffer starts with the TOKEN_USER GetTokenInformation wrote, whose SID
        // pointer points into the same buffer, alive until the end of this function.
        let sid = unsafe { (*ours.as_ptr().cast::<TOKEN_USER>()).User.Sid };
        Some(f(sid))
    }

    /// Whether `pid` runs as the same Windows user as this process.
    pub(in crate::peer) fn same_user(pid: u32) -> Option<bool> {
        use windows_sys::Win32::Security::TOKEN_USER;
        let theirs = token_user(open(pid)?.0)?;
        // SAFETY: the pseudo-handle of this process needs no closing.
        let ours = token_user(unsafe { GetCurrentProcess() })?;
        // SAFETY: each buffer starts with the TOKEN_USER GetTokenInformation wrote, whose SID
        // pointer points into the same buffer, alive here.
        let equal = unsafe {
            let a = &*theirs.as_ptr().cast::<TOKEN_USER>();
            let b = &*ours.as_ptr().cast::<TOKEN_USER>();
            EqualSid(a.User.Sid, b.User.Sid)
        };
        Some(equal != 0)
    }

    /// The executable `pid` runs.
    pub(in crate::peer) fn executable(pid: u32) -> Option<std::path::PathBuf> {
        let process = open(pid)?;
        let mut name = vec![0u16; 32 * 1024];
        let mut len = u32::try_from(name.len()).ok()?;
        // SAFETY: `name` holds `len` UTF-16 units, as passed.
        let ok = unsafe {
            QueryFullProcessImageNameW(process.0, PROCESS_NAME_WIN32, name.as_mut_ptr(), &mut len)
        };
        if ok == 0 {
            return None;
        }
        name.truncate(usize::try_from(len).ok()?);
        Some(std::ffi::OsString::from_wide(&name).into())
    }

    /// When `pid` started (its creation time, 100 ns units since 1601).
    pub(in crate::peer) fn started(pid: u32) -> Option<u64> {
        let process = open(pid)?;
        let zero = FILETIME {
            dwLowDateTime: 0,
            dwHighDateTime: 0,
        };
        let (mut created, mut exited, mut kernel, mut user) = (zero, zero, zero, zero);
        // SAFETY: four FILETIMEs to write.
        let ok = unsafe {
            GetProcessTimes(process.0, &mut created, &mut exited, &mut kernel, &mut user)
        };
        (ok != 0)
            .then(|| u64::from(created.dwHighDateTime) << 32 | u64::from(created.dwLowDateTime))
    }

    /// Whether `pid` names a process that has not exited.
    pub(crate) fn running(pid: u32) -> bool {
        let Some(process) = open(pid) else {
            return false;
        };
        let mut code = 0u32;
        // SAFETY: one u32 to write.
        let ok = unsafe { GetExitCodeProcess(process.0, &mut code) };
        ok != 0 && i64::from(code) == i64::from(STILL_ACTIVE)
    }
}

#[cfg(windows)]
pub(super) use ffi::{executable, holder, same_user, started};
#[cfg(windows)]
pub(crate) use ffi::{running, with_own_sid};

#[cfg(test)]
mod tests {
    use super::*;

    fn row4(from: SocketAddr, to: SocketAddr, pid: u32) -> Vec<u8> {
        let (IpAddr::V4(f), IpAddr::V4(t)) = (from.ip(), to.ip()) else {
            unreachable!()
        };
        let mut r = Vec::new();
        r.extend(5u32.to_ne_bytes()); // MIB_TCP_STATE_ESTAB
        r.extend(f.octets());
        r.extend(u32::from(from.port().swap_bytes()).to_ne_bytes());
        r.extend(t.octets());
        r.extend(u32::from(to.port().swap_bytes()).to_ne_bytes());
        r.extend(pid.to_ne_bytes());
        r
    }

    fn row6(from: SocketAddr, to: SocketAddr, pid: u32) -> Vec<u8> {
        let (IpAddr::V6(f), IpAddr::V6(t)) = (from.ip(), to.ip()) else {
            unreachable!()
        };
        let mut r = Vec::new();
        r.extend(f.octets());
        r.extend(0u32.to_ne_bytes());
        r.extend(u32::from(from.port().swap_bytes()).to_ne_bytes());
        r.extend(t.octets());
        r.extend(0u32.to_ne_bytes());
        r.extend(u32::from(to.port().swap_bytes()).to_ne_bytes());
        r.extend(5u32.to_ne_bytes());
        r.extend(pid.to_ne_bytes());
        r
    }

    fn table(rows: &[Vec<u8>]) -> Vec<u8> {
        let mut t = u32::try_from(rows.len()).unwrap().to_ne_bytes().to_vec();
        rows.iter().for_each(|r| t.extend(r));
        t
    }

    #[test]
    fn finds_the_owner_of_the_exact_connection() {
        let a = |s: &str| s.parse::<SocketAddr>().unwrap();
        let (server, client) = (a("127.0.0.1:8181"), a("127.0.0.1:50000"));
        let t = table(&[
            row4(server, client, 1), // our own end
            row4(a("127.0.0.1:50001"), server, 2),
            row4(client, server, 3),
        ]);
        assert_eq!(owner_in_table(&t, client, server), Some(3));
        assert_eq!(owner_in_table(&t, a("127.0.0.1:50002"), server), None);
        // A cut-short table: only whole rows are read.
        assert_eq!(
            owner_in_table(&t[..t.len() - ROW4_LEN], client, server),
            None
        );

        let (server, client) = (a("[::1]:8181"), a("[::1]:50000"));
        let t = table(&[row6(server, client, 1), row6(client, server, 7)]);
        assert_eq!(owner_in_table(&t, client, server), Some(7));
        assert_eq!(owner_in_table(&[], client, server), None);
    }
}
