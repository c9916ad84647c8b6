//! The self-scrape: every `--self-scrape-interval` the server renders its own
//! `/metrics`, parses the text exposition and writes the samples into itself
//! through the normal write path, labelled `job="silverback"`,
//! `node="<node id>"` and `instance` (see [`instance`]), plus `up`. A
//! newcomer has data to query at once. Each node's series are its own, so
//! nodes never write (and reject as out of order) each other's samples.

use std::time::Duration;

use model::{Label, Sample};

use crate::api::Shared;
use crate::config::Config;
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

/// The `instance` label of this node's own series: `--http-listen` when it
/// names an address; when it listens on every address (`0.0.0.0:9201`,
/// the same on every node), the host others reach this node by
/// (`--advertise-addr`, else this node's `--peers` entry, else the machine's
/// host name) with the HTTP port.
pub fn instance(cfg: &Config, hostname: Option<&str>) -> String {
    let http = cfg.http_listen;
    if !http.ip().is_unspecified() {
        return http.to_string();
    }
    let advertised = cfg.advertise_addr.clone().or_else(|| {
        cfg.peers
            .iter()
            .find(|p| p.id == cfg.node_id)
            .map(|p| p.addr.clone())
    });
    let host = advertised
        .as_deref()
        .and_then(|a| a.rsplit_once(':').map(|(h, _)| h.to_string()))
        .filter(|h| !h.is_empty())
        .or_else(|| {
            hostname
                .map(str::trim)
                .filter(|h| !h.is_empty())
                .map(String::from)
        });
    match host {
        Some(h) => format!("{h}:{}", http.port()),
        None => http.to_string(),
    }
}

/// The machine's host name (Linux), for [`instance`].
pub fn hostname() -> Option<String> {
    std::fs::read_to_string("/proc/sys/kernel/hostname").ok()
}

/// Scrapes once: parses `text` and writes it at `t_ms`.
pub async fn scrape_once(s: &Shared, text: &str, t_ms: i64) -> Result<(), crate::error::ApiError> {
    let instance = instance(&s.cfg, hostname().as_deref());
    let node = s.cfg.node_id.to_string();
    let mut b = BatchBuilder::new(&s.cfg.limits);
    let target = |mut labels: Vec<Label>| {
        labels.push(Label::new("job", "silverback"));
        labels.push(Label::new("instance", instance.as_str()));
        labels.push(Label::new("node", node.as_str()));
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
    fn instance_names_this_node() {
        let cfg = |a: &[&str]| {
            let args = <crate::cli::Cli as clap::Parser>::try_parse_from(
                std::iter::once("silverback").chain(a.iter().copied()),
            )
            .expect("flags")
            .run;
            Config::merge(&args, &crate::config::FileConfig::default()).expect("config")
        };
        let peers = "1=sb-1:9301,2=sb-2:9301,3=sb-3:9301";
        let f = |a: &[&str], host: Option<&str>, want: &str| {
            assert_eq!(instance(&cfg(a), host), want, "{a:?}");
        };
        f(
            &["--http-listen", "10.0.0.5:9201"],
            Some("h"),
            "10.0.0.5:9201",
        );
        f(
            &[
                "--http-listen",
                "0.0.0.0:9201",
                "--node-id",
                "2",
                "--peers",
                peers,
            ],
            Some("h"),
            "sb-2:9201",
        );
        f(
            &[
                "--http-listen",
                "0.0.0.0:9201",
                "--node-id",
                "4",
                "--join",
                "sb-1:9301",
                "--advertise-addr",
                "sb-4.svc:9301",
            ],
            None,
            "sb-4.svc:9201",
        );
        f(
            &["--http-listen", "0.0.0.0:9201"],
            Some("box7\n"),
            "box7:9201",
        );
        f(&["--http-listen", "0.0.0.0:9201"], None, "0.0.0.0:9201");
        f(
            &[
                "--http-listen",
                "[::]:9201",
                "--advertise-addr",
                "[fd00::4]:9301",
            ],
            None,
            "[fd00::4]:9201",
        );
    }

    #[test]
    fn lines() {
        let f = |line: &str| {
            parse_line(line).map(|(l, v)| {
                (
                    model::Labels::from_pairs(l.into_iter().map(|l| (l.name, l.value))).to_string(),
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
