//! The alert lifecycle as pure code: one evaluation of an alerting rule
//! turns the templated query results into state changes (pending → firing
//! → inactive, `for`, `keep_firing_for`, the 15-minute retention of resolved
//! alerts), the `ALERTS`/`ALERTS_FOR_STATE` samples to write, and the alerts
//! due for sending. No clock, no I/O: the caller passes the evaluation time.

use std::collections::{BTreeMap, HashSet};

use model::Labels;
use serde::{Deserialize, Serialize};

/// How long a resolved alert is kept (and re-sent) after it resolves.
pub const RESOLVED_RETENTION_MS: i64 = 15 * 60 * 1000;

/// The state of an alert, as `/api/v1/alerts` names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertState {
    /// Resolved (kept for re-sending the resolution).
    Inactive,
    /// Active for less than `for`.
    Pending,
    /// Active for at least `for`.
    Firing,
}

impl AlertState {
    /// The name used in the API and in `ALERTS{alertstate=...}`.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertState::Inactive => "inactive",
            AlertState::Pending => "pending",
            AlertState::Firing => "firing",
        }
    }
}

/// One alert of a rule (one label set).
#[derive(Clone, Debug, PartialEq)]
pub struct Alert {
    /// Final labels (sample labels without `__name__`, rule labels,
    /// `alertname`).
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: Vec<(String, String)>,
    /// State.
    pub state: AlertState,
    /// The value of the last evaluation that returned it.
    pub value: f64,
    /// When it became active (ms).
    pub active_at: i64,
    /// When it started firing.
    pub fired_at: Option<i64>,
    /// When it resolved.
    pub resolved_at: Option<i64>,
    /// When it was last sent to Alertmanager.
    pub last_sent_at: Option<i64>,
    /// `endsAt` of a firing alert as last sent.
    pub valid_until: i64,
    /// Since when it is kept firing although the query no longer returns it.
    pub keep_firing_since: Option<i64>,
}

/// One query result after templating.
#[derive(Clone, Debug, PartialEq)]
pub struct Candidate {
    /// Final labels.
    pub labels: Labels,
    /// Expanded annotations.
    pub annotations: Vec<(String, String)>,
    /// The sample value.
    pub value: f64,
}

/// Settings of an alerting rule that the lifecycle needs.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Lifecycle {
    /// `for`, ms.
    pub for_ms: i64,
    /// `keep_firing_for`, ms.
    pub keep_firing_for_ms: i64,
    /// Group limit (0 = none).
    pub limit: usize,
}

/// Applies one evaluation at `ts` to the active alerts of a rule. Returns
/// an error (and changes nothing, except that the limit error clears all
/// alerts as Prometheus does) on duplicate label sets or an exceeded limit.
pub fn step(
    active: &mut BTreeMap<Labels, Alert>,
    results: Vec<Candidate>,
    ts: i64,
    cfg: Lifecycle,
) -> Result<(), String> {
    let mut seen = HashSet::with_capacity(results.len());
    for c in &results {
        if !seen.insert(c.labels.clone()) {
            return Err(
                "vector contains metrics with the same labelset after applying alert labels".into(),
            );
        }
    }
    for c in results {
        match active.get_mut(&c.labels) {
            Some(a) if a.state != AlertState::Inactive => {
                a.value = c.value;
                a.annotations = c.annotations;
            }
            _ => {
                active.insert(
                    c.labels.clone(),
                    Alert {
                        labels: c.labels,
                        annotations: c.annotations,
                        state: AlertState::Pending,
                        value: c.value,
                        active_at: ts,
                        fired_at: None,
                        resolved_at: None,
                        last_sent_at: None,
                        valid_until: 0,
                        keep_firing_since: None,
                    },
                );
            }
        }
    }
    let mut n_active = 0;
    active.retain(|labels, a| {
        if !seen.contains(labels) {
            let mut keep_firing = false;
            if a.state == AlertState::Firing && cfg.keep_firing_for_ms > 0 {
                let since = *a.keep_firing_since.get_or_insert(ts);
                keep_firing = ts - since < cfg.keep_firing_for_ms;
            }
            if a.state == AlertState::Pending
                || a.resolved_at
                    .is_some_and(|r| ts - r > RESOLVED_RETENTION_MS)
            {
                return false;
            }
            if !keep_firing {
                if a.state != AlertState::Inactive {
                    a.state = AlertState::Inactive;
                    a.resolved_at = Some(ts);
                }
                return true;
            }
        } else {
            a.keep_firing_since = None;
        }
        n_active += 1;
        if a.state == AlertState::Pending && ts - a.active_at >= cfg.for_ms {
            a.state = AlertState::Firing;
            a.fired_at = Some(ts);
        }
        true
    });
    if cfg.limit > 0 && n_active > cfg.limit {
        active.clear();
        return Err(format!(
            "exceeded limit of {} with {n_active} alerts",
            cfg.limit
        ));
    }
    Ok(())
}

/// The `ALERTS` and `ALERTS_FOR_STATE` series (labels, value) for the
/// pending and firing alerts.
pub fn alert_series(active: &BTreeMap<Labels, Alert>) -> Vec<(Labels, f64)> {
    let mut out = Vec::new();
    for a in active.values().filter(|a| a.state != AlertState::Inactive) {
        let mut l = a.labels.clone();
        l.set("__name__", "ALERTS");
        l.set("alertstate", a.state.as_str());
        out.push((l, 1.0));
        let mut l = a.labels.clone();
        l.set("__name__", "ALERTS_FOR_STATE");
        out.push((l, (a.active_at / 1000) as f64));
    }
    out
}

/// Whether an alert is due for (re)sending at `ts`: firing alerts at the
/// first evaluation at least `resend_delay` after the last send, resolved
/// alerts at once when they resolve and then like firing ones.
pub fn needs_sending(a: &Alert, ts: i64, resend_delay_ms: i64) -> bool {
    if a.state == AlertState::Pending {
        return false;
    }
    match (a.resolved_at, a.last_sent_at) {
        (_, None) => true,
        (Some(r), Some(s)) if r > s => true,
        (_, Some(s)) => ts >= s + resend_delay_ms,
    }
}

/// Marks the alerts due at `ts` as sent and returns copies of them.
pub fn due_for_sending(
    active: &mut BTreeMap<Labels, Alert>,
    ts: i64,
    resend_delay_ms: i64,
    interval_ms: i64,
) -> Vec<Alert> {
    let mut out = Vec::new();
    for a in active.values_mut() {
        if needs_sending(a, ts, resend_delay_ms) {
            a.last_sent_at = Some(ts);
            a.valid_until = ts + 4 * resend_delay_ms.max(interval_ms);
            out.push(a.clone());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1000;

    fn cand(instance: &str, v: f64) -> Candidate {
        Candidate {
            labels: Labels::from_pairs([("alertname", "A"), ("instance", instance)]),
            annotations: vec![("summary".into(), format!("{instance} is {v}"))],
            value: v,
        }
    }

    fn cfg(for_ms: i64, keep: i64) -> Lifecycle {
        Lifecycle {
            for_ms,
            keep_firing_for_ms: keep,
            limit: 0,
        }
    }

    /// Runs evaluations every 10 s; `present[i]` says whether the query
    /// returns the alert at step i; returns the state after each step.
    fn run(present: &[bool], c: Lifecycle) -> Vec<&'static str> {
        let mut active = BTreeMap::new();
        present
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let res = if *p { vec![cand("a", 1.0)] } else { vec![] };
                step(&mut active, res, i as i64 * 10 * S, c).unwrap();
                active
                    .values()
                    .next()
                    .map(|a: &Alert| a.state.as_str())
                    .unwrap_or("none")
            })
            .collect()
    }

    #[test]
    fn pending_firing_resolved() {
        assert_eq!(
            run(&[true, true, true, true, false, false], cfg(30 * S, 0)),
            ["pending", "pending", "pending", "firing", "inactive", "inactive"]
        );
    }

    #[test]
    fn zero_for_fires_at_once() {
        assert_eq!(run(&[true, false], cfg(0, 0)), ["firing", "inactive"]);
    }

    #[test]
    fn for_shorter_than_interval_fires_on_second_evaluation() {
        assert_eq!(run(&[true, true], cfg(5 * S, 0)), ["pending", "firing"]);
    }

    #[test]
    fn pending_alert_that_disappears_is_dropped() {
        assert_eq!(
            run(&[true, false, true, true], cfg(10 * S, 0)),
            ["pending", "none", "pending", "firing"]
        );
    }

    #[test]
    fn keep_firing_for() {
        // Fires at once; gone from 10 s on: kept firing while less than 25 s
        // have passed since the first miss (Prometheus' keepFiringSince):
        // still firing at 10, 20 and 30 s, resolved at 40 s.
        assert_eq!(
            run(&[true, false, false, false, false], cfg(0, 25 * S)),
            ["firing", "firing", "firing", "firing", "inactive"]
        );
        // Coming back resets keep_firing_since.
        assert_eq!(
            run(&[true, false, true, false, false, false], cfg(0, 15 * S)),
            ["firing", "firing", "firing", "firing", "firing", "inactive"]
        );
    }

    #[test]
    fn flapping_alert_restarts_pending_after_resolve() {
        let mut active = BTreeMap::new();
        let c = cfg(10 * S, 0);
        step(&mut active, vec![cand("a", 1.0)], 0, c).unwrap();
        step(&mut active, vec![cand("a", 1.0)], 10 * S, c).unwrap();
        assert_eq!(active.values().next().unwrap().state, AlertState::Firing);
        step(&mut active, vec![], 20 * S, c).unwrap();
        let a = active.values().next().unwrap();
        assert_eq!(
            (a.state, a.resolved_at),
            (AlertState::Inactive, Some(20 * S))
        );
        step(&mut active, vec![cand("a", 2.0)], 30 * S, c).unwrap();
        let a = active.values().next().unwrap();
        assert_eq!(
            (a.state, a.active_at, a.resolved_at, a.value),
            (AlertState::Pending, 30 * S, None, 2.0)
        );
    }

    #[test]
    fn resolved_alert_is_kept_for_retention_then_dropped() {
        let mut active = BTreeMap::new();
        let c = cfg(0, 0);
        step(&mut active, vec![cand("a", 1.0)], 0, c).unwrap();
        step(&mut active, vec![], 60 * S, c).unwrap();
        step(&mut active, vec![], 60 * S + RESOLVED_RETENTION_MS, c).unwrap();
        assert_eq!(active.len(), 1, "kept at exactly the retention");
        step(&mut active, vec![], 61 * S + RESOLVED_RETENTION_MS, c).unwrap();
        assert!(active.is_empty());
    }

    #[test]
    fn duplicate_labelsets_fail_the_cycle_without_changes() {
        let mut active = BTreeMap::new();
        step(&mut active, vec![cand("a", 1.0)], 0, cfg(60 * S, 0)).unwrap();
        let before = active.clone();
        let err = step(
            &mut active,
            vec![cand("b", 1.0), cand("b", 2.0)],
            10 * S,
            cfg(60 * S, 0),
        )
        .unwrap_err();
        assert!(err.contains("same labelset"), "{err}");
        assert_eq!(active, before);
    }

    #[test]
    fn limit_exceeded_clears_alerts() {
        let mut active = BTreeMap::new();
        let c = Lifecycle {
            limit: 1,
            ..cfg(0, 0)
        };
        let err = step(&mut active, vec![cand("a", 1.0), cand("b", 1.0)], 0, c).unwrap_err();
        assert_eq!(err, "exceeded limit of 1 with 2 alerts");
        assert!(active.is_empty());
    }

    #[test]
    fn alerts_series_and_annotations_update() {
        let mut active = BTreeMap::new();
        step(&mut active, vec![cand("a", 1.0)], 5 * S, cfg(60 * S, 0)).unwrap();
        step(&mut active, vec![cand("a", 7.0)], 15 * S, cfg(60 * S, 0)).unwrap();
        let s = alert_series(&active);
        assert_eq!(
            s[0].0.to_string(),
            r#"{__name__="ALERTS", alertname="A", alertstate="pending", instance="a"}"#
        );
        assert_eq!(
            s[1],
            (
                Labels::from_pairs([
                    ("__name__", "ALERTS_FOR_STATE"),
                    ("alertname", "A"),
                    ("instance", "a")
                ]),
                5.0
            )
        );
        assert_eq!(active.values().next().unwrap().annotations[0].1, "a is 7");
    }

    #[test]
    fn resend_schedule() {
        let mut active = BTreeMap::new();
        let c = cfg(0, 0);
        let mut sent_at = Vec::new();
        for i in 0..10 {
            let ts = i * 15 * S;
            let res = if i < 7 { vec![cand("a", 1.0)] } else { vec![] };
            step(&mut active, res, ts, c).unwrap();
            for a in due_for_sending(&mut active, ts, 60 * S, 15 * S) {
                sent_at.push((ts / S, a.state.as_str(), a.valid_until / S));
            }
        }
        // Firing at 0, resent at 60 s (first multiple of 15 s >= 1 m), resolved at 105 s sent at once.
        assert_eq!(
            sent_at,
            [
                (0, "firing", 240),
                (60, "firing", 300),
                (105, "inactive", 345)
            ]
        );
    }
}
