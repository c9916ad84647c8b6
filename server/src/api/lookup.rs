//! Where the series-metadata endpoints do their work (`/api/v1/series`,
//! `/api/v1/labels`, `/api/v1/label/{name}/values`, `/api/v1/status/tsdb`):
//! on a thread of the blocking pool, as queries do ([`super::query`]).
//!
//! Over many series, merging the shards' answers, sorting and rendering
//! the JSON take up to a second of CPU. On a runtime worker that would hold
//! up the Raft groups it drives, and it would escape the query timeout
//! ([`super::middleware::query_slot`]): `tokio::time::timeout` only fires
//! while the future it wraps is waiting, so a handler whose last poll ran
//! past the deadline still answered 200. Here the handler only waits, so
//! the timeout answers on time; and the work stops when the request goes
//! away (timeout, or the client disconnected): at the next read it would
//! wait for, and before rendering. Shard reads already running finish on
//! their own threads.
//!
//! A lookup that ran long may have freed much memory on its thread, which
//! is handed back to the OS then ([`crate::alloc::release_free_memory`]);
//! after a short one that would only cost the next lookup fresh pages (a
//! tenth of a label-values call's CPU went to zeroing them).

use std::future::Future;
use std::time::{Duration, Instant};

use axum::response::Response;
use tokio::sync::oneshot;

use crate::error::ApiError;

/// A lookup that took this long hands its thread's free memory back to
/// the OS: in less, it cannot have allocated more than some megabytes.
const RELEASE_AFTER: Duration = Duration::from_millis(20);

/// Runs `fetch` (the reads) and then `render` (what is heavy in building
/// the answer) off the runtime's workers; see the module doc.
pub async fn run<T, F, R>(fetch: F, render: R) -> Result<Response, ApiError>
where
    T: Send + 'static,
    F: Future<Output = Result<T, ApiError>> + Send + 'static,
    R: FnOnce(T) -> Response + Send + 'static,
{
    let rt = tokio::runtime::Handle::current();
    // Dropped with this future: the request is gone.
    let (_wanted, mut gone) = oneshot::channel::<()>();
    let work = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let fetched = cluster::on_blocking_thread(|| {
            rt.block_on(async {
                tokio::select! {
                    biased;
                    _ = &mut gone => None,
                    r = fetch => Some(r),
                }
            })
        });
        let still_wanted = matches!(gone.try_recv(), Err(oneshot::error::TryRecvError::Empty));
        let out = match fetched {
            Some(r) if still_wanted => Some(r.map(render)),
            _ => None,
        };
        if started.elapsed() >= RELEASE_AFTER {
            crate::alloc::release_free_memory();
        }
        out
    });
    match work.await {
        Ok(Some(r)) => r,
        // `_wanted` lives until here, so the work cannot have seen the
        // request go away.
        Ok(None) => Err(ApiError::internal(
            "invariant broken: a lookup stopped while its request waited",
        )),
        Err(e) => Err(ApiError::internal(format!("the lookup failed: {e}"))),
    }
}
