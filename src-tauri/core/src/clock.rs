//! The program's clock. Cache and expiry logic never read it themselves: they take `now` (epoch
//! seconds) from a [`Clock`], so tests run at any time they choose. Sleeping and backoff use
//! tokio's clock, which async tests pause and advance.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

/// Epoch seconds now. Production uses [`system_clock`]; tests pass their own.
pub type Clock = Arc<dyn Fn() -> i64 + Send + Sync>;

/// The system clock, as a [`Clock`].
pub fn system_clock() -> Clock {
    Arc::new(now)
}

/// Seconds since the Unix epoch by the system clock (0 if the clock is before 1970): the one
/// place tokentray reads the wall clock.
pub fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Epoch seconds `at` in local time, in chrono's `format` (`%H:%M`), or `?` if it is out of
/// range: how messages for people show a time.
pub fn local_time(at: i64, format: &str) -> String {
    use chrono::TimeZone as _;
    chrono::Local
        .timestamp_opt(at, 0)
        .single()
        .map_or_else(|| "?".into(), |t| t.format(format).to_string())
}
