//! Which events become desktop notifications, and how often.

use std::collections::HashMap;

use crate::tokens::Event;

/// A desktop notification (never a token: events carry none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Title.
    pub summary: String,
    /// Text.
    pub body: String,
    /// The approval question it asks, if any: the shell offers [`crate::approval::Answer::ALL`] as its
    /// actions
    /// and passes the one chosen to [`crate::desktop::Desktop::answer_approval`].
    pub question: Option<u64>,
}

/// Which events become notifications; repeats of "needs sign-in" and "refresh failed" for one
/// account are held back for [`Notices::QUIET_SECS`].
#[derive(Debug, Default)]
pub struct Notices {
    last: HashMap<(&'static str, String), i64>,
}

impl Notices {
    /// Seconds between two notifications of the same kind for the same account.
    pub const QUIET_SECS: i64 = 15 * 60;

    /// The notification for `event` at `now`, if any.
    pub fn notice(&mut self, event: &Event, now: i64) -> Option<Notice> {
        let (kind, account, summary, body) = match event {
            Event::DeviceCodeReady {
                user_code,
                verification_uri,
            } => {
                return Some(Notice {
                    summary: format!("Device code: {user_code}"),
                    body: format!("Enter it at {verification_uri} to sign in to tokentray."),
                    question: None,
                });
            }
            Event::SignedIn { account } => {
                return Some(Notice {
                    summary: "Signed in".into(),
                    body: format!("{account} is signed in; tools can get its tokens now."),
                    question: None,
                });
            }
            Event::ApprovalRequested { id, program, pid } => {
                let name = std::path::Path::new(program)
                    .file_name()
                    .map_or_else(|| program.clone(), |n| n.to_string_lossy().into_owned());
                return Some(Notice {
                    summary: format!("Allow {name} to get tokens?"),
                    body: format!(
                        "{program} (pid {pid}) asks tokentray for a token. It waits for your answer \
                         here or in the tokentray window."
                    ),
                    question: Some(*id),
                });
            }
            Event::NeedsSignIn { account, reason } => (
                "needs_sign_in",
                account,
                format!("{account} needs to sign in again"),
                format!("{reason}. Open tokentray and choose \"Sign in again\"."),
            ),
            Event::RefreshFailed { account, reason } => (
                "refresh_failed",
                account,
                format!("Could not refresh tokens for {account}"),
                format!("{reason}. Cached tokens are still served until they expire."),
            ),
            _ => return None,
        };
        let key = (kind, account.clone());
        if self
            .last
            .get(&key)
            .is_some_and(|t| now - t < Self::QUIET_SECS)
        {
            return None;
        }
        self.last.insert(key, now);
        Some(Notice {
            summary,
            body,
            question: None,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeated_failures_notify_once_per_quiet_period() {
        let mut notices = Notices::default();
        let failed = Event::RefreshFailed {
            account: "a@x".into(),
            reason: "the authority did not answer".into(),
        };
        assert!(notices.notice(&failed, 1000).is_some());
        assert_eq!(notices.notice(&failed, 1001), None);
        assert!(
            notices
                .notice(&failed, 1000 + Notices::QUIET_SECS)
                .is_some()
        );
        let served = Event::TokenServed {
            account: "a@x".into(),
            scopes: "s".into(),
            client: "pid 1".into(),
        };
        assert_eq!(notices.notice(&served, 5000), None);
        let code = Event::DeviceCodeReady {
            user_code: "ABCD-EFGH".into(),
            verification_uri: "https://microsoft.com/devicelogin".into(),
        };
        let shown = notices.notice(&code, 5000).map(|n| n.summary);
        assert_eq!(shown.as_deref(), Some("Device code: ABCD-EFGH"));
        let asked = Event::ApprovalRequested {
            id: 7,
            program: "/usr/bin/python3.12".into(),
            pid: 4242,
        };
        let notice = notices.notice(&asked, 5000).unwrap();
        assert_eq!(notice.summary, "Allow python3.12 to get tokens?");
        assert!(notice.body.contains("/usr/bin/python3.12 (pid 4242)"));
        assert_eq!(notice.question, Some(7));
    }
}
