//! The rule manager: one task per group, evaluating on the meta leader only.
//!
//! Every node loads the rule files and runs the same group tasks; at each
//! evaluation time (a multiple of the group interval, the same instant on
//! every node) a task evaluates only if its node leads the meta group. The
//! alert state of each group (active-at, firing, last sent, per alert) is
//! written to the meta group's replicated key-value store after every
//! cycle, so a new leader restores it and continues every `for` timer where
//! the old leader stopped; followers restore it too, so `/api/v1/alerts`
//! answers the same on every node.

use std::collections::BTreeMap;
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use chrono::SecondsFormat;
use model::Labels;
use parking_lot::{Mutex, RwLock};
use query::parser::ParseOptions;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value as Json};
use tokio::task::JoinHandle;

use super::alert::{Alert, AlertState};
use super::group::{evaluate, label_map, Ctx, GroupState, Health};
use super::model::{load_all, GroupSpec, RuleKind};
use super::notifier::{AmAlert, Notifier};
use super::template::gofmt::format_e_shortest;
use crate::api::params::Params;
use crate::api::rules::RulesApi;
use crate::error::ApiError;
use crate::metrics::Metrics;

/// One group: its state (read by the API) and its task.
struct Runner {
    state: RwLock<GroupState>,
    /// The last alert state written to the meta group.
    persisted: Mutex<Vec<u8>>,
}

/// Loads rule files, runs the groups, answers the rules API.
pub struct Manager {
    /// Itself, for the group tasks that `reload` starts.
    me: Weak<Manager>,
    /// The cluster member: leadership and the replicated alert state.
    node: Arc<cluster::Node>,
    ctx: Ctx,
    patterns: Vec<String>,
    notifier: Option<Notifier>,
    metrics: Arc<Metrics>,
    runners: RwLock<Vec<Arc<Runner>>>,
    tasks: Mutex<Vec<JoinHandle<()>>>,
}

impl Manager {
    /// Loads `patterns` (globs) and starts a task per group. A bad rule file
    /// fails the start with every error named.
    pub fn start(
        node: Arc<cluster::Node>,
        ctx: Ctx,
        patterns: Vec<String>,
        notifier: Option<Notifier>,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Manager>, String> {
        let groups = load(&patterns, ctx.engine.options().parse)?;
        let m = Arc::new_cyclic(|me| Manager {
            me: me.clone(),
            node,
            ctx,
            patterns,
            notifier,
            metrics,
            runners: RwLock::new(Vec::new()),
            tasks: Mutex::new(Vec::new()),
        });
        m.install(groups);
        Ok(m)
    }

    /// Replaces the running groups with `groups`.
    fn install(&self, groups: Vec<GroupSpec>) {
        let Some(me) = self.me.upgrade() else {
            return; // shutting down
        };
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
        let runners: Vec<Arc<Runner>> = groups
            .into_iter()
            .map(|g| {
                Arc::new(Runner {
                    state: RwLock::new(GroupState::new(g)),
                    persisted: Mutex::new(Vec::new()),
                })
            })
            .collect();
        let mut tasks = self.tasks.lock();
        for r in &runners {
            tasks.push(tokio::spawn(run_group(me.clone(), r.clone())));
        }
        *self.runners.write() = runners;
        tracing::info!(groups = tasks.len(), "rule groups loaded");
    }

    /// Stops every group task.
    pub fn stop(&self) {
        for t in self.tasks.lock().drain(..) {
            t.abort();
        }
    }

    fn snapshot(&self) -> Vec<GroupState> {
        self.runners
            .read()
            .iter()
            .map(|r| r.state.read().clone())
            .collect()
    }

    /// The meta key holding a group's alert state.
    fn state_key(g: &GroupSpec) -> String {
        format!("rules/alerts/{}", g.key())
    }

    /// Replaces the alerts of `g` with the replicated state, if any.
    fn restore(&self, g: &mut GroupState) {
        let Some(bytes) = self.node.meta_get(&Self::state_key(&g.spec)) else {
            return;
        };
        let Ok(saved) = serde_json::from_slice::<BTreeMap<usize, SavedRule>>(&bytes) else {
            tracing::warn!(group = %g.spec.name, "unreadable alert state in the meta group");
            return;
        };
        for (i, r) in g.rules.iter_mut().enumerate() {
            r.active = match saved.get(&i) {
                Some(s) if s.name == r.spec.name => s
                    .alerts
                    .iter()
                    .map(|a| {
                        let alert = a.to_alert();
                        (alert.labels.clone(), alert)
                    })
                    .collect(),
                _ => BTreeMap::new(),
            };
        }
    }

    /// Writes the alert state of `g` to the meta group when it changed.
    async fn persist(&self, runner: &Runner, g: &GroupState) {
        let saved: BTreeMap<usize, SavedRule> = g
            .rules
            .iter()
            .enumerate()
            .filter(|(_, r)| matches!(r.spec.kind, RuleKind::Alerting { .. }))
            .map(|(i, r)| {
                let alerts = r.active.values().map(SavedAlert::from_alert).collect();
                (
                    i,
                    SavedRule {
                        name: r.spec.name.clone(),
                        alerts,
                    },
                )
            })
            .collect();
        let Ok(bytes) = serde_json::to_vec(&saved) else {
            return;
        };
        if *runner.persisted.lock() == bytes {
            return;
        }
        match self
            .node
            .meta_put(Self::state_key(&g.spec), bytes.clone())
            .await
        {
            Ok(()) => *runner.persisted.lock() = bytes,
            Err(e) => {
                tracing::warn!(group = %g.spec.name, error = %e, "cannot replicate alert state")
            }
        }
    }

    fn notify(&self, expr: &str, alerts: &[Alert]) {
        let Some(n) = &self.notifier else {
            return;
        };
        let link = format!(
            "{}/graph?g0.expr={}&g0.tab=1",
            self.ctx.external_url,
            form_urlencoded::byte_serialize(expr.as_bytes()).collect::<String>()
        );
        n.send(
            alerts
                .iter()
                .map(|a| AmAlert {
                    labels: label_map(&a.labels),
                    annotations: a.annotations.iter().cloned().collect(),
                    starts_at: rfc3339(a.fired_at.unwrap_or(a.active_at)),
                    ends_at: rfc3339(a.resolved_at.unwrap_or(a.valid_until)),
                    generator_url: link.clone(),
                })
                .collect(),
        );
    }
}

/// The task of one group.
async fn run_group(m: Arc<Manager>, runner: Arc<Runner>) {
    let interval = runner.state.read().spec.interval_ms.max(1);
    let mut leading = false;
    loop {
        let now = chrono::Utc::now().timestamp_millis();
        let ts = (now / interval + 1) * interval;
        tokio::time::sleep(Duration::from_millis((ts - now).max(0) as u64)).await;
        let mut g = runner.state.read().clone();
        if !m.node.is_meta_leader() {
            leading = false;
            m.restore(&mut g);
            *runner.state.write() = g;
            continue;
        }
        if !leading {
            // Read the alert state only once everything the old leader
            // committed is applied here.
            if let Err(e) = m.node.meta_read_barrier().await {
                tracing::debug!(error = %e, "not evaluating: meta leadership not confirmed");
                continue;
            }
            m.restore(&mut g);
            leading = true;
            tracing::info!(group = %g.spec.name, "evaluating rule group on this node (meta leader)");
        }
        let due = evaluate(&m.ctx, &mut g, ts).await;
        m.metrics.rule_evaluations.inc_by(g.rules.len() as u64);
        let failed = g.rules.iter().filter(|r| r.health.state == "err").count();
        m.metrics.rule_evaluation_failures.inc_by(failed as u64);
        for (expr, alerts) in &due {
            m.notify(expr, alerts);
        }
        m.persist(&runner, &g).await;
        *runner.state.write() = g;
    }
}

fn load(patterns: &[String], opts: ParseOptions) -> Result<Vec<GroupSpec>, String> {
    load_all(patterns, opts).map_err(|errs| {
        errs.iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; ")
    })
}

#[async_trait]
impl RulesApi for Manager {
    fn rules(&self, p: &Params) -> Result<Json, ApiError> {
        let kind = p.get("type");
        if !matches!(kind, None | Some("alert" | "record")) {
            return Err(ApiError::bad_data(
                "invalid parameter \"type\": must be \"alert\" or \"record\"",
            ));
        }
        let names = p.get_all("rule_name[]");
        let group_names = p.get_all("rule_group[]");
        let files = p.get_all("file[]");
        let groups: Vec<Json> = self
            .snapshot()
            .iter()
            .filter(|g| group_names.is_empty() || group_names.contains(&g.spec.name.as_str()))
            .filter(|g| files.is_empty() || files.contains(&g.spec.file.as_str()))
            .filter_map(|g| {
                let rules: Vec<Json> = g
                    .rules
                    .iter()
                    .filter(|r| names.is_empty() || names.contains(&r.spec.name.as_str()))
                    .filter(|r| match (&r.spec.kind, kind) {
                        (_, None) => true,
                        (RuleKind::Alerting { .. }, Some(k)) => k == "alert",
                        (RuleKind::Recording, Some(k)) => k == "record",
                    })
                    .map(rule_json)
                    .collect();
                let filtered = !names.is_empty() || kind.is_some();
                (!filtered || !rules.is_empty()).then(|| {
                    json!({
                        "name": g.spec.name,
                        "file": g.spec.file,
                        "rules": rules,
                        "interval": g.spec.interval_ms as f64 / 1000.0,
                        "limit": g.spec.limit,
                        "evaluationTime": g.health.eval_seconds,
                        "lastEvaluation": last_eval(&g.health),
                    })
                })
            })
            .collect();
        Ok(json!({ "groups": groups }))
    }

    fn alerts(&self) -> Json {
        let alerts: Vec<Json> = self
            .snapshot()
            .iter()
            .flat_map(|g| g.rules.iter().flat_map(|r| r.active.values()))
            .filter(|a| a.state != AlertState::Inactive)
            .map(alert_json)
            .collect();
        json!({ "alerts": alerts })
    }

    /// Re-reads the rule files; on error the running rules stay. Alert
    /// state carries over through the meta group.
    async fn reload(&self) -> Result<(), String> {
        let groups = load(&self.patterns, self.ctx.engine.options().parse)?;
        self.install(groups);
        Ok(())
    }
}

fn rfc3339(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

fn last_eval(h: &Health) -> String {
    // Prometheus shows Go's zero time for a rule not evaluated yet.
    h.last_eval_ms
        .map(rfc3339)
        .unwrap_or_else(|| "0001-01-01T00:00:00Z".into())
}

fn alert_json(a: &Alert) -> Json {
    let mut j = json!({
        "labels": label_map(&a.labels),
        "annotations": a.annotations.iter().cloned().collect::<BTreeMap<_, _>>(),
        "state": a.state.as_str(),
        "activeAt": rfc3339(a.active_at),
        "value": format_e_shortest(a.value),
    });
    if let Some(k) = a.keep_firing_since {
        j["keepFiringSince"] = json!(rfc3339(k));
    }
    j
}

fn rule_json(r: &super::group::RuleState) -> Json {
    let labels: BTreeMap<&str, &str> = r
        .spec
        .labels
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let mut j = json!({
        "name": r.spec.name,
        "query": r.spec.expr,
        "labels": labels,
        "health": r.health.state,
        "evaluationTime": r.health.eval_seconds,
        "lastEvaluation": last_eval(&r.health),
    });
    if !r.health.last_error.is_empty() {
        j["lastError"] = json!(r.health.last_error);
    }
    match &r.spec.kind {
        RuleKind::Recording => j["type"] = json!("recording"),
        RuleKind::Alerting {
            for_ms,
            keep_firing_for_ms,
            annotations,
        } => {
            let active: Vec<&Alert> = r
                .active
                .values()
                .filter(|a| a.state != AlertState::Inactive)
                .collect();
            let state = if active.iter().any(|a| a.state == AlertState::Firing) {
                "firing"
            } else if active.is_empty() {
                "inactive"
            } else {
                "pending"
            };
            j["type"] = json!("alerting");
            j["state"] = json!(state);
            j["duration"] = json!(*for_ms as f64 / 1000.0);
            j["keepFiringFor"] = json!(*keep_firing_for_ms as f64 / 1000.0);
            j["annotations"] = json!(annotations.iter().cloned().collect::<BTreeMap<_, _>>());
            j["alerts"] = json!(active.into_iter().map(alert_json).collect::<Vec<_>>());
        }
    }
    j
}

/// A rule's alerts as replicated in the meta group.
#[derive(Serialize, Deserialize)]
struct SavedRule {
    name: String,
    alerts: Vec<SavedAlert>,
}

/// An [`Alert`] in the meta group (the value as bits: JSON has no NaN).
#[derive(Serialize, Deserialize)]
struct SavedAlert {
    labels: Vec<(String, String)>,
    annotations: Vec<(String, String)>,
    state: AlertState,
    value_bits: u64,
    active_at: i64,
    fired_at: Option<i64>,
    resolved_at: Option<i64>,
    last_sent_at: Option<i64>,
    valid_until: i64,
    keep_firing_since: Option<i64>,
}

impl SavedAlert {
    fn from_alert(a: &Alert) -> Self {
        SavedAlert {
            labels: a
                .labels
                .iter()
                .map(|l| (l.name.clone(), l.value.clone()))
                .collect(),
            annotations: a.annotations.clone(),
            state: a.state,
            value_bits: a.value.to_bits(),
            active_at: a.active_at,
            fired_at: a.fired_at,
            resolved_at: a.resolved_at,
            last_sent_at: a.last_sent_at,
            valid_until: a.valid_until,
            keep_firing_since: a.keep_firing_since,
        }
    }

    fn to_alert(&self) -> Alert {
        Alert {
            labels: Labels::from_pairs(self.labels.iter().cloned()),
            annotations: self.annotations.clone(),
            state: self.state,
            value: f64::from_bits(self.value_bits),
            active_at: self.active_at,
            fired_at: self.fired_at,
            resolved_at: self.resolved_at,
            last_sent_at: self.last_sent_at,
            valid_until: self.valid_until,
            keep_firing_since: self.keep_firing_since,
        }
    }
}
