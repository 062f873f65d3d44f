//! How the HTTP server keeps itself available: every connection is watched, so that a client
//! that connects and says nothing, drips a request head a byte at a time, or sits on a
//! keep-alive connection forever gives its descriptor back; the number of open connections is
//! capped; and the accept loop backs off instead of spinning when the process runs out of
//! descriptors. None of this needs a token, so none of it can be reached only with one.
//!
//! Why our own watchdog and not hyper's `header_read_timeout`: hyper 1 starts that timer when a
//! connection begins waiting for a request head, which on a keep-alive connection is the whole
//! idle time between two requests (`proto/h1/conn.rs`, `poll_read_head`), so it would cut every
//! idle keep-alive connection at the header timeout and an idle timeout longer than it would
//! never apply. Here the two are apart, as nginx has them: a request head must be complete within
//! `header_read_timeout` of its first byte (or of the connection's opening, for its first
//! request); between requests a connection may wait `idle_timeout`.
//!
//! Why the cap closes the oldest idle connection instead of refusing new ones: refusing would
//! let whoever holds the connections first keep everyone else out (a flood re-opened as it times
//! out is a denial of service for as long as it goes on). Closing the connection idle the longest
//! serves every client that actually sends a request: its connection is the newest and is busy
//! as soon as its head is read, and a request in progress is never cut. Only when every
//! connection is busy is a new one refused. The same eviction frees a descriptor when `accept`
//! fails for want of one (EMFILE), so `/healthz` and IVR requests are still answered at the
//! descriptor limit.

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// `[api]` connection limits (also used, with their defaults, by the delivery report endpoint).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Limits {
    /// A request head must be complete within this time of its first byte (of the connection's
    /// opening, for the first request). 5 s: a client on the operator's network sends a head of
    /// a few hundred bytes in one packet; only a stalled or hostile one needs longer.
    pub header_read_timeout: Duration,
    /// A keep-alive connection waiting for its next request is closed after this long. 30 s:
    /// long enough for an IVR or a scraper (every 15 s) to reuse its connection, short enough
    /// that idle connections do not pile up.
    pub idle_timeout: Duration,
    /// Open connections at most. 1,024: the IVR, a few gateways and a monitoring system need a
    /// few dozen; it is well under the usual descriptor limit (the engine needs descriptors for
    /// its own files too), and the oldest idle connection makes room for a new one.
    pub max_connections: usize,
}

pub(crate) fn default_header() -> Duration {
    Duration::from_secs(5)
}
pub(crate) fn default_idle() -> Duration {
    Duration::from_secs(30)
}
pub(crate) fn default_max() -> usize {
    1024
}

impl Default for Limits {
    fn default() -> Self {
        Limits { header_read_timeout: default_header(), idle_timeout: default_idle(), max_connections: default_max() }
    }
}

/// What the watchdog knows about one connection. Times are milliseconds since the server
/// started, plus one (0: none).
pub(super) struct Track {
    /// Requests being answered on it (a connection with one is never closed by the watchdog).
    busy: AtomicU32,
    /// When it was opened or last finished answering.
    since: AtomicU64,
    /// When the first byte of the next request head arrived (0: none yet).
    head: AtomicU64,
    /// No request has been answered on it yet.
    fresh: AtomicBool,
    close: Notify,
    /// A request began or ended: the watchdog's deadline moves.
    changed: Notify,
}

/// Why the server closed a connection (the metric's label).
#[derive(Clone, Copy)]
enum Closed {
    HeaderTimeout,
    IdleTimeout,
    Evicted,
}

/// Every open connection, for the cap and for eviction. A std mutex: it is taken once when a
/// connection opens and once when it closes, never across an await.
pub(super) struct Conns {
    limits: Limits,
    base: tokio::time::Instant,
    next: AtomicU64,
    open: Mutex<HashMap<u64, Arc<Track>>>,
}

impl Conns {
    pub(super) fn new(limits: Limits) -> Arc<Conns> {
        Arc::new(Conns {
            limits,
            base: tokio::time::Instant::now(),
            next: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
        })
    }

    fn now(&self) -> u64 {
        self.base.elapsed().as_millis() as u64 + 1
    }

    fn at(&self, ms: u64) -> tokio::time::Instant {
        self.base + Duration::from_millis(ms.saturating_sub(1))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Track>>> {
        self.open.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Makes room for a new connection: under the cap, or once the connection idle the longest
    /// is closed. `None` when every connection is busy (the new one is refused).
    pub(super) fn admit(&self) -> Option<(u64, Arc<Track>)> {
        let mut open = self.lock();
        if open.len() >= self.limits.max_connections.max(1) && !Self::evict_in(&mut open) {
            crate::telemetry::http_connection_closed("refused");
            return None;
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed);
        let t = Arc::new(Track {
            busy: AtomicU32::new(0),
            since: AtomicU64::new(self.now()),
            head: AtomicU64::new(0),
            fresh: AtomicBool::new(true),
            close: Notify::new(),
            changed: Notify::new(),
        });
        open.insert(id, t.clone());
        crate::telemetry::http_connections(open.len());
        Some((id, t))
    }

    /// Closes the connection idle the longest (for a descriptor); false when none is idle.
    pub(super) fn evict_oldest_idle(&self) -> bool {
        Self::evict_in(&mut self.lock())
    }

    fn evict_in(open: &mut HashMap<u64, Arc<Track>>) -> bool {
        let oldest = open
            .iter()
            .filter(|(_, t)| t.busy.load(Ordering::Acquire) == 0)
            .min_by_key(|(id, t)| (t.since.load(Ordering::Relaxed), **id))
            .map(|(id, _)| *id);
        let Some(t) = oldest.and_then(|id| open.remove(&id)) else { return false };
        t.close.notify_one();
        crate::telemetry::http_connection_closed(Closed::Evicted.as_str());
        crate::telemetry::http_connections(open.len());
        true
    }

    fn gone(&self, id: u64) {
        let mut open = self.lock();
        if open.remove(&id).is_some() {
            crate::telemetry::http_connections(open.len());
        }
    }

    /// When the watchdog looks at `t` next, and why it would close it then.
    fn deadline(&self, t: &Track) -> (u64, Option<Closed>) {
        let header = self.limits.header_read_timeout.as_millis() as u64;
        let idle = self.limits.idle_timeout.as_millis() as u64;
        if t.busy.load(Ordering::Acquire) > 0 {
            // Answering: requests end on their own (the IVR and explain wait a bounded time);
            // look again after a while.
            return (self.now() + idle.max(header), None);
        }
        match t.head.load(Ordering::Acquire) {
            0 if t.fresh.load(Ordering::Relaxed) => {
                (t.since.load(Ordering::Acquire) + header, Some(Closed::HeaderTimeout))
            }
            0 => (t.since.load(Ordering::Acquire) + idle, Some(Closed::IdleTimeout)),
            h => (h + header, Some(Closed::HeaderTimeout)),
        }
    }

    /// Serves one connection until it ends, the watchdog closes it, or it is evicted.
    pub(super) async fn watch<F>(self: Arc<Self>, id: u64, track: Arc<Track>, conn: F)
    where
        F: std::future::Future + GracefulShutdown,
    {
        tokio::pin!(conn);
        loop {
            let (due, why) = self.deadline(&track);
            tokio::select! {
                _ = conn.as_mut() => break,
                _ = track.changed.notified() => continue,
                _ = track.close.notified() => {
                    if track.busy.load(Ordering::Acquire) == 0 {
                        break;
                    }
                    // Evicted while a request was being read into the handler: let it finish.
                    conn.as_mut().shutdown();
                    conn.as_mut().await;
                    break;
                }
                _ = tokio::time::sleep_until(self.at(due)) => {
                    if let Some(why) = why {
                        // Look again: a byte or a request may have come in meanwhile.
                        let (again, why_now) = self.deadline(&track);
                        if again <= self.now() && why_now.is_some() {
                            crate::telemetry::http_connection_closed(why.as_str());
                            break;
                        }
                    }
                }
            }
        }
        self.gone(id);
    }
}

impl Closed {
    fn as_str(self) -> &'static str {
        match self {
            Closed::HeaderTimeout => "header_timeout",
            Closed::IdleTimeout => "idle_timeout",
            Closed::Evicted => "evicted",
        }
    }
}

/// A connection future that can be asked to finish its request in progress and close.
pub(super) trait GracefulShutdown {
    fn shutdown(self: Pin<&mut Self>);
}

impl<I, B, S> GracefulShutdown for hyper::server::conn::http1::Connection<I, S>
where
    S: hyper::service::HttpService<hyper::body::Incoming, ResBody = B>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    I: hyper::rt::Read + hyper::rt::Write + Unpin,
    B: hyper::body::Body + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    fn shutdown(self: Pin<&mut Self>) {
        self.graceful_shutdown();
    }
}

/// Marks a connection busy while one of its requests is answered (dropped when the answer is
/// made, or when the request is abandoned).
pub(super) struct Busy(Arc<Track>, Arc<Conns>);

impl Busy {
    pub(super) fn new(t: &Arc<Track>, conns: &Arc<Conns>) -> Busy {
        t.busy.fetch_add(1, Ordering::AcqRel);
        Busy(t.clone(), conns.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        let t = &self.0;
        t.fresh.store(false, Ordering::Relaxed);
        t.head.store(0, Ordering::Release);
        t.since.store(self.1.now(), Ordering::Release);
        t.busy.fetch_sub(1, Ordering::AcqRel);
        t.changed.notify_one();
    }
}

/// The socket, noting when the first byte of a request head arrives.
pub(super) struct Watched {
    io: TcpStream,
    track: Arc<Track>,
    conns: Arc<Conns>,
}

impl Watched {
    pub(super) fn new(io: TcpStream, track: Arc<Track>, conns: Arc<Conns>) -> Watched {
        Watched { io, track, conns }
    }
}

impl AsyncRead for Watched {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.io).poll_read(cx, buf);
        if buf.filled().len() > before {
            let t = &self.track;
            if t.busy.load(Ordering::Acquire) == 0 && t.head.load(Ordering::Acquire) == 0 {
                t.head.store(self.conns.now(), Ordering::Release);
                t.changed.notify_one();
            }
        }
        r
    }
}

impl AsyncWrite for Watched {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// Accept errors that mean the process or the system is out of something (descriptors, socket
/// buffers, memory): retrying at once fails again, so the loop waits.
pub(super) fn is_exhaustion(e: &std::io::Error) -> Option<&'static str> {
    match e.raw_os_error()? {
        libc::EMFILE => Some("emfile"),
        libc::ENFILE => Some("enfile"),
        libc::ENOBUFS => Some("enobufs"),
        libc::ENOMEM => Some("enomem"),
        _ => None,
    }
}

/// The accept loop's memory of a run of failures: logged once when it starts and once when it
/// ends, each failure counted.
#[derive(Default)]
pub(super) struct Backoff {
    failures: u64,
}

impl Backoff {
    /// After a failed accept: how long to wait before the next.
    pub(super) fn failed(&mut self, e: &std::io::Error, conns: &Conns) -> Duration {
        let kind = is_exhaustion(e).unwrap_or("other");
        crate::telemetry::http_accept_error(kind);
        if self.failures == 0 {
            eprintln!("api           accepting connections fails ({e}); backing off and closing idle connections");
        }
        self.failures += 1;
        if is_exhaustion(e).is_none() {
            // Most often a connection that failed on its own (reset before it was accepted): try
            // the next at once; an error that keeps coming back is not retried in a tight loop.
            return if self.failures < 16 { Duration::ZERO } else { Duration::from_millis(10) };
        }
        // Out of descriptors: give one back by closing the connection idle the longest, then
        // try again soon; with nothing to close, wait longer.
        if conns.evict_oldest_idle() { Duration::from_millis(1) } else { Duration::from_millis(20) }
    }

    pub(super) fn accepted(&mut self) {
        if self.failures > 0 {
            eprintln!("api           accepting connections again after {} failures", self.failures);
            self.failures = 0;
        }
    }
}
