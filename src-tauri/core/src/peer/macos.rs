//! macOS: the process holding a TCP socket, through libproc (`<libproc.h>`, `<sys/proc_info.h>`).
//!
//! [`holder`] walks every process this user may inspect (`proc_listallpids`), lists its file
//! descriptors (`proc_pidinfo(PROC_PIDLISTFDS)`) and asks each socket for its addresses
//! (`proc_pidfdinfo(PROC_PIDFDSOCKETINFO)`), until one is the socket from `peer` to `local`:
//! linear in the processes and their descriptors, as `lsof -i` is. Another user's processes
//! refuse the listing unless we are root, so their sockets are simply not found (fail closed).
//! The process's owner is `proc_pidinfo(PROC_PIDTBSDINFO)`'s `pbi_uid`.
//!
//! `struct socket_fdinfo` is not in the `libc` crate: it is read as bytes at the offsets of
//! XNU's `sys/proc_info.h` (64-bit), which [`tests`] pin. Verified how: the parsing is
//! unit-tested on Linux against buffers laid out as that header; the FFI calls are type-checked
//! for `aarch64-apple-darwin` only, never run here.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

/// `sizeof(struct socket_fdinfo)`: `proc_fileinfo` (24) + `socket_info` (768).
const SOCKET_FDINFO_LEN: usize = 792;
/// `socket_fdinfo.psi.soi_kind` (`psi` starts at 24, `soi_kind` is at 232 in it).
const SOI_KIND: usize = 24 + 232;
/// `socket_fdinfo.psi.soi_proto`: an `in_sockinfo` (the first member of `tcp_sockinfo`).
const SOI_PROTO: usize = 24 + 240;
/// `soi_kind` of a TCP socket (`SOCKINFO_TCP`).
const SOCKINFO_TCP: i32 = 2;
/// In `in_sockinfo`: foreign port, local port (ints holding a port in network byte order),
/// the version flag, foreign and local addresses (`in4in6_addr` or `in6_addr`, 16 bytes each).
const INSI_FPORT: usize = 0;
const INSI_LPORT: usize = 4;
const INSI_VFLAG: usize = 24;
const INSI_FADDR: usize = 32;
const INSI_LADDR: usize = 48;
/// `insi_vflag` bits.
const INI_IPV4: u8 = 0x1;
const INI_IPV6: u8 = 0x2;

/// A TCP socket's local and foreign addresses from a `struct socket_fdinfo`; `None` for any
/// other kind of socket or a short buffer.
pub(super) fn tcp_addresses(info: &[u8]) -> Option<(SocketAddr, SocketAddr)> {
    if info.len() < SOCKET_FDINFO_LEN {
        return None;
    }
    let kind = i32::from_ne_bytes(info.get(SOI_KIND..SOI_KIND + 4)?.try_into().ok()?);
    if kind != SOCKINFO_TCP {
        return None;
    }
    let ini = info.get(SOI_PROTO..)?;
    let port = |at: usize| Some(u16::from_be_bytes(ini.get(at..at + 2)?.try_into().ok()?));
    let vflag = *ini.get(INSI_VFLAG)?;
    let addr = |at: usize| -> Option<IpAddr> {
        let raw: [u8; 16] = ini.get(at..at + 16)?.try_into().ok()?;
        if vflag & INI_IPV4 != 0 {
            // in4in6_addr: 12 bytes of padding, then the in_addr.
            Some(IpAddr::V4(Ipv4Addr::new(
                raw[12], raw[13], raw[14], raw[15],
            )))
        } else if vflag & INI_IPV6 != 0 {
            Some(IpAddr::V6(Ipv6Addr::from(raw)))
        } else {
            None
        }
    };
    let local = SocketAddr::new(addr(INSI_LADDR)?, port(INSI_LPORT)?);
    let foreign = SocketAddr::new(addr(INSI_FADDR)?, port(INSI_FPORT)?);
    Some((local, foreign))
}

#[cfg(target_os = "macos")]
#[allow(unsafe_code)]
mod ffi {
    use std::ffi::c_void;
    use std::net::SocketAddr;

    use super::{SOCKET_FDINFO_LEN, tcp_addresses};

    /// `PROC_PIDFDSOCKETINFO` (`sys/proc_info.h`; not in the libc crate).
    const PROC_PIDFDSOCKETINFO: i32 = 3;

    fn len_of<T>(n: usize) -> i32 {
        i32::try_from(n * std::mem::size_of::<T>()).unwrap_or(i32::MAX)
    }

    /// Every pid this process may see.
    fn pids() -> Vec<i32> {
        // SAFETY: a null buffer asks for the number of pids.
        let n = unsafe { libc::proc_listallpids(std::ptr::null_mut(), 0) };
        let Ok(n) = usize::try_from(n) else {
            return Vec::new();
        };
        // Room for processes started since.
        let mut pids = vec![0i32; n + 64];
        // SAFETY: the buffer holds `pids.len()` c_ints and its size in bytes is passed.
        let got = unsafe {
            libc::proc_listallpids(
                pids.as_mut_ptr().cast::<c_void>(),
                len_of::<i32>(pids.len()),
            )
        };
        pids.truncate(usize::try_from(got).unwrap_or(0));
        pids.retain(|&p| p > 0);
        pids
    }

    /// The file descriptors of `pid` that are sockets; empty when it cannot be inspected.
    fn socket_fds(pid: i32) -> Vec<i32> {
        let mut fds = vec![
            libc::proc_fdinfo {
                proc_fd: 0,
                proc_fdtype: 0
            };
            256
        ];
        loop {
            let size = len_of::<libc::proc_fdinfo>(fds.len());
            // SAFETY: the buffer holds `fds.len()` proc_fdinfo and its size in bytes is passed.
            let got = unsafe {
                libc::proc_pidinfo(pid, libc::PROC_PIDLISTFDS, 0, fds.as_mut_ptr().cast(), size)
            };
            let Ok(got) = usize::try_from(got) else {
                return Vec::new();
            };
            // A full buffer may have been cut short: ask again with more room.
            if got >= usize::try_from(size).unwrap_or(0) && fds.len() < 1 << 20 {
                fds.resize(
                    fds.len() * 4,
                    libc::proc_fdinfo {
                        proc_fd: 0,
                        proc_fdtype: 0,
                    },
                );
                continue;
            }
            fds.truncate(got / std::mem::size_of::<libc::proc_fdinfo>());
            return fds
                .into_iter()
                .filter(|f| i64::from(f.proc_fdtype) == i64::from(libc::PROX_FDTYPE_SOCKET))
                .map(|f| f.proc_fd)
                .collect();
        }
    }

    /// The local and foreign addresses of the TCP socket `fd` of `pid`.
    fn addresses(pid: i32, fd: i32) -> Option<(SocketAddr, SocketAddr)> {
        // u64s: the struct's 8-byte alignment. Room to spare: a kernel whose struct grew at
        // the end refuses a buffer smaller than its own, and the offsets read stay put.
        let mut buf = [0u64; 4 * SOCKET_FDINFO_LEN / 8];
        // SAFETY: the buffer is `len_of::<u64>(buf.len())` bytes, the size passed.
        let got = unsafe {
            libc::proc_pidfdinfo(
                pid,
                fd,
                PROC_PIDFDSOCKETINFO,
                buf.as_mut_ptr().cast(),
                len_of::<u64>(buf.len()),
            )
        };
        if usize::try_from(got).ok()? < SOCKET_FDINFO_LEN {
            return None;
        }
        let bytes: Vec<u8> = buf.iter().flat_map(|w| w.to_ne_bytes()).collect();
        tcp_addresses(&bytes)
    }

    /// The pid holding the socket whose local address is `peer` and foreign address `local`.
    pub(in crate::peer) fn holder(peer: SocketAddr, local: SocketAddr) -> Option<u32> {
        pids().into_iter().find_map(|pid| {
            socket_fds(pid)
                .into_iter()
                .any(|fd| addresses(pid, fd) == Some((peer, local)))
                .then(|| u32::try_from(pid).ok())
                .flatten()
        })
    }

    /// `pid`'s `proc_bsdinfo`: its uid and start time.
    fn bsd_info(pid: u32) -> Option<libc::proc_bsdinfo> {
        let pid = i32::try_from(pid).ok()?;
        // SAFETY: proc_bsdinfo is plain old data; all zeroes is a valid value.
        let mut info: libc::proc_bsdinfo = unsafe { std::mem::zeroed() };
        let size = len_of::<libc::proc_bsdinfo>(1);
        // SAFETY: `info` is one proc_bsdinfo and its size is passed.
        let got = unsafe {
            libc::proc_pidinfo(pid, libc::PROC_PIDTBSDINFO, 0, (&raw mut info).cast(), size)
        };
        (got == size).then_some(info)
    }

    /// The uid `pid` runs as.
    pub(in crate::peer) fn uid(pid: u32) -> Option<u32> {
        bsd_info(pid).map(|i| i.pbi_uid)
    }

    /// When `pid` started, in microseconds since the epoch.
    pub(in crate::peer) fn started(pid: u32) -> Option<u64> {
        bsd_info(pid).map(|i| i.pbi_start_tvsec * 1_000_000 + i.pbi_start_tvusec)
    }

    /// The executable `pid` runs.
    pub(in crate::peer) fn executable(pid: u32) -> Option<std::path::PathBuf> {
        use std::os::unix::ffi::OsStrExt as _;
        let pid = i32::try_from(pid).ok()?;
        let mut path = vec![0u8; libc::PROC_PIDPATHINFO_MAXSIZE as usize];
        // SAFETY: the buffer is `path.len()` bytes, the size passed.
        let got = unsafe {
            libc::proc_pidpath(
                pid,
                path.as_mut_ptr().cast(),
                u32::try_from(path.len()).ok()?,
            )
        };
        let len = usize::try_from(got).ok().filter(|&n| n > 0)?;
        path.truncate(len);
        Some(std::ffi::OsStr::from_bytes(&path).into())
    }
}

#[cfg(target_os = "macos")]
pub(super) use ffi::{executable, holder, started, uid};

#[cfg(test)]
mod tests {
    use super::*;

    /// A `socket_fdinfo` as `sys/proc_info.h` lays it out, for a TCP socket.
    fn fdinfo(local: SocketAddr, foreign: SocketAddr) -> Vec<u8> {
        let mut b = vec![0u8; SOCKET_FDINFO_LEN];
        b[SOI_KIND..SOI_KIND + 4].copy_from_slice(&SOCKINFO_TCP.to_ne_bytes());
        let ini = SOI_PROTO;
        b[ini + INSI_LPORT..ini + INSI_LPORT + 2].copy_from_slice(&local.port().to_be_bytes());
        b[ini + INSI_FPORT..ini + INSI_FPORT + 2].copy_from_slice(&foreign.port().to_be_bytes());
        for (at, ip) in [(INSI_LADDR, local.ip()), (INSI_FADDR, foreign.ip())] {
            let at = ini + at;
            match ip {
                IpAddr::V4(v4) => {
                    b[ini + INSI_VFLAG] = INI_IPV4;
                    b[at + 12..at + 16].copy_from_slice(&v4.octets());
                }
                IpAddr::V6(v6) => {
                    b[ini + INSI_VFLAG] = INI_IPV6;
                    b[at..at + 16].copy_from_slice(&v6.octets());
                }
            }
        }
        b
    }

    #[test]
    fn reads_a_tcp_sockets_addresses_from_socket_fdinfo() {
        for (local, foreign) in [
            ("127.0.0.1:50123", "127.0.0.1:8181"),
            ("[::1]:50123", "[::1]:8181"),
        ] {
            let (local, foreign) = (local.parse().unwrap(), foreign.parse().unwrap());
            assert_eq!(
                tcp_addresses(&fdinfo(local, foreign)),
                Some((local, foreign))
            );
        }
    }

    /// The header's structs transcribed (`sys/proc_info.h`, 64-bit), to check the offsets above.
    #[allow(dead_code)]
    mod layout {
        #[repr(C)]
        pub struct ProcFileinfo(u32, u32, i64, i32, u32);
        #[repr(C)]
        pub struct VinfoStat(
            u32,
            u16,
            u16,
            u64,
            u32,
            u32,
            [i64; 8],
            i64,
            i64,
            i32,
            u32,
            u32,
            u32,
            [i64; 2],
        );
        #[repr(C)]
        pub struct SockbufInfo(u32, u32, u32, u32, u32, i16, i16);
        #[repr(C)]
        pub struct InSockinfo {
            pub fport: i32,
            pub lport: i32,
            pub gencnt: u64,
            pub flags: u32,
            pub flow: u32,
            pub vflag: u8,
            pub ip_ttl: u8,
            pub rfu_1: u32,
            pub faddr: [u32; 4],
            pub laddr: [u32; 4],
            pub v4: u8,
            pub v6: (u8, i32, u16, i16),
        }
        /// The union's largest member is `un_sockinfo`: two u64 and two 255-byte addresses.
        #[repr(C)]
        pub struct UnSockinfo(u64, u64, [u8; 255], [u8; 255]);
        #[repr(C)]
        pub struct SocketInfo {
            pub stat: VinfoStat,
            pub so: u64,
            pub pcb: u64,
            pub kind3: [i32; 3],
            pub shorts: [i16; 7],
            pub error: u16,
            pub oobmark: u32,
            pub rcv: SockbufInfo,
            pub snd: SockbufInfo,
            pub kind: i32,
            pub rfu_1: u32,
            pub proto: UnSockinfo,
        }
        #[repr(C)]
        pub struct SocketFdinfo {
            pub pfi: ProcFileinfo,
            pub psi: SocketInfo,
        }
    }

    #[test]
    fn offsets_match_the_headers_layout() {
        use layout::*;
        use std::mem::{offset_of, size_of};
        assert_eq!(size_of::<SocketFdinfo>(), SOCKET_FDINFO_LEN);
        assert_eq!(
            offset_of!(SocketFdinfo, psi) + offset_of!(SocketInfo, kind),
            SOI_KIND
        );
        assert_eq!(
            offset_of!(SocketFdinfo, psi) + offset_of!(SocketInfo, proto),
            SOI_PROTO
        );
        assert_eq!(offset_of!(InSockinfo, fport), INSI_FPORT);
        assert_eq!(offset_of!(InSockinfo, lport), INSI_LPORT);
        assert_eq!(offset_of!(InSockinfo, vflag), INSI_VFLAG);
        assert_eq!(offset_of!(InSockinfo, faddr), INSI_FADDR);
        assert_eq!(offset_of!(InSockinfo, laddr), INSI_LADDR);
        // tcp_sockinfo (in_sockinfo + 8 ints + u64) fits in the union.
        assert!(size_of::<InSockinfo>() + 8 * 4 + 8 <= size_of::<UnSockinfo>());
    }

    #[test]
    fn other_sockets_and_short_buffers_are_not_tcp() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let mut unix = fdinfo(a, a);
        unix[SOI_KIND..SOI_KIND + 4].copy_from_slice(&3i32.to_ne_bytes()); // SOCKINFO_UN
        assert_eq!(tcp_addresses(&unix), None);
        assert_eq!(tcp_addresses(&fdinfo(a, a)[..SOCKET_FDINFO_LEN - 1]), None);
        let mut no_family = fdinfo(a, a);
        no_family[SOI_PROTO + INSI_VFLAG] = 0;
        assert_eq!(tcp_addresses(&no_family), None);
    }
}
