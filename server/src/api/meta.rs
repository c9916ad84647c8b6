//! `/api/v1/series`, `/api/v1/labels`, `/api/v1/label/{name}/values` and
//! `/api/v1/metadata`.

use std::future::Future;

use axum::extract::{Path, State};
use axum::response::{IntoResponse, Response};
use model::{Labels, Matcher};
use query::model::QueryableError;

use super::json::Success;
use super::params::{Params, MAX_TIME_MS, MIN_TIME_MS};
use super::render::LabelsList;
use super::{lookup, queryable_error, Shared};
use crate::error::ApiError;

/// Parses every `match[]` selector.
fn selectors(p: &Params) -> Result<Vec<Vec<Matcher>>, ApiError> {
    p.get_all("match[]")
        .into_iter()
        .map(|s| {
            let ms = query::parser::parse_metric_selector(s)
                .map_err(|e| ApiError::bad_data(format!("invalid parameter \"match[]\": {e}")))?;
            if ms.iter().all(Matcher::matches_empty) {
                return Err(ApiError::bad_data(format!(
                    "invalid parameter \"match[]\": {s}: match[] must contain at least one non-empty matcher"
                )));
            }
            Ok(ms)
        })
        .collect()
}

fn range(p: &Params) -> Result<(i64, i64), ApiError> {
    Ok((
        p.time_or("start", MIN_TIME_MS)?,
        p.time_or("end", MAX_TIME_MS)?,
    ))
}

/// Cuts `v` to the `limit` parameter or the server's
/// `--max-lookup-results` (`cap`), whichever is smaller, with Prometheus'
/// warning.
fn truncate<T>(cap: usize, v: &mut Vec<T>, limit: Option<usize>, warnings: &mut Vec<String>) {
    let l = limit.map_or(cap, |l| l.min(cap));
    if v.len() > l {
        v.truncate(l);
        warnings.push(if limit.is_some_and(|p| p <= cap) {
            "results truncated due to limit".into()
        } else {
            format!("results truncated due to limit (--max-lookup-results={cap})")
        });
    }
}

/// How many of each selector's sorted answer a lookup needs: what it may
/// return and one more, which tells whether it was cut.
fn keep(cap: usize, limit: Option<usize>) -> usize {
    limit.map_or(cap, |l| l.min(cap)).saturating_add(1)
}

/// The sorted, unique union of the answers of several selectors (each
/// sorted and unique already: one is taken as it is).
fn merge_or_take<T: Ord>(mut all: Vec<Vec<T>>) -> Vec<T> {
    if all.len() == 1 {
        return all.pop().unwrap_or_default();
    }
    cluster::merge_sorted(all)
}

/// `GET|POST /api/v1/series`.
pub async fn series(State(s): State<Shared>, p: Params) -> Result<Response, ApiError> {
    let sels = selectors(&p)?;
    if sels.is_empty() {
        return Err(ApiError::bad_data("no match[] parameter provided"));
    }
    let (start, end) = range(&p)?;
    let limit = p.limit()?;
    let cap = s.cfg.limits.max_lookup_results;
    let keep = keep(cap, limit);
    let q = s.node.querier(false);
    let fetch = async move {
        let mut all: Vec<Vec<Labels>> = Vec::with_capacity(sels.len());
        for ms in &sels {
            all.push(
                q.series_first(ms, start, end, keep)
                    .await
                    .map_err(queryable_error)?,
            );
        }
        Ok(all)
    };
    lookup::run(fetch, move |all| {
        let mut v = merge_or_take(all);
        let mut warnings = Vec::new();
        truncate(cap, &mut v, limit, &mut warnings);
        Success::with_notes(LabelsList(v), warnings, vec![]).into_response()
    })
    .await
}

/// Label names or values: the union of what `read` finds for each
/// `match[]` selector (for all series without one), cut to the limits.
async fn strings<F, Fut>(s: &Shared, p: &Params, read: F) -> Result<Response, ApiError>
where
    F: Fn(Vec<Matcher>, i64, i64, usize) -> Fut + Send + 'static,
    Fut: Future<Output = Result<Vec<String>, QueryableError>> + Send,
{
    let mut sels = selectors(p)?;
    if sels.is_empty() {
        sels.push(Vec::new());
    }
    let (start, end) = range(p)?;
    let limit = p.limit()?;
    let cap = s.cfg.limits.max_lookup_results;
    let keep = keep(cap, limit);
    let fetch = async move {
        let mut all: Vec<Vec<String>> = Vec::with_capacity(sels.len());
        for ms in sels {
            all.push(read(ms, start, end, keep).await.map_err(queryable_error)?);
        }
        Ok(all)
    };
    lookup::run(fetch, move |all| {
        let mut v = merge_or_take(all);
        let mut warnings = Vec::new();
        truncate(cap, &mut v, limit, &mut warnings);
        Success::with_notes(v, warnings, vec![]).into_response()
    })
    .await
}

/// `GET|POST /api/v1/labels`.
pub async fn label_names(State(s): State<Shared>, p: Params) -> Result<Response, ApiError> {
    let q = s.node.querier(false);
    strings(&s, &p, move |ms, start, end, keep| {
        let q = q.clone();
        async move { q.label_names_first(&ms, start, end, keep).await }
    })
    .await
}

/// `GET /api/v1/label/{name}/values`.
pub async fn label_values(
    State(s): State<Shared>,
    Path(name): Path<String>,
    p: Params,
) -> Result<Response, ApiError> {
    if !storage::valid_label_name(&name) {
        return Err(ApiError::bad_data(format!("invalid label name: {name:?}")));
    }
    let q = s.node.querier(false);
    strings(&s, &p, move |ms, start, end, keep| {
        let (q, name) = (q.clone(), name.clone());
        async move { q.label_values_first(&name, &ms, start, end, keep).await }
    })
    .await
}

/// `GET /api/v1/metadata` (`metric`, `limit`, `limit_per_metric`).
pub async fn metadata(State(s): State<Shared>, p: Params) -> Result<Response, ApiError> {
    let limit = p.limit()?;
    let per_metric = match p.get("limit_per_metric") {
        None => None,
        Some(v) => match v.parse::<i64>() {
            Ok(n) if n > 0 => Some(n as usize),
            Ok(_) => None,
            Err(_) => return Err(ApiError::bad_data("invalid parameter \"limit_per_metric\"")),
        },
    };
    let mut m = s.metadata.snapshot(p.get("metric"));
    if let Some(l) = limit {
        while m.len() > l {
            m.pop_last();
        }
    }
    if let Some(l) = per_metric {
        for v in m.values_mut() {
            v.truncate(l);
        }
    }
    Ok(Success::new(m).into_response())
}
