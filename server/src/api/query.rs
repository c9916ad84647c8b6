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

/// Runs `f` under the concurrency limit, the timeout and the metrics.
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
    let _slot = s
        .query_slots
        .acquire()
        .await
        .map_err(|_| ApiError::new(ErrorKind::Unavailable, "server is shutting down"))?;
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
    let eval = tokio::task::spawn_blocking(move || {
        let out = rt
            .block_on(eval)
            .map_err(query_error)
            .map(|o| render(o, limit));
        crate::alloc::release_free_memory();
        out
    });
    // The engine answers its own timeout ("in expression evaluation"); this
    // one is the fallback for a thread that does not get the CPU to notice.
    let res = tokio::time::timeout(to + Duration::from_millis(500), eval).await;
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

/// The JSON answer of a query (and the samples it loaded, for the metrics).
fn render(out: QueryOutput, limit: Option<usize>) -> (Response, u64) {
    let mut data = QueryData(out.value);
    let mut warnings = out.warnings;
    if let Some(l) = limit {
        if data.truncate(l) {
            warnings.push(format!("results truncated due to limit ({l} series)"));
        }
    }
    (
        Success::with_notes(data, warnings, out.infos).into_response(),
        out.samples_loaded,
    )
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
