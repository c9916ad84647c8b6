//! The self-scrape: every `--self-scrape-interval` the server renders its own
//! `/metrics`, parses the text exposition and writes the samples into itself
//! through the normal write path, labelled `job="silverback"` and
//! `instance="<http address>"`, plus `up`. A newcomer has data to query at
//! once.

use std::time::Duration;

use query::model::{Label, Sample};

use crate::api::Shared;
use crate::ingest::BatchBuilder;

/// Parses one sample line of the Prometheus/OpenMetrics text format:
/// `name{a="x",b="y"} value [timestamp]`. Comments and blank lines give
/// `None`, as do malformed lines.
pub fn parse_line(line: &str) -> Option<(Vec<Label>, f64)> {
    let line = line.trim();
    if line.is_empty() || line.starts_with('#') {
        return None;
    }
    let name_end = line.find(['{', ' '])?;
    let mut labels = vec![Label::new("__name__", &line[..name_end])];
    let mut rest = &line[name_end..];
    if let Some(r) = rest.strip_prefix('{') {
        rest = r;
        loop {
            rest = rest.trim_start_matches([',', ' ']);
            if let Some(r) = rest.strip_prefix('}') {
                rest = r;
                break;
            }
            let eq = rest.find('=')?;
            let name = rest[..eq].trim().to_string();
            rest = rest[eq + 1..].strip_prefix('"')?;
            let mut value = String::new();
            let mut chars = rest.char_indices();
            let end = loop {
                let (i, c) = chars.next()?;
                match c {
                    '"' => break i,
                    '\\' => match chars.next()?.1 {
                        'n' => value.push('\n'),
                        other => value.push(other),
                    },
                    c => value.push(c),
                }
            };
            rest = &rest[end + 1..];
            labels.push(Label { name, value });
        }
    }
    let value = rest.split_whitespace().next()?;
    let v = match value {
        "+Inf" | "Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        s => s.parse().ok()?,
    };
    Some((labels, v))
}

/// Scrapes once: parses `text` and writes it at `t_ms`.
pub async fn scrape_once(s: &Shared, text: &str, t_ms: i64) -> Result<(), crate::error::ApiError> {
    let instance = s.cfg.http_listen.to_string();
    let mut b = BatchBuilder::new(&s.cfg.limits);
    let target = |mut labels: Vec<Label>| {
        labels.push(Label::new("job", "silverback"));
        labels.push(Label::new("instance", instance.as_str()));
        labels
    };
    b.add(
        target(vec![Label::new("__name__", "up")]),
        vec![Sample { t: t_ms, v: 1.0 }],
    );
    for (labels, v) in text.lines().filter_map(parse_line) {
        b.add(target(labels), vec![Sample { t: t_ms, v }]);
    }
    let BatchBuilder {
        series, refused, ..
    } = b;
    crate::api::write::write_series(s, series, refused).await
}

/// Runs the self-scrape loop until `stop` flips to true.
pub async fn run(s: Shared, interval: Duration, mut stop: tokio::sync::watch::Receiver<bool>) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.changed() => return,
        }
        if *stop.borrow() {
            return;
        }
        if !s.node.is_ready() {
            continue;
        }
        let text = s.metrics.render(&s.node.stats(), s.node.is_meta_leader());
        let now = chrono::Utc::now().timestamp_millis();
        if let Err(e) = scrape_once(&s, &text, now).await {
            tracing::warn!(error = %e, "self-scrape: cannot write own metrics");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines() {
        let f = |line: &str| {
            parse_line(line).map(|(l, v)| {
                (
                    query::model::Labels::from_pairs(l.into_iter().map(|l| (l.name, l.value)))
                        .to_string(),
                    v,
                )
            })
        };
        assert_eq!(f("# HELP x y"), None);
        assert_eq!(f(""), None);
        assert_eq!(
            f("x_total 3"),
            Some((r#"{__name__="x_total"}"#.into(), 3.0))
        );
        assert_eq!(
            f(r#"h_bucket{handler="/a b",le="+Inf"} 7 1700000000"#),
            Some((
                r#"{__name__="h_bucket", handler="/a b", le="+Inf"}"#.into(),
                7.0
            ))
        );
        assert_eq!(
            f(r#"m{a="q\"\\x\n"} -Inf"#),
            Some((r#"{__name__="m", a="q\"\\x\n"}"#.into(), f64::NEG_INFINITY))
        );
        assert!(f("m NaN").unwrap().1.is_nan());
        assert_eq!(f("m{a=\"x\"} notanumber"), None);
        assert_eq!(f("m{a=\"unterminated} 1"), None);
    }
}
