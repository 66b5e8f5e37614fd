//! Private file mechanics: owner-only directories and files, atomic writes, reads, moving a bad
//! file aside, and the cross-process lock. Every file tokentray writes goes through here, and
//! every file it trusts without writing it (`TOKENTRAY_HOME`, `config.toml`, `ca_file`) is
//! checked here ([`check_trusted`], [`read_trusted`]).

use std::fs::{File, OpenOptions};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::{Error, Result};

/// How long to wait for another process to release the cache lock.
const LOCK_TIMEOUT: Duration = Duration::from_secs(30);

/// Reads a private file; `None` if it does not exist. Fixes a too-wide mode first (with a warning).
///
/// # Errors
/// [`Error::Io`], [`Error::NotOwner`].
pub fn read_private(path: &Path) -> Result<Option<Zeroizing<Vec<u8>>>> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("inspect", path, e)),
        Ok(_) => {}
    }
    ensure_private_file(path)?;
    std::fs::read(path)
        .map(|b| Some(Zeroizing::new(b)))
        .map_err(|e| Error::io("read", path, e))
}

/// Who may own a file or directory tokentray trusts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// Only the user tokentray runs as (its effective uid).
    User,
    /// The user or root (system files such as a CA bundle under `/etc`).
    UserOrRoot,
}

/// Checks that `path`, if it exists, may be trusted: owned by `owner` and not writable by group
/// or others, who could otherwise change what tokentray uses (its authority, its CA, its cache).
/// Never changes anything: the user chose the path, so the fix is theirs, and the error names it.
/// Symlinks are followed: what counts is what they point to. `Ok(false)` if nothing is there.
///
/// On Windows the owner is a SID and the writers are read from the DACL (see `trusted` there).
///
/// # Errors
/// [`Error::NotOwner`], [`Error::WritableByOthers`] (Unix); [`Error::NotOwnedBy`],
/// [`Error::WritableBy`] (Windows); [`Error::Io`] if it cannot be inspected.
pub fn check_trusted(path: &Path, owner: Owner) -> Result<bool> {
    match std::fs::metadata(path) {
        Ok(meta) => trusted(path, &meta, owner).map(|()| true),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(Error::io("inspect", path, e)),
    }
}

/// Reads the file at `path` if [`check_trusted`] would trust it, checking the very file it reads
/// (the open file, not the name again); `None` if it does not exist.
///
/// # Errors
/// As [`check_trusted`]; [`Error::Io`] if it cannot be read.
pub fn read_trusted(path: &Path, owner: Owner) -> Result<Option<Vec<u8>>> {
    use std::io::Read as _;
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io("read", path, e)),
    };
    let meta = file.metadata().map_err(|e| Error::io("inspect", path, e))?;
    trusted(path, &meta, owner)?;
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|e| Error::io("read", path, e))?;
    Ok(Some(bytes))
}

/// Whether a file whose owner is the user (`mine`) or the system (`system`: root; on Windows
/// SYSTEM or the Administrators group, which own what installers write) may be trusted as
/// `owner` asks.
fn owner_trusted(owner: Owner, mine: bool, system: bool) -> bool {
    mine || (owner == Owner::UserOrRoot && system)
}

#[cfg(unix)]
fn trusted(path: &Path, meta: &std::fs::Metadata, owner: Owner) -> Result<()> {
    use std::os::unix::fs::MetadataExt as _;
    let me = rustix::process::geteuid().as_raw();
    if !owner_trusted(owner, meta.uid() == me, meta.uid() == 0) {
        return Err(Error::NotOwner {
            path: path.into(),
            owner: meta.uid(),
            me,
        });
    }
    if meta.mode() & 0o022 != 0 {
        return Err(Error::WritableByOthers {
            path: path.into(),
            mode: meta.mode() & 0o7777,
        });
    }
    Ok(())
}

/// Windows: the owner of `path` (its security descriptor's owner SID) must be this process's
/// user, or for [`Owner::UserOrRoot`] SYSTEM or the Administrators group; and no access-allowed
/// entry of its DACL that applies to it may grant write rights ([`WRITE_RIGHTS`]) to anyone
/// else ([`first_writer`]; a NULL DACL lets everyone write). This is what owner and `go-w` are
/// on Unix: a directory created outside the user's profile (say `C:\tools`) inherits "Modify"
/// for Authenticated Users. Written against the documentation of `GetNamedSecurityInfoW`,
/// `GetAce`, `EqualSid`, `IsWellKnownSid` and `ConvertSidToStringSidW`; type-checked here,
/// never run.
#[cfg(windows)]
#[allow(unsafe_code)]
fn trusted(path: &Path, _meta: &std::fs::Metadata, owner: Owner) -> Result<()> {
    use std::os::windows::ffi::OsStrExt as _;
    use windows_sys::Win32::Foundation::LocalFree;
    use windows_sys::Win32::Security::Authorization::{GetNamedSecurityInfoW, SE_FILE_OBJECT};
    use windows_sys::Win32::Security::{
        ACCESS_ALLOWED_ACE, ACL, DACL_SECURITY_INFORMATION, EqualSid, GetAce, INHERIT_ONLY_ACE,
        IsWellKnownSid, OWNER_SECURITY_INFORMATION, PSECURITY_DESCRIPTOR, PSID,
        WinBuiltinAdministratorsSid, WinCreatorOwnerSid, WinLocalSystemSid,
    };
    /// `ACCESS_ALLOWED_ACE_TYPE` (windows-sys has it under System_SystemServices).
    const ACCESS_ALLOWED: u8 = 0;
    /// `NT SERVICE\TrustedInstaller`, which owns and writes Windows' own files.
    const TRUSTED_INSTALLER: &str =
        "S-1-5-80-956008885-3418522649-1831038044-1853292631-2271478464";

    let name: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
    let mut sid: PSID = std::ptr::null_mut();
    let mut dacl: *mut ACL = std::ptr::null_mut();
    let mut descriptor: PSECURITY_DESCRIPTOR = std::ptr::null_mut();
    // SAFETY: `name` is NUL-terminated; the out pointers are valid; `sid` and `dacl` point into
    // `descriptor`, which is freed below with LocalFree, as the documentation says.
    let status = unsafe {
        GetNamedSecurityInfoW(
            name.as_ptr(),
            SE_FILE_OBJECT,
            OWNER_SECURITY_INFORMATION | DACL_SECURITY_INFORMATION,
            &mut sid,
            std::ptr::null_mut(),
            &mut dacl,
            std::ptr::null_mut(),
            &mut descriptor,
        )
    };
    if status != 0 {
        return Err(Error::io(
            "read the owner and access list of",
            path,
            std::io::Error::from_raw_os_error(i32::try_from(status).unwrap_or(i32::MAX)),
        ));
    }
    // SAFETY (the closures): each SID passed is valid while `descriptor` is.
    let system = |sid: PSID| unsafe {
        IsWellKnownSid(sid, WinLocalSystemSid) != 0
            || IsWellKnownSid(sid, WinBuiltinAdministratorsSid) != 0
    };
    // `me`: this process's SID, read once for the whole check (`None` if it cannot be read:
    // then nothing counts as the user's).
    let evaluate = |me: Option<PSID>| -> Result<()> {
        // SAFETY: `me`, when given, is valid during this call, like each SID passed.
        let mine = |sid: PSID| me.is_some_and(|me| unsafe { EqualSid(sid, me) } != 0);
        if !owner_trusted(owner, mine(sid), system(sid)) {
            Err(Error::NotOwnedBy {
                path: path.into(),
                owner: sid_string(sid),
            })
        } else if dacl.is_null() {
            Err(Error::WritableBy {
                path: path.into(),
                who: "everyone (it has no access list)".into(),
            })
        } else {
            // SAFETY: a non-null DACL from GetNamedSecurityInfoW is a valid ACL.
            let count = u32::from(unsafe { (*dacl).AceCount });
            let mut sids = Vec::new();
            let entries = (0..count).filter_map(|index| {
                let mut ace: *mut core::ffi::c_void = std::ptr::null_mut();
                // SAFETY: `index` is below the ACL's count; GetAce points `ace` into the ACL.
                if unsafe { GetAce(dacl, index, &mut ace) } == 0 || ace.is_null() {
                    return None;
                }
                // SAFETY: every ACE starts with its header; an access-allowed one is an
                // ACCESS_ALLOWED_ACE whose SID starts at `SidStart`.
                let ace = unsafe { &*ace.cast::<ACCESS_ALLOWED_ACE>() };
                let sid: PSID = std::ptr::from_ref(&ace.SidStart).cast_mut().cast();
                sids.push(sid);
                // SAFETY: as above.
                let trusted = mine(sid)
                    || system(sid)
                    || unsafe { IsWellKnownSid(sid, WinCreatorOwnerSid) } != 0
                    || sid_string(sid) == TRUSTED_INSTALLER;
                Some(AccessEntry {
                    allows: ace.Header.AceType == ACCESS_ALLOWED,
                    inherit_only: u32::from(ace.Header.AceFlags) & INHERIT_ONLY_ACE != 0,
                    mask: ace.Mask,
                    trusted,
                })
            });
            let writer = first_writer(entries);
            match writer.and_then(|i| sids.get(i)) {
                Some(&writer) => Err(Error::WritableBy {
                    path: path.into(),
                    who: sid_string(writer),
                }),
                None => Ok(()),
            }
        }
    };
    let verdict =
        crate::peer::with_own_sid(|me| evaluate(Some(me))).unwrap_or_else(|| evaluate(None));
    // SAFETY: allocated by GetNamedSecurityInfoW for this call, freed once.
    unsafe { LocalFree(descriptor) };
    verdict
}

/// Windows: `sid` as text (`S-1-5-…`), or "another user" if it cannot be converted.
#[cfg(windows)]
#[allow(unsafe_code)]
fn sid_string(sid: windows_sys::Win32::Security::PSID) -> String {
    use windows_sys::Win32::Foundation::LocalFree;
    use windows_sys::Win32::Security::Authorization::ConvertSidToStringSidW;
    let mut text: windows_sys::core::PWSTR = std::ptr::null_mut();
    // SAFETY: `sid` is valid (the caller's); the string ConvertSidToStringSidW allocates is
    // read, then freed.
    unsafe {
        if ConvertSidToStringSidW(sid, &mut text) == 0 || text.is_null() {
            "another user".to_string()
        } else {
            let len = (0..).take_while(|&i| *text.add(i) != 0).count();
            let owner = String::from_utf16_lossy(std::slice::from_raw_parts(text, len));
            LocalFree(text.cast());
            owner
        }
    }
}

/// One entry of a Windows DACL, as the writers check reads it.
#[cfg_attr(not(windows), allow(dead_code))]
#[derive(Debug, Clone, Copy)]
struct AccessEntry {
    /// An access-allowed entry (deny entries and others grant nothing).
    allows: bool,
    /// It only passes to what is created inside, not to the object itself.
    inherit_only: bool,
    /// The rights it grants.
    mask: u32,
    /// Its SID is the user's, SYSTEM, Administrators, CREATOR OWNER or TrustedInstaller.
    trusted: bool,
}

/// The rights that let their holder change a file or what a directory holds: write or append
/// data (for a directory: add a file or subdirectory), delete a child, delete it, change its
/// DACL or owner, and the generic write and all rights.
#[cfg_attr(not(windows), allow(dead_code))]
const WRITE_RIGHTS: u32 =
    0x2 | 0x4 | 0x40 | 0x1_0000 | 0x4_0000 | 0x8_0000 | 0x1000_0000 | 0x4000_0000;

/// The index of the first DACL entry that lets someone untrusted change the object. Deny
/// entries are not weighed against it: an allow entry for others is refused even if a deny
/// entry would take the right back (the safe reading, and rare in practice).
#[cfg_attr(not(windows), allow(dead_code))]
fn first_writer(entries: impl IntoIterator<Item = AccessEntry>) -> Option<usize> {
    entries
        .into_iter()
        .position(|e| e.allows && !e.inherit_only && !e.trusted && e.mask & WRITE_RIGHTS != 0)
}

#[cfg(not(any(unix, windows)))]
fn trusted(_path: &Path, _meta: &std::fs::Metadata, _owner: Owner) -> Result<()> {
    Ok(())
}

/// Creates `path` with `bytes`, mode 0600 from the start, for a file the user names (an
/// export): the directory is the user's and is left exactly as it is. Without `replace`, an
/// existing file (or symlink) is refused ([`Error::FileExists`]), never overwritten
/// (`O_CREAT|O_EXCL`). With `replace`, a new 0600 file is written next to it and renamed over
/// it, so the old one is replaced whole or not at all. A relative `path` is relative to the
/// current directory.
///
/// # Errors
/// [`Error::FileExists`]; [`Error::Io`] (nothing is left behind).
pub fn create_private(path: &Path, bytes: &[u8], replace: bool) -> Result<()> {
    let dir = match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    };
    let target = if replace {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        dir.join(format!(".{name}.tmp-{}", std::process::id()))
    } else {
        path.to_path_buf()
    };
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut file = opts.open(&target).map_err(|e| {
        if e.kind() == std::io::ErrorKind::AlreadyExists && !replace {
            Error::FileExists { path: path.into() }
        } else {
            Error::io("create", &target, e)
        }
    })?;
    let result = (|| {
        // Windows: the 0600 of Unix, before a byte is written (the file inherited the ACL of a
        // directory tokentray does not own).
        #[cfg(windows)]
        restrict(&target, 0o600)?;
        file.write_all(bytes)
            .map_err(|e| Error::io("write", &target, e))?;
        file.sync_all().map_err(|e| Error::io("sync", &target, e))?;
        if replace {
            rename(&target, path).map_err(|e| Error::io("replace", path, e))?;
        }
        sync_dir(dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&target);
    }
    result
}

/// Replaces `path` with `bytes` atomically: a 0600 temp file in the same directory, written,
/// fsynced, renamed over `path`, then the directory fsynced. A crash leaves either the old or
/// the new file, never a mix; stale temp files of killed writers are removed on the next write.
///
/// # Errors
/// [`Error::Io`]; the temp file is removed on failure.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    write_atomic_parts(path, &[bytes])
}

/// [`write_atomic`] of `parts` written one after another (a sealed cache: its header, its
/// ciphertext in the plaintext's buffer, its tag), without joining them first.
///
/// # Errors
/// As [`write_atomic`].
pub fn write_atomic_parts(path: &Path, parts: &[&[u8]]) -> Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    ensure_private_dir(dir)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    remove_stale_temps(dir, &name);
    let tmp = dir.join(format!(".{name}.tmp-{}", std::process::id()));
    let result = (|| {
        let mut opts = OpenOptions::new();
        opts.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let mut file = opts.open(&tmp).map_err(|e| Error::io("create", &tmp, e))?;
        for part in parts {
            file.write_all(part)
                .map_err(|e| Error::io("write", &tmp, e))?;
        }
        file.sync_all().map_err(|e| Error::io("sync", &tmp, e))?;
        rename(&tmp, path).map_err(|e| Error::io("replace", path, e))?;
        sync_dir(dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Windows: the file's index on its volume (`GetFileInformationByHandle`), what the inode is
/// on Unix: a file renamed over `path` has another one. Type-checked only.
#[cfg(windows)]
#[allow(unsafe_code)]
pub(crate) fn file_index(path: &Path) -> Option<u64> {
    use std::os::windows::io::AsRawHandle as _;
    use windows_sys::Win32::Storage::FileSystem::{
        BY_HANDLE_FILE_INFORMATION, GetFileInformationByHandle,
    };
    // std opens with every FILE_SHARE_* flag: this never holds up a writer's rename.
    let file = File::open(path).ok()?;
    let mut info = BY_HANDLE_FILE_INFORMATION::default();
    // SAFETY: the handle is open while `file` lives; one struct to write.
    let ok = unsafe { GetFileInformationByHandle(file.as_raw_handle(), &mut info) };
    (ok != 0).then(|| (u64::from(info.nFileIndexHigh) << 32) | u64::from(info.nFileIndexLow))
}

/// Waits between tries of a rename that failed for a moment (about 1.5 s in all).
const RENAME_RETRIES: [Duration; 6] = [
    Duration::from_millis(10),
    Duration::from_millis(40),
    Duration::from_millis(100),
    Duration::from_millis(250),
    Duration::from_millis(500),
    Duration::from_millis(600),
];

/// `std::fs::rename` (on Windows `MoveFileExW` with `MOVEFILE_REPLACE_EXISTING`), tried again
/// while it fails for a moment: on Windows an indexer, antivirus or backup tool that has the
/// target open without `FILE_SHARE_DELETE` makes it fail with access denied or a sharing
/// violation until it lets go. Elsewhere it is tried once.
fn rename(from: &Path, to: &Path) -> std::io::Result<()> {
    retry(
        || std::fs::rename(from, to),
        |e| transient_rename_error(e, cfg!(windows)),
        &RENAME_RETRIES,
        std::thread::sleep,
    )
}

/// Whether a failed rename may succeed if tried again: on Windows `ERROR_ACCESS_DENIED` (5)
/// and `ERROR_SHARING_VIOLATION` (32); never elsewhere.
fn transient_rename_error(e: &std::io::Error, windows: bool) -> bool {
    windows && matches!(e.raw_os_error(), Some(5 | 32))
}

/// Runs `op` until it succeeds, fails for good, or `waits` (slept with `sleep` between tries)
/// run out; the last error then.
fn retry<T>(
    mut op: impl FnMut() -> std::io::Result<T>,
    transient: impl Fn(&std::io::Error) -> bool,
    waits: &[Duration],
    mut sleep: impl FnMut(Duration),
) -> std::io::Result<T> {
    let mut waits = waits.iter();
    loop {
        match op() {
            Err(e) if transient(&e) => match waits.next() {
                Some(&wait) => sleep(wait),
                None => return Err(e),
            },
            done => return done,
        }
    }
}

fn remove_stale_temps(dir: &Path, name: &str) {
    let prefix = format!(".{name}.tmp-");
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        if entry.file_name().to_string_lossy().starts_with(&prefix) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

#[cfg(unix)]
fn sync_dir(dir: &Path) {
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) {}

/// Moves `path` aside to `path.<why>-<UTC timestamp>` (never deleting anything) and returns
/// the new path.
///
/// # Errors
/// [`Error::Io`] if the rename fails.
pub fn move_aside(path: &Path, why: &str) -> Result<PathBuf> {
    let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
    let base = format!("{}.{why}-{stamp}", path.display());
    let mut target = PathBuf::from(&base);
    let mut n = 1;
    while target.exists() {
        target = PathBuf::from(format!("{base}-{n}"));
        n += 1;
    }
    rename(path, &target).map_err(|e| Error::io("move aside", path, e))?;
    Ok(target)
}

/// [`move_aside`] if `path` exists; `None` if there was nothing to move.
///
/// # Errors
/// [`Error::Io`] if the rename fails.
pub fn move_aside_if_exists(path: &Path, why: &str) -> Result<Option<PathBuf>> {
    if path.exists() {
        move_aside(path, why).map(Some)
    } else {
        Ok(None)
    }
}

/// Files moved aside next to `path` by [`move_aside`], oldest first.
pub fn moved_aside(path: &Path) -> Vec<PathBuf> {
    let (Some(dir), Some(name)) = (path.parent(), path.file_name()) else {
        return Vec::new();
    };
    let prefix = format!("{}.", name.to_string_lossy());
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| {
            let n = e.file_name().to_string_lossy().into_owned();
            n.starts_with(&prefix)
                && (n.contains(".corrupt-") || n.contains(".key-lost-") || n.contains(".reset-"))
        })
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

/// An exclusive cross-process lock on the cache (an OS file lock on `cache.lock`); released on
/// drop, and by the OS if the process dies.
#[derive(Debug)]
pub struct Lock {
    _file: File,
}

impl Lock {
    /// Waits up to 30 s for the lock.
    ///
    /// # Errors
    /// [`Error::LockTimeout`] if another process keeps it; [`Error::Io`].
    pub fn acquire(path: &Path) -> Result<Self> {
        if let Some(dir) = path.parent() {
            ensure_private_dir(dir)?;
        }
        let mut opts = OpenOptions::new();
        opts.read(true).write(true).create(true).truncate(false);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
        let file = opts
            .open(path)
            .map_err(|e| Error::io("open lock file", path, e))?;
        let deadline = Instant::now() + LOCK_TIMEOUT;
        let mut pause = Duration::from_millis(1);
        loop {
            match file.try_lock() {
                Ok(()) => return Ok(Self { _file: file }),
                Err(std::fs::TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(Error::LockTimeout { path: path.into() });
                }
                Err(std::fs::TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
            }
        }
    }
}

/// Creates `dir` (and parents) if missing and makes it private (0700), fixing wider modes.
///
/// # Errors
/// [`Error::Io`] on failure; [`Error::NotOwner`] if another user owns it.
pub fn ensure_private_dir(dir: &Path) -> Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder
        .create(dir)
        .map_err(|e| Error::io("create directory", dir, e))?;
    restrict(dir, 0o700)
}

/// Checks that an existing file is ours and private; fixes a wider mode to 0600 and says so in a
/// warning (the contents may have been readable by others).
///
/// # Errors
/// [`Error::NotOwner`] if another user owns it; [`Error::Io`] if it cannot be fixed.
pub fn ensure_private_file(file: &Path) -> Result<()> {
    restrict(file, 0o600)
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::{MetadataExt as _, PermissionsExt as _};
    let meta = std::fs::metadata(path).map_err(|e| Error::io("inspect", path, e))?;
    let me = rustix::process::geteuid().as_raw();
    if meta.uid() != me {
        return Err(Error::NotOwner {
            path: path.into(),
            owner: meta.uid(),
            me,
        });
    }
    let current = meta.mode() & 0o777;
    if current & !mode != 0 {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
            .map_err(|e| Error::io("restrict permissions of", path, e))?;
        tracing::warn!(
            "fixed permissions of {}: was {current:04o}, now {mode:04o}. Other users may have \
             been able to read it before",
            path.display()
        );
    }
    Ok(())
}

/// Windows: replaces `path`'s DACL with one that grants this user alone full access and
/// inherits nothing from the parent (`SetNamedSecurityInfoW` with
/// `PROTECTED_DACL_SECURITY_INFORMATION`); a directory's entry is inherited by what is created
/// in it. What 0700 and 0600 are on Unix. Ownership is not checked on Windows. Type-checked
/// only, never run.
#[cfg(windows)]
#[allow(unsafe_code)]
fn restrict(path: &Path, _mode: u32) -> Result<()> {
    use std::os::windows::ffi::OsStrExt as _;
    use windows_sys::Win32::Security::Authorization::{SE_FILE_OBJECT, SetNamedSecurityInfoW};
    use windows_sys::Win32::Security::{
        ACL, ACL_REVISION, AddAccessAllowedAceEx, CONTAINER_INHERIT_ACE, DACL_SECURITY_INFORMATION,
        GetLengthSid, InitializeAcl, OBJECT_INHERIT_ACE, PROTECTED_DACL_SECURITY_INFORMATION,
    };
    use windows_sys::Win32::Storage::FileSystem::FILE_ALL_ACCESS;
    let inherit = if path.is_dir() {
        OBJECT_INHERIT_ACE | CONTAINER_INHERIT_ACE
    } else {
        0
    };
    let name: Vec<u16> = path.as_os_str().encode_wide().chain([0]).collect();
    let set = crate::peer::with_own_sid(|sid| -> std::io::Result<()> {
        // SAFETY: `sid` is valid during this call.
        let len = owner_only_acl_len(unsafe { GetLengthSid(sid) });
        let mut acl = vec![0u32; usize::try_from(len / 4).unwrap_or(0)];
        let acl = acl.as_mut_ptr().cast::<ACL>();
        // SAFETY: `acl` is `len` bytes, DWORD-aligned, as InitializeAcl is told.
        if unsafe { InitializeAcl(acl, len, ACL_REVISION) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: the ACL was initialized with room for this one ACE and the SID.
        if unsafe { AddAccessAllowedAceEx(acl, ACL_REVISION, inherit, FILE_ALL_ACCESS, sid) } == 0 {
            return Err(std::io::Error::last_os_error());
        }
        // SAFETY: `name` is NUL-terminated; null owner, group and SACL are left unchanged.
        let status = unsafe {
            SetNamedSecurityInfoW(
                name.as_ptr(),
                SE_FILE_OBJECT,
                DACL_SECURITY_INFORMATION | PROTECTED_DACL_SECURITY_INFORMATION,
                std::ptr::null_mut(),
                std::ptr::null_mut(),
                acl,
                std::ptr::null(),
            )
        };
        match status {
            0 => Ok(()),
            code => Err(std::io::Error::from_raw_os_error(
                i32::try_from(code).unwrap_or(i32::MAX),
            )),
        }
    })
    .unwrap_or_else(|| Err(std::io::Error::other("cannot read this process's user")));
    set.map_err(|e| Error::io("restrict access to", path, e))
}

/// Bytes of an ACL with one access-allowed ACE for a SID of `sid_len` bytes: the `ACL` header
/// (8), the `ACCESS_ALLOWED_ACE` without its first SID DWORD (8), the SID, DWORD-aligned.
#[cfg(any(windows, test))]
fn owner_only_acl_len(sid_len: u32) -> u32 {
    (16 + sid_len).next_multiple_of(4)
}

#[cfg(not(any(unix, windows)))]
fn restrict(_path: &Path, _mode: u32) -> Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::{Error as IoError, ErrorKind};

    use super::*;

    #[test]
    fn an_owner_only_acl_has_room_for_its_one_ace() {
        // S-1-5-21-a-b-c-rid: 8 bytes of header and 5 sub-authorities.
        assert_eq!(owner_only_acl_len(28), 44);
        assert_eq!(owner_only_acl_len(13), 32, "DWORD-aligned");
    }

    #[test]
    fn only_the_user_or_for_system_files_the_system_is_a_trusted_owner() {
        // (owner asked for, the user's, the system's) -> trusted; the system is root on Unix,
        // SYSTEM or Administrators on Windows.
        for (owner, mine, system, trusted) in [
            (Owner::User, true, false, true),
            (Owner::User, false, true, false),
            (Owner::User, false, false, false),
            (Owner::UserOrRoot, true, false, true),
            (Owner::UserOrRoot, false, true, true),
            (Owner::UserOrRoot, false, false, false),
        ] {
            assert_eq!(
                owner_trusted(owner, mine, system),
                trusted,
                "{owner:?} {mine} {system}"
            );
        }
    }

    #[test]
    fn only_a_dacl_entry_that_lets_someone_else_write_makes_a_writer() {
        let entry = |allows, inherit_only, mask, trusted| AccessEntry {
            allows,
            inherit_only,
            mask,
            trusted,
        };
        // FILE_GENERIC_READ | FILE_GENERIC_EXECUTE, "Read & execute".
        const READ: u32 = 0x1200a9;
        // "Modify", what Authenticated Users inherit on a directory made under C:\.
        const MODIFY: u32 = 0x1301bf;
        let mine = entry(true, false, 0x1f01ff, true);
        assert_eq!(first_writer([mine, entry(true, false, READ, false)]), None);
        assert_eq!(
            first_writer([mine, entry(true, false, MODIFY, false)]),
            Some(1)
        );
        for right in [
            0x2,
            0x4,
            0x40,
            0x1_0000,
            0x4_0000,
            0x8_0000,
            0x1000_0000,
            0x4000_0000,
        ] {
            assert_eq!(
                first_writer([entry(true, false, right, false)]),
                Some(0),
                "{right:#x}"
            );
        }
        assert_eq!(
            first_writer([entry(true, true, MODIFY, false)]),
            None,
            "inherit-only: not the object's own"
        );
        assert_eq!(
            first_writer([entry(false, false, MODIFY, false)]),
            None,
            "deny"
        );
        assert_eq!(
            first_writer([entry(true, false, MODIFY, true)]),
            None,
            "system"
        );
        assert_eq!(
            first_writer([
                entry(false, false, MODIFY, false),
                entry(true, false, MODIFY, false)
            ]),
            Some(1),
            "a deny entry does not clear another's allow entry"
        );
    }

    #[test]
    fn a_rename_held_up_by_another_reader_is_tried_again_on_windows_only() {
        let denied = IoError::from_raw_os_error(5);
        let sharing = IoError::from_raw_os_error(32);
        let missing = IoError::from_raw_os_error(2);
        assert!(transient_rename_error(&denied, true));
        assert!(transient_rename_error(&sharing, true));
        assert!(!transient_rename_error(&missing, true));
        assert!(
            !transient_rename_error(&denied, false),
            "EPERM on Linux is for good"
        );
    }

    #[test]
    fn retry_stops_at_success_at_a_lasting_error_or_when_the_waits_run_out() {
        let waits = [Duration::from_millis(1), Duration::from_millis(2)];
        let transient = |e: &IoError| e.kind() == ErrorKind::PermissionDenied;
        let (mut calls, mut slept) = (0, Vec::new());
        let ok = retry(
            || {
                calls += 1;
                if calls < 3 {
                    Err(ErrorKind::PermissionDenied.into())
                } else {
                    Ok(calls)
                }
            },
            transient,
            &waits,
            |d| slept.push(d),
        );
        assert_eq!(ok.unwrap(), 3);
        assert_eq!(slept, waits);

        let (mut calls, mut slept) = (0, Vec::new());
        let lasting = retry(
            || -> std::io::Result<()> {
                calls += 1;
                Err(ErrorKind::NotFound.into())
            },
            transient,
            &waits,
            |d| slept.push(d),
        );
        assert_eq!(lasting.unwrap_err().kind(), ErrorKind::NotFound);
        assert_eq!((calls, slept.len()), (1, 0));

        let mut calls = 0;
        let out_of_waits = retry(
            || -> std::io::Result<()> {
                calls += 1;
                Err(ErrorKind::PermissionDenied.into())
            },
            transient,
            &waits,
            |_| {},
        );
        assert_eq!(
            out_of_waits.unwrap_err().kind(),
            ErrorKind::PermissionDenied
        );
        assert_eq!(calls, 3);
    }
}
