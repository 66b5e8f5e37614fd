//! Opening the sign-in page in the system browser, and noticing when that fails at once.
//!
//! On Linux and the BSDs the browser is `$BROWSER` (its `:`-separated entries in order, `%s`
//! replaced by the URL, else the URL appended), else `xdg-open`; on macOS `open`. The command
//! runs with no terminal input or output, and a thread waits for it, so it never lingers as a
//! defunct process, and reports an unsuccessful exit within [`AT_ONCE`] as the browser
//! failing to start (`xdg-open` with no browser installed, a `$BROWSER` that cannot show
//! anything). On Windows `webbrowser` asks the shell, which either opens the page or fails
//! right away.

use std::time::Duration;

use url::Url;

use crate::{Error, Result};

/// An exit this soon after the start that is not a success counts as the browser failing to
/// start. A browser that opened the page keeps running, or hands the URL to a running one and
/// exits successfully.
pub const AT_ONCE: Duration = Duration::from_secs(3);

/// A browser started with the sign-in page.
#[derive(Debug, Default)]
pub struct Opened {
    failure: Option<tokio::sync::oneshot::Receiver<String>>,
}

impl From<()> for Opened {
    /// Opened by other means (a test's own browser): nothing to watch.
    fn from((): ()) -> Self {
        Self::default()
    }
}

impl Opened {
    /// Resolves, with what happened, only if the browser failed within [`AT_ONCE`]; pending
    /// forever otherwise.
    pub async fn failed(self) -> String {
        if let Some(failure) = self.failure
            && let Ok(what) = failure.await
        {
            return what;
        }
        std::future::pending().await
    }
}

/// Opens `url` in the system browser (see the module doc).
///
/// # Errors
/// [`Error::InvalidInput`] (field `browser`) if no browser command could be started; the
/// message says to set `BROWSER` or to sign in with a device code.
pub fn open_url(url: &Url) -> Result<Opened> {
    #[cfg(windows)]
    {
        webbrowser::open(url.as_str()).map_err(|e| no_browser(&e.to_string()))?;
        Ok(Opened::default())
    }
    #[cfg(not(windows))]
    {
        let mut last = None;
        for command in commands(url.as_str(), std::env::var("BROWSER").ok().as_deref()) {
            match spawn(&command) {
                Ok(opened) => return Ok(opened),
                Err(e) => last = Some(format!("{}: {e}", command[0])),
            }
        }
        Err(no_browser(last.as_deref().unwrap_or("no browser command")))
    }
}

fn no_browser(detail: &str) -> Error {
    Error::invalid(
        "browser",
        format!(
            "could not start a browser ({detail}); set BROWSER to your browser's command, or \
             sign in with a device code (`tokentray login --device-code`)"
        ),
    )
}

/// The commands to try, in order: each `$BROWSER` entry, else the platform's opener.
#[cfg(not(windows))]
fn commands(url: &str, browser: Option<&str>) -> Vec<Vec<String>> {
    let from_env: Vec<Vec<String>> = browser
        .unwrap_or_default()
        .split(':')
        .filter_map(|entry| {
            let mut words: Vec<String> = entry.split_whitespace().map(str::to_string).collect();
            if words.is_empty() {
                return None;
            }
            if words.iter().any(|w| w.contains("%s")) {
                for w in &mut words {
                    *w = w.replace("%s", url);
                }
            } else {
                words.push(url.to_string());
            }
            Some(words)
        })
        .collect();
    if !from_env.is_empty() {
        return from_env;
    }
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    vec![vec![opener.to_string(), url.to_string()]]
}

/// Starts `command` detached from the terminal, with a thread that reaps it and reports an
/// early unsuccessful exit.
#[cfg(not(windows))]
fn spawn(command: &[String]) -> std::io::Result<Opened> {
    use std::process::{Command, Stdio};
    let (program, args) = command
        .split_first()
        .ok_or_else(|| std::io::Error::other("empty command"))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()?;
    let (tx, rx) = tokio::sync::oneshot::channel();
    let name = program.clone();
    let started = std::time::Instant::now();
    std::thread::Builder::new()
        .name("tokentray-browser".into())
        .spawn(move || {
            if let Ok(status) = child.wait()
                && !status.success()
                && started.elapsed() < AT_ONCE
            {
                let _ = tx.send(format!("`{name}` exited at once ({status})"));
            }
        })?;
    Ok(Opened { failure: Some(rx) })
}

#[cfg(all(test, not(windows)))]
mod tests {
    use super::*;

    #[test]
    fn browser_entries_are_tried_in_order_with_the_url_in_place() {
        let url = "http://localhost:1/x?a=b";
        assert_eq!(
            commands(url, Some("firefox --new-tab:chromium --app=%s:")),
            [
                vec!["firefox".to_string(), "--new-tab".into(), url.into()],
                vec!["chromium".to_string(), format!("--app={url}")],
            ]
        );
        let opener = if cfg!(target_os = "macos") {
            "open"
        } else {
            "xdg-open"
        };
        assert_eq!(
            commands(url, Some(" : ")),
            [vec![opener.to_string(), url.into()]]
        );
        assert_eq!(commands(url, None), [vec![opener.to_string(), url.into()]]);
    }

    #[tokio::test]
    async fn a_browser_that_fails_at_once_is_told_and_one_that_runs_is_not() {
        let failed = spawn(&["false".into()])
            .expect("spawn false")
            .failed()
            .await;
        assert_eq!(failed, "`false` exited at once (exit status: 1)");
        let running = spawn(&["sleep".into(), "5".into()]).expect("spawn sleep");
        let told = tokio::time::timeout(Duration::from_millis(300), running.failed()).await;
        assert!(told.is_err(), "still running: nothing to tell");
        let fine = spawn(&["true".into()]).expect("spawn true");
        let told = tokio::time::timeout(Duration::from_millis(500), fine.failed()).await;
        assert!(
            told.is_err(),
            "a successful exit is a browser that handed the page on"
        );
    }
}
