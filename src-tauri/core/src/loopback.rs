//! Serving HTTP on a loopback listener to this user's processes only, for the token endpoint
//! and the browser sign-in's redirect listener.
//!
//! [`admit`] decides, before a byte is read, whether a connection comes from this user's
//! process ([`crate::peer`]); [`admit_local`] decides it for the instance's own Unix socket. [`serve`] then bounds it so that no caller can hold it: headers must arrive
//! within [`HEADER_DEADLINE`], a response must make write progress within [`WRITE_STALL`] (a
//! client that pipelines requests and never reads is dropped), an idle connection closes after
//! [`IDLE`], any connection after [`LIFETIME`], and after [`MAX_REQUESTS`] requests the last
//! response says `Connection: close`. Buffers are bounded (16 KiB).

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use hyper::body::{Body, Incoming};
use hyper::service::HttpService;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::time::{Instant, Sleep};

use crate::peer::{Admission, admits};

/// Time to send a request's headers.
const HEADER_DEADLINE: Duration = Duration::from_secs(10);
/// Longest a response may wait for the client to read.
const WRITE_STALL: Duration = Duration::from_secs(5);
/// Longest a connection may sit idle between requests.
const IDLE: Duration = Duration::from_secs(90);
/// Longest a connection may live (then it finishes its request and closes).
const LIFETIME: Duration = Duration::from_secs(600);
/// Requests per connection on the endpoint; the last one's response closes it.
pub(crate) const MAX_REQUESTS: u32 = 1000;

/// Whether the connection `stream` from `peer` comes from this user's process, decided on a
/// blocking thread: `Ok` with what names the peer's process (`peer::PeerSocket::handle`, when
/// known), or `Err` with why not.
pub(crate) async fn admit(stream: &TcpStream, peer: SocketAddr) -> Result<Option<u64>, Admission> {
    let local = stream.local_addr().map_err(|_| Admission::Unknown)?;
    let admission = tokio::task::spawn_blocking(move || admits(peer, local))
        .await
        .unwrap_or(Admission::Unknown);
    if admission.allowed() {
        Ok(admission.handle())
    } else {
        Err(admission)
    }
}

/// Whether a connection to the instance's own Unix socket comes from this user's process, by
/// the credentials the kernel recorded when it connected (`SO_PEERCRED`, `getpeereid`): `Ok`
/// with its pid when the system gives it, or `Err` with why not. No lookup and no blocking
/// call: the socket names its peer.
#[cfg(unix)]
pub(crate) fn admit_local(stream: &tokio::net::UnixStream) -> Result<Option<u32>, Admission> {
    let cred = stream.peer_cred().map_err(|_| Admission::Unknown)?;
    if cred.uid() != rustix::process::getuid().as_raw() {
        return Err(Admission::OtherUser(cred.uid()));
    }
    Ok(cred.pid().and_then(|pid| u32::try_from(pid).ok()))
}

/// Serves one admitted connection with `service` until it closes, breaks a deadline, or `stop`
/// (then the request in flight finishes first).
pub(crate) async fn serve<IO, S>(
    stream: IO,
    service: S,
    mut stop: tokio::sync::watch::Receiver<bool>,
) where
    IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    S: HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let io = TokioIo::new(Deadlines::new(stream));
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_DEADLINE)
        .max_buf_size(16 * 1024)
        .serve_connection(io, service);
    tokio::pin!(conn);
    tokio::select! {
        _ = conn.as_mut() => return,
        _ = stop.changed() => {}
        () = tokio::time::sleep(LIFETIME) => {}
    }
    conn.as_mut().graceful_shutdown();
    // The request in flight has its own deadline; the write-stall deadline bounds the rest.
    let _ = conn.await;
}

/// A stream whose reads fail after [`IDLE`] without data and whose writes fail after
/// [`WRITE_STALL`] without progress, so a stuck peer cannot keep its task and slot.
struct Deadlines<S> {
    inner: S,
    reading: Deadline,
    writing: Deadline,
}

impl<S> Deadlines<S> {
    fn new(inner: S) -> Self {
        Self {
            inner,
            reading: Deadline::new(IDLE, "idle too long"),
            writing: Deadline::new(WRITE_STALL, "the client stopped reading"),
        }
    }
}

/// How long one direction of a stream may stay `Pending`. Its timer is made once per
/// connection and re-armed only when it fires before the deadline of the current wait, so a
/// request costs a clock read, not a timer registered and cancelled: the timer was a
/// tenth of a cached-token request's work beyond the bare server's.
struct Deadline {
    limit: Duration,
    /// The error's text when the deadline passes.
    what: &'static str,
    /// When the current wait began; `None` after progress.
    waiting_since: Option<Instant>,
    timer: Option<Pin<Box<Sleep>>>,
}

impl Deadline {
    fn new(limit: Duration, what: &'static str) -> Self {
        Self {
            limit,
            what,
            waiting_since: None,
            timer: None,
        }
    }

    /// `polled` through the deadline: while it stays `Pending` for `limit`, the result becomes
    /// a `TimedOut` error; any progress starts the next wait afresh.
    fn within<T>(
        &mut self,
        polled: Poll<io::Result<T>>,
        cx: &mut Context<'_>,
    ) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.waiting_since = None;
            return polled;
        }
        let due = *self.waiting_since.get_or_insert_with(Instant::now) + self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(due)));
        // The timer may be set for an earlier wait's deadline, never a later one (waits begin
        // in order): when it fires early, it is moved to this wait's.
        loop {
            ready!(timer.as_mut().poll(cx));
            if Instant::now() >= due {
                return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, self.what)));
            }
            timer.as_mut().reset(due);
        }
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for Deadlines<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        this.reading.within(polled, cx)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Deadlines<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_write(cx, buf);
        this.writing.within(polled, cx)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        let polled = Pin::new(&mut this.inner).poll_flush(cx);
        this.writing.within(polled, cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_stops_reading_fails_the_write_after_the_stall_deadline() {
        let (ours, _theirs) = tokio::io::duplex(64);
        let mut d = Deadlines::new(ours);
        let err = async {
            loop {
                d.write_all(&[0u8; 64]).await?;
            }
            #[allow(unreachable_code)]
            Ok::<(), io::Error>(())
        }
        .await
        .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
    }

    #[tokio::test(start_paused = true)]
    async fn an_idle_peer_fails_the_read_after_the_idle_deadline_and_data_resets_it() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut d = Deadlines::new(ours);
        let mut byte = [0u8; 1];
        theirs.write_all(b"x").await.unwrap();
        d.read_exact(&mut byte).await.unwrap();
        let started = Instant::now();
        let err = d.read_exact(&mut byte).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), IDLE);
    }

    #[tokio::test(start_paused = true)]
    async fn each_wait_gets_the_whole_deadline_though_the_timer_is_set_once() {
        let (ours, mut theirs) = tokio::io::duplex(64);
        let mut d = Deadlines::new(ours);
        let mut byte = [0u8; 1];
        // A wait of 2/3 of the deadline, then data: the first wait's timer is still set.
        let late = async {
            tokio::time::sleep(IDLE * 2 / 3).await;
            theirs.write_all(b"x").await
        };
        let (read, wrote) = tokio::join!(d.read_exact(&mut byte), late);
        assert!(read.is_ok() && wrote.is_ok());
        // The next wait lasts the whole deadline from its own start, not the first wait's.
        let started = Instant::now();
        let err = d.read_exact(&mut byte).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), IDLE);
    }
}
