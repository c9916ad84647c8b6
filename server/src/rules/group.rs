//! One rule group at run time: its rules' state and one evaluation cycle.
//!
//! A cycle runs the rules in file order at the group's evaluation time `ts`
//! (queries at `ts - query_offset`), and writes each rule's output through
//! the normal write path before the next rule runs, so later rules see the
//! results of earlier ones. Recording rules write their vector under the
//! rule's name; alerting rules feed [`alert::step`] and write `ALERTS` and
//! `ALERTS_FOR_STATE`. A series a rule wrote last cycle and not this one
//! gets a stale marker, as Prometheus does.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use model::{Labels, Sample, STALE_NAN_BITS};
use query::engine::{Engine, Value};
use query::model::Queryable;

use super::alert::{self, Alert, Candidate, Lifecycle};
use super::model::{GroupSpec, RuleKind, RuleSpec};
use super::template::{expand, Env, QuerySample, TemplateData, TemplateQuerier};

/// How the last evaluation of a rule went.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Health {
    /// `"ok"`, `"err"` or `"unknown"` (not evaluated yet).
    pub state: &'static str,
    /// The error of the last evaluation, if it failed.
    pub last_error: String,
    /// When it last ran (ms).
    pub last_eval_ms: Option<i64>,
    /// How long it took (s).
    pub eval_seconds: f64,
}

/// A rule and what its evaluations left behind.
#[derive(Clone, Debug)]
pub struct RuleState {
    /// The rule.
    pub spec: RuleSpec,
    /// Last evaluation.
    pub health: Health,
    /// Alerting rules: the alerts by label set.
    pub active: BTreeMap<Labels, Alert>,
    /// Series written by the last evaluation (for stale markers).
    written: HashSet<Labels>,
}

/// A group and its rules' state.
#[derive(Clone, Debug)]
pub struct GroupState {
    /// The group.
    pub spec: GroupSpec,
    /// Its rules, in file order.
    pub rules: Vec<RuleState>,
    /// Last cycle.
    pub health: Health,
}

impl GroupState {
    /// A group not evaluated yet.
    pub fn new(spec: GroupSpec) -> Self {
        let rules = spec
            .rules
            .iter()
            .map(|r| RuleState {
                spec: r.clone(),
                health: Health {
                    state: "unknown",
                    ..Health::default()
                },
                active: BTreeMap::new(),
                written: HashSet::new(),
            })
            .collect();
        GroupState {
            spec,
            rules,
            health: Health::default(),
        }
    }
}

/// Where rules read and write: the cluster on a server, memory in
/// `silverback rules test`.
#[async_trait]
pub trait RuleStore: Send + Sync {
    /// What queries read.
    fn querier(&self) -> Arc<dyn Queryable>;
    /// Writes one sample per series; rejected samples are not an error.
    async fn write(&self, samples: Vec<(Labels, Sample)>) -> Result<(), String>;
}

/// The cluster as a [`RuleStore`]: reads fan out, writes take the normal
/// write path.
pub struct ClusterStore(pub Arc<cluster::Node>);

#[async_trait]
impl RuleStore for ClusterStore {
    fn querier(&self) -> Arc<dyn Queryable> {
        self.0.querier(false)
    }

    async fn write(&self, samples: Vec<(Labels, Sample)>) -> Result<(), String> {
        let incoming = samples
            .into_iter()
            .map(|(labels, s)| cluster::IncomingSeries {
                labels,
                samples: vec![s],
            })
            .collect();
        let out = self
            .0
            .write(incoming)
            .await
            .map_err(|e| format!("cannot write rule output: {e}"))?;
        // A new leader re-evaluating a timestamp its predecessor already
        // wrote finds identical samples (accepted as no-ops); anything else
        // rejected is worth a log line but not a failed rule.
        for r in &out.rejected {
            tracing::debug!(reason = %r.reason, count = r.count, example = %r.example, "rule output sample rejected");
        }
        Ok(())
    }
}

/// What a cycle needs from the server.
#[derive(Clone)]
pub struct Ctx {
    /// Where queries read and results go.
    pub store: Arc<dyn RuleStore>,
    /// The query engine settings.
    pub engine: Engine,
    /// This server's URL (templates' `externalURL`, `generatorURL`).
    pub external_url: String,
    /// Minimum time between two sends of the same alert (ms).
    pub resend_delay_ms: i64,
}

/// Alerts due for sending, with the expression of the rule that made them
/// (for their `generatorURL`).
pub type Due = Vec<(String, Vec<Alert>)>;

/// Runs one cycle of `g` at `ts` (ms); returns the alerts due for sending.
pub async fn evaluate(ctx: &Ctx, g: &mut GroupState, ts: i64) -> Due {
    let started = Instant::now();
    let (offset, limit, interval) = (g.spec.query_offset_ms, g.spec.limit, g.spec.interval_ms);
    let mut due = Vec::new();
    for r in &mut g.rules {
        let t0 = Instant::now();
        let res = evaluate_rule(ctx, r, ts, ts - offset, limit).await;
        r.health = Health {
            state: if res.is_ok() { "ok" } else { "err" },
            last_error: res.as_ref().err().cloned().unwrap_or_default(),
            last_eval_ms: Some(ts),
            eval_seconds: t0.elapsed().as_secs_f64(),
        };
        if let Err(e) = res {
            tracing::warn!(group = %g.spec.name, rule = %r.spec.name, error = %e, "rule evaluation failed");
        }
        if matches!(r.spec.kind, RuleKind::Alerting { .. }) {
            let alerts = alert::due_for_sending(&mut r.active, ts, ctx.resend_delay_ms, interval);
            if !alerts.is_empty() {
                due.push((r.spec.expr.clone(), alerts));
            }
        }
    }
    g.health = Health {
        state: "ok",
        last_error: String::new(),
        last_eval_ms: Some(ts),
        eval_seconds: started.elapsed().as_secs_f64(),
    };
    due
}

/// Evaluates one rule and writes its output; `Err` is the rule's lastError.
async fn evaluate_rule(
    ctx: &Ctx,
    r: &mut RuleState,
    ts: i64,
    query_t: i64,
    limit: usize,
) -> Result<(), String> {
    let querier = ctx.store.querier();
    let out = ctx
        .engine
        .instant(querier.as_ref(), &r.spec.expr, query_t)
        .await
        .map_err(|e| e.to_string())?;
    let vector: Vec<(Labels, f64)> = match out.value {
        Value::Vector(v) => v.into_iter().map(|s| (s.labels, s.v)).collect(),
        Value::Scalar { v, .. } => vec![(Labels::empty(), v)],
        _ => return Err("rule result is not a vector or scalar".into()),
    };
    let series = match &r.spec.kind {
        RuleKind::Recording => record(&r.spec, vector, limit)?,
        RuleKind::Alerting {
            for_ms,
            keep_firing_for_ms,
            annotations,
        } => {
            let candidates = alert_candidates(ctx, &r.spec, annotations, vector, ts).await;
            let cfg = Lifecycle {
                for_ms: *for_ms,
                keep_firing_for_ms: *keep_firing_for_ms,
                limit,
            };
            let res = alert::step(&mut r.active, candidates, ts, cfg);
            let series = alert::alert_series(&r.active);
            res.map(|()| series)?
        }
    };
    write_with_stale_markers(ctx, &mut r.written, series, ts).await
}

/// A recording rule's output series: the result labels, `__name__` set to
/// the rule name, the rule's labels on top.
fn record(
    spec: &RuleSpec,
    vector: Vec<(Labels, f64)>,
    limit: usize,
) -> Result<Vec<(Labels, f64)>, String> {
    if limit > 0 && vector.len() > limit {
        return Err(format!(
            "exceeded limit of {limit} with {} series",
            vector.len()
        ));
    }
    let mut seen = HashSet::with_capacity(vector.len());
    let mut out = Vec::with_capacity(vector.len());
    for (mut l, v) in vector {
        l.set("__name__", &spec.name);
        for (k, val) in &spec.labels {
            l.set(k, val);
        }
        if !seen.insert(l.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying rule labels".into(),
            );
        }
        out.push((l, v));
    }
    Ok(out)
}

/// Templated alert candidates for an alerting rule's result vector.
async fn alert_candidates(
    ctx: &Ctx,
    spec: &RuleSpec,
    annotations: &[(String, String)],
    vector: Vec<(Labels, f64)>,
    ts: i64,
) -> Vec<Candidate> {
    let spec = spec.clone();
    let annotations = annotations.to_vec();
    let ctx2 = ctx.clone();
    let handle = tokio::runtime::Handle::current();
    // Templates are synchronous (their `query` blocks on the engine), so
    // they run on a blocking thread.
    let res = tokio::task::spawn_blocking(move || {
        let querier = BlockingQuerier {
            ctx: &ctx2,
            handle,
        };
        let env = Env {
            querier: Some(&querier),
            ts_ms: ts,
            external_url: &ctx2.external_url,
        };
        vector
            .into_iter()
            .map(|(mut l, v)| {
                l.remove("__name__");
                let data = TemplateData::new(
                    label_map(&l),
                    BTreeMap::new(),
                    &ctx2.external_url,
                    v,
                );
                let mut labels = l;
                for (k, src) in &spec.labels {
                    let (val, _) = expand(&format!("__alert_{}", spec.name), src, &data, &env);
                    labels.set(k, &val);
                }
                labels.set("alertname", &spec.name);
                let annotations = annotations
                    .iter()
                    .map(|(k, src)| {
                        let (val, err) = expand(&format!("__alert_{}", spec.name), src, &data, &env);
                        if let Some(e) = err {
                            tracing::warn!(alert = %spec.name, annotation = %k, error = %e, "template expansion failed");
                        }
                        (k.clone(), val)
                    })
                    .collect();
                Candidate {
                    labels,
                    annotations,
                    value: v,
                }
            })
            .collect()
    })
    .await;
    res.unwrap_or_else(|e| {
        tracing::error!(error = %e, "alert template expansion panicked");
        Vec::new()
    })
}

/// Labels as the name -> value map templates and Alertmanager take.
pub fn label_map(l: &Labels) -> BTreeMap<String, String> {
    l.iter()
        .map(|x| (x.name.clone(), x.value.clone()))
        .collect()
}

/// The templates' `query`: the engine over the cluster, blocking.
struct BlockingQuerier<'a> {
    ctx: &'a Ctx,
    handle: tokio::runtime::Handle,
}

impl TemplateQuerier for BlockingQuerier<'_> {
    fn query(&self, q: &str, t_ms: i64) -> Result<Vec<QuerySample>, String> {
        let querier = self.ctx.store.querier();
        let out = self
            .handle
            .block_on(self.ctx.engine.instant(querier.as_ref(), q, t_ms))
            .map_err(|e| e.to_string())?;
        match out.value {
            Value::Vector(v) => Ok(v
                .iter()
                .map(|s| QuerySample {
                    labels: label_map(&s.labels),
                    value: s.v,
                })
                .collect()),
            Value::Scalar { v, .. } => Ok(vec![QuerySample {
                labels: BTreeMap::new(),
                value: v,
            }]),
            _ => Err("query result is not a vector or scalar".into()),
        }
    }
}

/// Writes `series` at `ts`, plus a stale marker for every series written
/// last time and not now.
async fn write_with_stale_markers(
    ctx: &Ctx,
    written: &mut HashSet<Labels>,
    series: Vec<(Labels, f64)>,
    ts: i64,
) -> Result<(), String> {
    let now: HashSet<Labels> = series.iter().map(|(l, _)| l.clone()).collect();
    let stale = written
        .difference(&now)
        .cloned()
        .map(|l| (l, f64::from_bits(STALE_NAN_BITS)));
    let samples: Vec<(Labels, Sample)> = series
        .into_iter()
        .chain(stale)
        .map(|(labels, v)| (labels, Sample { t: ts, v }))
        .collect();
    *written = now;
    if samples.is_empty() {
        return Ok(());
    }
    ctx.store.write(samples).await
}
