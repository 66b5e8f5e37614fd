//! How the process gives memory back, measured with a daemon holding 1,000 accounts x 10
//! tokens (`make bench`): 104 MB of its own memory after a start that wrote the file, 32 MB
//! with both of these, which is what the cache itself takes.
//!
//! - The cache passes through a few buffers its own size (the file read, its plaintext, the
//!   JSON written): 25 MB each at 1,000 accounts. glibc maps a buffer that big on its own and
//!   unmaps it when freed, but then raises its mapping threshold to that size, so the next ones
//!   come from the heap and stay there once freed. [`return_big_buffers`] keeps the threshold
//!   where it starts (104 -> 57 MB).
//! - A new version of the cache replaces the old one whole (`tokens::snapshot`): 10,000
//!   tokens' worth of small allocations freed at once, below newer ones, where glibc does not
//!   trim. [`give_back_freed`] returns their pages (57 -> 32 MB).

/// Makes every buffer of 128 KiB or more its own mapping, given back to the system when freed
/// (glibc's `M_MMAP_THRESHOLD`, which also stops it from raising the threshold). Call first
/// thing in `main`, before any other thread runs. Elsewhere (macOS, Windows, musl) the system
/// allocator already returns big buffers, and this does nothing.
pub fn return_big_buffers() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `mallopt` only sets an allocator parameter; it is called before other threads
    // exist, and a refusal (0) leaves glibc's default, which is only slower to give memory back.
    unsafe {
        libc::mallopt(libc::M_MMAP_THRESHOLD, 128 * 1024);
    }
}

/// Gives the pages of freed memory back to the system (glibc's `malloc_trim`), after a big
/// structure was dropped. It takes a few milliseconds at 1,000 accounts, so run it on a blocking
/// thread. Elsewhere it does nothing.
pub fn give_back_freed() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    #[allow(unsafe_code)]
    // SAFETY: `malloc_trim` takes the allocator's own locks and only releases free pages.
    unsafe {
        libc::malloc_trim(0);
    }
}
