//! Windows: the console of the one `tokentray` binary that is both the CLI and the tray app.
//!
//! The binary is a console program, so the CLI keeps its stdout, stderr and exit code in
//! `cmd`, PowerShell and scripts, and `login --device-code` can show its code (with
//! `windows_subsystem = "windows"` a release build would lose all three). Started as the tray
//! app from Explorer, the Start menu or at login, Windows opens a console window just for it:
//! [`release_own_console`] closes that one (it may flash for a moment) and leaves a console
//! shared with the shell that started it alone, so `tokentray` from a terminal still logs
//! there. When the CLI and the app become separate binaries, the app alone takes
//! `windows_subsystem = "windows"` and this goes.
//!
//! Verified how: type-checked for `x86_64-pc-windows-gnu`; the decision is unit-tested on
//! Linux; not run on Windows.

/// Whether the console is ours alone, given how many processes are attached to it
/// (`GetConsoleProcessList`): Windows made it for this process, nobody reads it.
pub(crate) fn made_for_us(attached: u32) -> bool {
    attached == 1
}

/// Frees the console if Windows made it only for this process (see the module doc).
#[cfg(windows)]
#[allow(unsafe_code)]
pub fn release_own_console() {
    use windows_sys::Win32::System::Console::{FreeConsole, GetConsoleProcessList};
    let mut pids = [0u32; 4];
    // SAFETY: the buffer holds `pids.len()` u32s, the count passed.
    let attached = unsafe { GetConsoleProcessList(pids.as_mut_ptr(), 4) };
    if made_for_us(attached) {
        // SAFETY: plain call; detaching from a console has no preconditions.
        unsafe { FreeConsole() };
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_a_console_with_no_one_else_attached_is_released() {
        assert!(super::made_for_us(1));
        assert!(
            !super::made_for_us(2),
            "started from a shell: keep logging there"
        );
        assert!(!super::made_for_us(0), "no console at all");
    }
}
