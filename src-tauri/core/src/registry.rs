//! String values under `HKEY_CURRENT_USER` (Windows only): start at login's `Run` value and the
//! session environment's `Environment` values. Written against the Win32 registry
//! documentation (`RegGetValueW`, `RegSetKeyValueW`, `RegDeleteKeyValueW`, `SendMessageTimeoutW`),
//! type-checked for `x86_64-pc-windows-gnu` here, never run.
#![allow(unsafe_code)]

use windows_sys::Win32::Foundation::{ERROR_FILE_NOT_FOUND, NO_ERROR};
use windows_sys::Win32::System::Registry::{
    HKEY_CURRENT_USER, REG_SZ, RRF_RT_REG_SZ, RegDeleteKeyValueW, RegGetValueW, RegSetKeyValueW,
};

use crate::{Error, Result};

fn wide(s: &str) -> Vec<u16> {
    s.encode_utf16().chain([0]).collect()
}

fn failed(what: &'static str, key: &str, name: &str, code: u32) -> Error {
    Error::io(
        what,
        format!(r"HKEY_CURRENT_USER\{key}\{name}"),
        std::io::Error::from_raw_os_error(i32::try_from(code).unwrap_or(i32::MAX)),
    )
}

/// Whether the string value `name` exists under `HKCU\key`.
pub(crate) fn get(key: &str, name: &str) -> bool {
    let (key, name) = (wide(key), wide(name));
    let mut size = 0u32;
    // SAFETY: null data asks only for the size; the strings are NUL-terminated.
    let status = unsafe {
        RegGetValueW(
            HKEY_CURRENT_USER,
            key.as_ptr(),
            name.as_ptr(),
            RRF_RT_REG_SZ,
            std::ptr::null_mut(),
            std::ptr::null_mut(),
            &mut size,
        )
    };
    status == NO_ERROR
}

/// Sets the string value `name` under `HKCU\key` to `value`, or deletes it for `None` (a
/// missing value is not an error).
///
/// # Errors
/// [`Error::Io`] with the registry's error code.
pub(crate) fn set(key: &str, name: &str, value: Option<&str>) -> Result<()> {
    let (wkey, wname) = (wide(key), wide(name));
    let Some(value) = value else {
        // SAFETY: NUL-terminated strings.
        let status =
            unsafe { RegDeleteKeyValueW(HKEY_CURRENT_USER, wkey.as_ptr(), wname.as_ptr()) };
        return match status {
            NO_ERROR | ERROR_FILE_NOT_FOUND => Ok(()),
            code => Err(failed("remove", key, name, code)),
        };
    };
    let data = zeroize::Zeroizing::new(wide(value));
    let bytes = u32::try_from(data.len() * 2).map_err(|_| failed("write", key, name, 87))?;
    // SAFETY: `data` is `bytes` bytes of NUL-terminated UTF-16, as REG_SZ wants.
    let status = unsafe {
        RegSetKeyValueW(
            HKEY_CURRENT_USER,
            wkey.as_ptr(),
            wname.as_ptr(),
            REG_SZ,
            data.as_ptr().cast(),
            bytes,
        )
    };
    match status {
        NO_ERROR => Ok(()),
        code => Err(failed("write", key, name, code)),
    }
}

/// Tells running programs (Explorer, which starts the others) that `HKCU\Environment`
/// changed: a broadcast `WM_SETTINGCHANGE` with "Environment", waiting at most 5 s for a window
/// that hangs. Best effort: without it, programs see the change after the next sign-in.
pub(crate) fn announce_environment() {
    use windows_sys::Win32::UI::WindowsAndMessaging::{
        HWND_BROADCAST, SMTO_ABORTIFHUNG, SendMessageTimeoutW, WM_SETTINGCHANGE,
    };
    let what = wide("Environment");
    let mut result = 0usize;
    // SAFETY: `what` is NUL-terminated and outlives the call, which copies it for each window.
    unsafe {
        SendMessageTimeoutW(
            HWND_BROADCAST,
            WM_SETTINGCHANGE,
            0,
            what.as_ptr() as isize,
            SMTO_ABORTIFHUNG,
            5000,
            &mut result,
        );
    }
}
