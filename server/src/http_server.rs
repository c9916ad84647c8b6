//! The HTTP listener: accepts connections (plain, or TLS with
//! `--tls-cert-file`) and serves the API router on each with hyper, bounded
//! against slow, idle and numerous clients (slowloris):
//!
//! - at most `--http-max-connections` connections are served at once, TLS
//!   handshakes included; beyond that the listener stops accepting, so new
//!   connections wait in the kernel's accept queue and connections already
//!   served are not harmed;
//! - a request's headers (HTTP/1), and a TLS handshake, must arrive within
//!   `--http-header-read-timeout`, counted from when the server starts
//!   waiting for them; on a kept-alive HTTP/1 connection that wait starts
//!   after each response, so it also closes connections idle that long;
//! - a connection with no request in progress and no bytes moved for
//!   `--http-idle-timeout` is closed (HTTP/2 with no open stream, or a
//!   client that stops reading its response); a request body that stops
//!   arriving for that long fails the request.
//!
//! On shutdown the listener stops accepting, asks every connection to close
//! after its in-flight requests, and returns once all have closed.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use axum::body::Bytes;
use axum::Router;
use hyper::body::{Frame, Incoming};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, OwnedSemaphorePermit, Semaphore};
use tokio_rustls::TlsAcceptor;

/// How the listener bounds its clients.
#[derive(Clone)]
pub struct ServeOptions {
    /// Longest wait for a request's headers or a TLS handshake.
    pub header_read_timeout: Duration,
    /// Longest a connection may sit without a request in progress and
    /// without traffic; also the longest stall of a request body.
    pub idle_timeout: Duration,
    /// Most connections served at once.
    pub max_connections: usize,
    /// TLS, when the API is served over HTTPS.
    pub tls: Option<Arc<rustls::ServerConfig>>,
}

impl ServeOptions {
    /// The options `cfg` asks for, with `tls` loaded already.
    pub fn from_config(
        cfg: &crate::config::Config,
        tls: Option<Arc<rustls::ServerConfig>>,
    ) -> Self {
        ServeOptions {
            header_read_timeout: cfg.http.http_header_read_timeout.0,
            idle_timeout: cfg.http.http_idle_timeout.0,
            max_connections: cfg.http.http_max_connections,
            tls,
        }
    }
}

/// Serves `app` on `listener` until `shutdown` resolves, then closes every
/// connection after its in-flight requests and returns.
pub async fn serve(
    listener: TcpListener,
    app: Router,
    opts: ServeOptions,
    shutdown: impl Future<Output = ()>,
) {
    let opts = Arc::new(opts);
    let slots = Arc::new(Semaphore::new(opts.max_connections));
    let (stop_tx, stop_rx) = watch::channel(false);
    tokio::pin!(shutdown);
    loop {
        // A free slot first: at the cap, connections wait in the kernel's
        // queue instead of being accepted and starved.
        let slot = tokio::select! {
            s = slots.clone().acquire_owned() => s,
            _ = &mut shutdown => break,
        };
        let Ok(slot) = slot else { break };
        let (sock, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors and the like: back off.
                    tracing::warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = &mut shutdown => break,
        };
        tokio::spawn(connection(
            sock,
            peer,
            app.clone(),
            opts.clone(),
            stop_rx.clone(),
            slot,
        ));
    }
    drop(listener);
    let _ = stop_tx.send(true);
    // Every connection holds a slot until it closes.
    let all = u32::try_from(opts.max_connections).unwrap_or(u32::MAX);
    let _ = slots.acquire_many(all).await;
}

async fn connection(
    sock: TcpStream,
    peer: SocketAddr,
    app: Router,
    opts: Arc<ServeOptions>,
    stop: watch::Receiver<bool>,
    _slot: OwnedSemaphorePermit,
) {
    let _ = sock.set_nodelay(true);
    let activity = Arc::new(Activity::new());
    let io = Tracked {
        inner: sock,
        activity: activity.clone(),
    };
    match &opts.tls {
        None => serve_connection(io, peer, app, &opts, activity, stop).await,
        Some(tls) => {
            let acceptor = TlsAcceptor::from(tls.clone());
            match tokio::time::timeout(opts.header_read_timeout, acceptor.accept(io)).await {
                Ok(Ok(s)) => serve_connection(s, peer, app, &opts, activity, stop).await,
                Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
            }
        }
    }
}

async fn serve_connection<I>(
    io: I,
    peer: SocketAddr,
    app: Router,
    opts: &ServeOptions,
    activity: Arc<Activity>,
    mut stop: watch::Receiver<bool>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let mut b = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
    b.http1()
        .timer(TokioTimer::new())
        .header_read_timeout(opts.header_read_timeout);
    b.http2().timer(TokioTimer::new());
    let idle = opts.idle_timeout;
    let in_req = activity.clone();
    let svc = hyper::service::service_fn(move |req: hyper::Request<Incoming>| {
        let guard = InFlight::enter(in_req.clone());
        let req = req.map(|body| StallTimeout::new(body, idle));
        let app = app.clone();
        async move {
            let resp = tower::ServiceExt::oneshot(app, req).await;
            drop(guard);
            resp
        }
    });
    let conn = b.serve_connection_with_upgrades(TokioIo::new(io), svc);
    tokio::pin!(conn);
    let tick = (idle / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    // When the connection was asked to close because it sat idle.
    let mut closing: Option<Instant> = None;
    let mut stopping = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => {
                if let Err(e) = r {
                    tracing::debug!(%peer, error = %e, "HTTP connection ended with an error");
                }
                return;
            }
            _ = stop.wait_for(|s| *s), if !stopping => {
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            _ = tokio::time::sleep(tick) => {
                if !activity.idle_for(idle) {
                    closing = None;
                    continue;
                }
                match closing {
                    None => {
                        tracing::debug!(%peer, "closing an idle HTTP connection");
                        closing = Some(Instant::now());
                        conn.as_mut().graceful_shutdown();
                    }
                    // Still open a tick after: the client does not read
                    // what it is sent. Drop it.
                    Some(t) if t.elapsed() >= tick => {
                        tracing::debug!(%peer, "dropping a stalled HTTP connection");
                        return;
                    }
                    Some(_) => {}
                }
            }
        }
    }
}

/// When a connection last moved bytes, and how many of its requests are in
/// progress.
struct Activity {
    start: Instant,
    /// Milliseconds since `start` of the last read or write progress.
    last_ms: AtomicU64,
    in_flight: AtomicUsize,
}

impl Activity {
    fn new() -> Self {
        Activity {
            start: Instant::now(),
            last_ms: AtomicU64::new(0),
            in_flight: AtomicUsize::new(0),
        }
    }

    fn touch(&self) {
        let ms = u64::try_from(self.start.elapsed().as_millis()).unwrap_or(u64::MAX);
        self.last_ms.store(ms, Ordering::Relaxed);
    }

    /// No request in progress and no traffic for `d`.
    fn idle_for(&self, d: Duration) -> bool {
        if self.in_flight.load(Ordering::Relaxed) > 0 {
            return false;
        }
        let last = self.start + Duration::from_millis(self.last_ms.load(Ordering::Relaxed));
        last.elapsed() >= d
    }
}

/// Counts a request as in progress until its response head is ready.
struct InFlight(Arc<Activity>);

impl InFlight {
    fn enter(a: Arc<Activity>) -> Self {
        a.in_flight.fetch_add(1, Ordering::Relaxed);
        InFlight(a)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.in_flight.fetch_sub(1, Ordering::Relaxed);
        self.0.touch();
    }
}

/// A socket that records read and write progress in its [`Activity`].
struct Tracked<S> {
    inner: S,
    activity: Arc<Activity>,
}

impl<S: AsyncRead + Unpin> AsyncRead for Tracked<S> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let r = Pin::new(&mut self.inner).poll_read(cx, buf);
        if buf.filled().len() > before {
            self.activity.touch();
        }
        r
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for Tracked<S> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.activity.touch();
        }
        r
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The body of a request that stalled for longer than the idle timeout.
#[derive(Debug, thiserror::Error)]
#[error("request body stalled: no bytes for {0:?} (--http-idle-timeout)")]
pub struct BodyStalled(Duration);

/// A request body that fails when the client stops sending it for longer
/// than the timeout (counted only while the handler waits for it).
struct StallTimeout {
    inner: Incoming,
    timeout: Duration,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl StallTimeout {
    fn new(inner: Incoming, timeout: Duration) -> Self {
        StallTimeout {
            inner,
            timeout,
            sleep: None,
        }
    }
}

impl hyper::body::Body for StallTimeout {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => {
                this.sleep = None;
                Poll::Ready(frame.map(|r| r.map_err(Into::into)))
            }
            Poll::Pending => {
                let timeout = this.timeout;
                let sleep = this
                    .sleep
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(timeout)));
                match sleep.as_mut().poll(cx) {
                    Poll::Ready(()) => Poll::Ready(Some(Err(BodyStalled(timeout).into()))),
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}
