//! `/api/v1/query`, `/api/v1/query_range`, `/api/v1/format_query`,
//! `/api/v1/parse_query` and `/api/v1/query_exemplars`.

use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use query::engine::{CancelToken, Engine, EngineOptions, QueryOutput};

use super::json::Success;
use super::params::Params;
use super::render::QueryData;
use super::{query_error, Shared};
use crate::error::{ApiError, ErrorKind};
use crate::metrics::QueryKind;

/// Most points a range query may return per series (Prometheus' limit).
const MAX_POINTS: i64 = 11_000;

/// Cancels the query when dropped (at the end of the request, or when the
/// client disconnects and axum drops the handler).
struct CancelOnDrop(CancelToken);

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn query_text(p: &Params) -> Result<&str, ApiError> {
    p.get("query").ok_or_else(|| {
        ApiError::bad_data(
            "invalid parameter \"query\": 1:1: parse error: no expression found in input",
        )
    })
}

/// The effective timeout: `timeout=` when given and shorter than the limit.
fn timeout(s: &Shared, p: &Params) -> Result<Duration, ApiError> {
    let max = s.cfg.limits.query_timeout.0;
    match p.duration("timeout")? {
        Some(ms) if ms <= 0 => Err(ApiError::bad_data(
            "invalid parameter \"timeout\": must be positive",
        )),
        Some(ms) => Ok(max.min(Duration::from_millis(ms as u64))),
        None => Ok(max),
    }
}

fn partial_response(p: &Params) -> bool {
    matches!(p.get("partial_response"), Some("true" | "1"))
}

/// Runs `f` under the concurrency limit, the timeout (the wait for a slot
/// included) and the metrics.
///
/// The evaluation runs on a thread of the blocking pool (driven there by
/// `Handle::block_on`), never on the runtime's workers, which also drive
/// the Raft groups: a long query cannot delay heartbeats. The engine checks
/// its deadline (the same timeout) inside its loops, so a timed-out query
/// stops mid-way on that thread too. The answer is rendered on that thread
/// as well, and once the query's values are dropped the thread hands its
/// freed memory back to the OS ([`crate::alloc::release_free_memory`]):
/// the allocator would otherwise keep it until the thread next allocates.
async fn run<F, Fut>(s: &Shared, p: &Params, kind: &str, f: F) -> Result<Response, ApiError>
where
    F: FnOnce(Engine, std::sync::Arc<dyn query::model::Queryable>, CancelToken) -> Fut,
    Fut: std::future::Future<Output = Result<QueryOutput, query::engine::QueryError>>
        + Send
        + 'static,
{
    let limit = p.limit()?;
    let to = timeout(s, p)?;
    // The wait for a slot counts against the timeout, as in Prometheus.
    let queued = Instant::now();
    let _slot = match tokio::time::timeout(to, s.query_slots.acquire()).await {
        Ok(slot) => {
            slot.map_err(|_| ApiError::new(ErrorKind::Unavailable, "server is shutting down"))?
        }
        Err(_) => {
            return Err(ApiError::new(
                ErrorKind::Timeout,
                format!(
                "query timed out in query queue; all --max-concurrent-queries={} slots stayed busy",
                s.cfg.limits.max_concurrent_queries
            ),
            ))
        }
    };
    let to = to.saturating_sub(queued.elapsed());
    s.metrics.queries_running.inc();
    let engine = Engine::new(EngineOptions {
        max_samples: s.cfg.limits.max_query_samples,
        timeout: to,
        parse: s.cfg.parse_options(),
        ..EngineOptions::default()
    });
    let start = Instant::now();
    let querier = s.node.querier(partial_response(p));
    let rt = tokio::runtime::Handle::current();
    // A client that goes away drops this future, and with it the guard,
    // which stops the evaluation on its thread.
    let cancel = CancelOnDrop(CancelToken::new());
    let eval = f(engine, querier, cancel.0.clone());
    let (answer, answered) = tokio::sync::oneshot::channel();
    tokio::task::spawn_blocking(move || {
        let (sent_guard, sent) = std::sync::mpsc::channel::<()>();
        // This thread may block: it reads a share of the local shards
        // itself (`cluster::on_blocking_thread`).
        let out = cluster::on_blocking_thread(|| rt.block_on(eval))
            .map_err(query_error)
            .map(|o| render(o, limit, sent_guard));
        crate::alloc::release_free_memory();
        // `out` is dropped here when the handler has gone away.
        let _ = answer.send(out);
        // A large answer is freed by the connection's task once sent; its
        // pages belong to this thread's heap, so wait for that (the guard
        // in the body is dropped with it) and collect them here.
        // Nothing is ever sent: the wait ends when the guard is dropped.
        let _ = sent.recv_timeout(Duration::from_secs(600));
        crate::alloc::release_free_memory();
    });
    // The engine answers its own timeout ("in expression evaluation"); this
    // one is the fallback for a thread that does not get the CPU to notice.
    let res = tokio::time::timeout(to + Duration::from_millis(500), answered).await;
    s.metrics.queries_running.dec();
    s.metrics
        .query_duration
        .get_or_create(&QueryKind {
            query_type: kind.to_string(),
        })
        .observe(start.elapsed().as_secs_f64());
    let out = match res {
        Err(_) => {
            return Err(ApiError::new(
                ErrorKind::Timeout,
                format!("query timed out in query execution after {to:?}; raise timeout= or --query-timeout"),
            ))
        }
        Ok(Err(e)) => return Err(ApiError::internal(format!("query evaluation failed: {e}"))),
        Ok(Ok(r)) => r?,
    };
    s.metrics.query_samples.inc_by(out.1);
    Ok(out.0)
}

/// A large answer's bytes with the guard dropped right after them (fields
/// drop in order), whichever task drops the last reference.
struct GuardedJson {
    json: Vec<u8>,
    _sent: std::sync::mpsc::Sender<()>,
}

impl AsRef<[u8]> for GuardedJson {
    fn as_ref(&self) -> &[u8] {
        &self.json
    }
}

/// Answers from this size on keep a guard in their body (see [`run`]).
const LARGE_ANSWER: usize = 16 << 20;

/// The JSON answer of a query (and the samples it loaded, for the metrics).
/// A large answer's body holds `sent_guard` until the body is dropped.
fn render(
    out: QueryOutput,
    limit: Option<usize>,
    sent_guard: std::sync::mpsc::Sender<()>,
) -> (Response, u64) {
    let mut data = QueryData(out.value);
    let mut warnings = out.warnings;
    if let Some(l) = limit {
        if data.truncate(l) {
            warnings.push(format!("results truncated due to limit ({l} series)"));
        }
    }
    let success = Success::with_notes(data, warnings, out.infos);
    let json = match serde_json::to_vec(&success) {
        Ok(j) => j,
        Err(e) => {
            let e = ApiError::internal(format!("cannot render the query result: {e}"));
            return (e.into_response(), out.samples_loaded);
        }
    };
    drop(success);
    let body = if json.len() >= LARGE_ANSWER {
        axum::body::Body::from(bytes::Bytes::from_owner(GuardedJson {
            json,
            _sent: sent_guard,
        }))
    } else {
        axum::body::Body::from(json)
    };
    let resp = Response::builder()
        .header(axum::http::header::CONTENT_TYPE, "application/json")
        .body(body)
        .unwrap_or_else(|e| {
            ApiError::internal(format!("cannot build the query answer: {e}")).into_response()
        });
    (resp, out.samples_loaded)
}

/// `GET|POST /api/v1/query`.
pub async fn instant(State(s): State<Shared>, p: Params) -> Result<Response, ApiError> {
    let q = query_text(&p)?.to_string();
    let t = p.time_or("time", now_ms())?;
    run(&s, &p, "instant", |engine, querier, cancel| async move {
        let expr = engine.parse(&q)?;
        engine
            .instant_expr_cancelable(querier.as_ref(), &expr, t, &cancel)
            .await
    })
    .await
}

/// `GET|POST /api/v1/query_range`.
pub async fn range(State(s): State<Shared>, p: Params) -> Result<Response, ApiError> {
    let q = query_text(&p)?.to_string();
    let missing = |n: &str| {
        ApiError::bad_data(format!(
            "invalid parameter \"{n}\": cannot parse \"\" to a valid timestamp"
        ))
    };
    if p.get("start").is_none() {
        return Err(missing("start"));
    }
    if p.get("end").is_none() {
        return Err(missing("end"));
    }
    let start = p.time_or("start", 0)?;
    let end = p.time_or("end", 0)?;
    if end < start {
        return Err(ApiError::bad_data(
            "invalid parameter \"end\": end timestamp must not be before start time",
        ));
    }
    let step = p.duration("step")?.ok_or_else(|| {
        ApiError::bad_data("invalid parameter \"step\": cannot parse \"\" to a valid duration")
    })?;
    if step <= 0 {
        return Err(ApiError::bad_data(
            "invalid parameter \"step\": zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    if (end - start) / step > MAX_POINTS {
        return Err(ApiError::bad_data(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
        ));
    }
    run(&s, &p, "range", |engine, querier, cancel| async move {
        let expr = engine.parse(&q)?;
        engine
            .range_expr_cancelable(querier.as_ref(), &expr, start, end, step, &cancel)
            .await
    })
    .await
}

/// Parses the `query` parameter with the server's `--enable-feature`
/// switches.
fn parse(s: &Shared, p: &Params) -> Result<query::ast::Expr, ApiError> {
    let q = query_text(p)?;
    query::parser::parse_with(q, s.cfg.parse_options())
        .map_err(|e| ApiError::bad_data(format!("invalid parameter \"query\": {e}")))
}

/// `GET|POST /api/v1/format_query`: the query in canonical form.
pub async fn format(State(s): State<Shared>, p: Params) -> Result<Response, ApiError> {
    let e = parse(&s, &p)?;
    Ok(Success::new(e.to_string()).into_response())
}

/// `GET|POST /api/v1/parse_query`: the syntax tree as JSON.
pub async fn parse_tree(State(s): State<Shared>, p: Params) -> Result<Response, ApiError> {
    let e = parse(&s, &p)?;
    Ok(Success::new(super::ast_json::to_json(&e)).into_response())
}

/// `GET|POST /api/v1/query_exemplars`: exemplars are not stored, so the
/// result is always empty (the query is still validated).
pub async fn exemplars(State(s): State<Shared>, p: Params) -> Result<Response, ApiError> {
    parse(&s, &p)?;
    let empty: [(); 0] = [];
    Ok(Success::new(empty).into_response())
}
