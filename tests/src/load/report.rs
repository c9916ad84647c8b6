//! The result of one system's run (JSON) and the Markdown report that puts
//! all of them side by side.

use serde::{Deserialize, Serialize};

use std::collections::BTreeMap;

use super::compare::{before_2_51, compare, Agreement, Rule, PRE_2_51_RATE, STRICT, VM_RATE};
use super::queries::QueryResult;
use super::send::IngestStats;

/// System keys the report knows how to compare.
pub const PROMETHEUS: &str = "prometheus";
/// VictoriaMetrics single node.
pub const VICTORIA: &str = "victoriametrics";
/// Silverback, one node.
pub const SILVERBACK: &str = "silverback";
/// Silverback, three nodes, replication factor 3.
pub const SILVERBACK_3: &str = "silverback-3";

/// The data a run sent.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct ShapeInfo {
    /// Series.
    pub series: usize,
    /// Samples per series.
    pub points: usize,
    /// Scrape interval (s).
    pub interval_s: f64,
    /// Instances.
    pub instances: usize,
    /// Seed.
    pub seed: u64,
    /// Last sample (Unix ms).
    pub end_ms: i64,
    /// Samples in total.
    pub samples: u64,
}

/// How fast the requests were built (nothing sent).
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct GeneratorStats {
    /// Wall time to generate and encode every request.
    pub seconds: f64,
    /// Samples per second of generation.
    pub samples_per_sec: f64,
    /// Threads used.
    pub threads: usize,
    /// Requests built.
    pub requests: usize,
    /// Uncompressed protobuf bytes.
    pub raw_bytes: u64,
    /// Snappy-compressed bytes (what is sent).
    pub compressed_bytes: u64,
}

/// Disk use after the system's flush/compaction.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct Disk {
    /// Bytes of stored data (all nodes for a cluster): what the system keeps
    /// once flushed, without write-ahead logs (the Raft log is Silverback's).
    pub bytes: u64,
    /// `bytes / samples sent`.
    pub bytes_per_sample: f64,
    /// Every byte under the data directories, logs included.
    pub total_bytes: u64,
    /// `total_bytes / samples sent`.
    pub total_bytes_per_sample: f64,
    /// Breakdown (RocksDB column families, `wal`, `other`), when known.
    pub parts: BTreeMap<String, u64>,
    /// What was measured, after what.
    pub how: String,
}

/// Everything measured for one system.
#[derive(Clone, Debug, Default, Serialize, Deserialize)]
pub struct RunResult {
    /// Key: [`PROMETHEUS`], [`VICTORIA`], [`SILVERBACK`], [`SILVERBACK_3`] or
    /// anything else.
    pub system: String,
    /// Column title, with the version.
    pub title: String,
    /// How the server(s) were started.
    pub commands: Vec<String>,
    /// Server processes measured.
    pub pids: Vec<u32>,
    /// The data.
    pub shape: ShapeInfo,
    /// Samples per request.
    pub per_request: usize,
    /// Requests in flight.
    pub concurrency: usize,
    /// Request building.
    pub generator: GeneratorStats,
    /// Sending.
    pub ingest: IngestStats,
    /// RSS of the server(s) before the first write.
    pub idle_rss_bytes: u64,
    /// Server CPU seconds (user + system, all processes) from the first write
    /// to the last acknowledgement.
    pub ingest_cpu_seconds: f64,
    /// `ingest_cpu_seconds / samples`, in µs.
    pub cpu_us_per_sample: f64,
    /// Sum of the processes' `VmHWM` at the end of the run.
    pub peak_rss_bytes: u64,
    /// `peak_rss_bytes / series`.
    pub rss_per_series_bytes: f64,
    /// The dashboard queries.
    pub queries: Vec<QueryResult>,
    /// Disk, filled in by `silverback-load set-disk` after the flush.
    pub disk: Option<Disk>,
}

/// The machine and the run, for the report's header.
#[derive(Clone, Debug, Default)]
pub struct Meta {
    /// When (as the script gives it).
    pub date: String,
    /// CPU model and count, memory, kernel.
    pub machine: String,
    /// The command that produced the report.
    pub command: String,
    /// Wall time of the whole comparison (s), if known.
    pub elapsed_s: Option<f64>,
    /// Free text appended under "Notes".
    pub notes: Vec<String>,
}

fn find<'a>(rs: &'a [RunResult], key: &str) -> Option<&'a RunResult> {
    rs.iter().find(|r| r.system == key)
}

/// The rule for comparing `system`'s answer to the reference's (whose
/// report title is `reference_title`, e.g. "Prometheus 2.42.0").
pub fn tolerance(system: &str, uses_rate: bool, reference_title: &str) -> Rule {
    let silverback = system == SILVERBACK || system == SILVERBACK_3;
    let old_reference = reference_title
        .strip_prefix("Prometheus ")
        .is_some_and(before_2_51);
    if !uses_rate {
        STRICT
    } else if system == VICTORIA {
        VM_RATE
    } else if silverback && old_reference {
        PRE_2_51_RATE
    } else {
        STRICT
    }
}

/// Compares every query of `r` with the same query of `reference`.
pub fn agreements(reference: &RunResult, r: &RunResult) -> Vec<Option<Agreement>> {
    r.queries
        .iter()
        .map(|q| {
            let want = reference
                .queries
                .iter()
                .find(|x| x.query == q.query)?
                .answer
                .as_ref()?;
            let got = q.answer.as_ref()?;
            Some(compare(
                want,
                got,
                tolerance(&r.system, q.query.uses_rate, &reference.title),
            ))
        })
        .collect()
}

fn si(x: f64) -> String {
    if !x.is_finite() {
        return "–".into();
    }
    let a = x.abs();
    if a >= 1e6 {
        format!("{:.2} M", x / 1e6)
    } else if a >= 1e4 {
        format!("{:.0} k", x / 1e3)
    } else if a >= 100.0 {
        format!("{x:.0}")
    } else {
        format!("{x:.2}")
    }
}

fn ratio(a: Option<f64>, b: Option<f64>) -> String {
    match (a, b) {
        (Some(a), Some(b)) if b != 0.0 && a.is_finite() && b.is_finite() => {
            format!("{:.2}×", a / b)
        }
        _ => "–".into(),
    }
}

fn ms(x: Option<f64>) -> String {
    match x {
        Some(v) if v >= 100.0 => format!("{v:.0}"),
        Some(v) if v >= 10.0 => format!("{v:.1}"),
        Some(v) => format!("{v:.2}"),
        None => "failed".into(),
    }
}

/// One row of figures per metric.
type Metric = (&'static str, fn(&RunResult) -> Option<f64>);

const METRICS: [Metric; 10] = [
    ("ingest, samples/s (higher is better)", |r| {
        Some(r.ingest.samples_per_sec)
    }),
    ("series ingested per second (series ÷ ingest seconds; with few points per series, the rate of creating them)", |r| {
        (r.ingest.seconds > 0.0).then(|| r.shape.series as f64 / r.ingest.seconds)
    }),
    ("remote-write request latency p50, ms", |r| {
        (r.ingest.latency_p50_ms > 0.0).then_some(r.ingest.latency_p50_ms)
    }),
    ("remote-write request latency p99, ms", |r| {
        (r.ingest.latency_p99_ms > 0.0).then_some(r.ingest.latency_p99_ms)
    }),
    ("server CPU per sample, µs", |r| Some(r.cpu_us_per_sample)),
    ("peak RSS, MiB", |r| {
        Some(r.peak_rss_bytes as f64 / 1048576.0)
    }),
    ("peak RSS per series, KiB", |r| {
        Some(r.rss_per_series_bytes / 1024.0)
    }),
    ("idle RSS before ingest, MiB", |r| {
        Some(r.idle_rss_bytes as f64 / 1048576.0)
    }),
    ("disk, bytes/sample (stored data)", |r| {
        r.disk.as_ref().map(|d| d.bytes_per_sample)
    }),
    ("disk, bytes/sample (whole data dir, logs included)", |r| {
        r.disk.as_ref().map(|d| d.total_bytes_per_sample)
    }),
];

/// Renders the whole BENCHMARKS.md.
pub fn render(results: &[RunResult], meta: &Meta) -> String {
    let mut o = String::new();
    let push = |o: &mut String, s: &str| {
        o.push_str(s);
        o.push('\n');
    };
    let prom = find(results, PROMETHEUS);
    let vm = find(results, VICTORIA);
    let sb = find(results, SILVERBACK);
    let sb3 = find(results, SILVERBACK_3);
    push(
        &mut o,
        "# Benchmarks: Silverback beside Prometheus and VictoriaMetrics\n",
    );
    push(
        &mut o,
        "Generated by `tests/bench/compare.sh` (the load tool is `tests/src/bin/silverback-load.rs`, \
         its modules `tests/src/load/`). Do not edit by hand: rerun the script.\n",
    );
    push(&mut o, &format!("- Date: {}", meta.date));
    push(&mut o, &format!("- Machine: {}", meta.machine));
    if let Some(first) = results.first() {
        let s = &first.shape;
        push(
            &mut o,
            &format!(
                "- Data: {} series × {} points at {} s = {} samples (seed {}, {} instances; ~40% counters, \
                 ~30% gauges, ~30% classic histogram series), remote write 1.0 in time order, \
                 {} samples per request, {} requests in flight; requests prebuilt \
                 (generator alone: {} samples/s on {} threads, {:.1} MB snappy-compressed)",
                s.series,
                s.points,
                s.interval_s,
                s.samples,
                s.seed,
                s.instances,
                first.per_request,
                first.concurrency,
                si(first.generator.samples_per_sec),
                first.generator.threads,
                first.generator.compressed_bytes as f64 / 1e6
            ),
        );
    }
    if let Some(e) = meta.elapsed_s {
        push(&mut o, &format!("- Full run: {:.1} min", e / 60.0));
    }
    push(&mut o, &format!("- Command: `{}`", meta.command));
    push(&mut o, "");

    // Ingest and resources.
    let mut head = "| |".to_string();
    let mut sep = "|---|".to_string();
    for r in results {
        head += &format!(" {} |", r.title);
        sep += "---:|";
    }
    let ratios = sb.is_some();
    if ratios {
        head += " Silverback / Prometheus | Silverback / VictoriaMetrics |";
        sep += "---:|---:|";
    }
    push(&mut o, "## Ingest, CPU, memory, disk\n");
    push(&mut o, &head);
    push(&mut o, &sep);
    for (name, f) in METRICS {
        let mut row = format!("| {name} |");
        for r in results {
            row += &format!(" {} |", f(r).map(si).unwrap_or_else(|| "–".into()));
        }
        if ratios {
            let s = sb.and_then(f);
            row += &format!(
                " {} | {} |",
                ratio(s, prom.and_then(f)),
                ratio(s, vm.and_then(f))
            );
        }
        push(&mut o, &row);
    }
    push(&mut o, "");

    // Queries.
    push(
        &mut o,
        "## Dashboard queries: median latency of 10 runs after one warm-up, ms\n",
    );
    let reference = prom.or(results.first());
    let mut head = "| query |".to_string();
    let mut sep = "|---|".to_string();
    for r in results {
        head += &format!(" {} |", r.title);
        sep += "---:|";
    }
    if ratios {
        head += " SB / Prom | SB / VM |";
        sep += "---:|---:|";
    }
    push(&mut o, &head);
    push(&mut o, &sep);
    let agree: Vec<Vec<Option<Agreement>>> = results
        .iter()
        .map(|r| reference.map(|rf| agreements(rf, r)).unwrap_or_default())
        .collect();
    let names: Vec<&QueryResult> = reference
        .map(|r| r.queries.iter().collect())
        .unwrap_or_default();
    let median_of = |r: Option<&RunResult>, q: &QueryResult| {
        r.and_then(|r| r.queries.iter().find(|x| x.query == q.query))
            .and_then(|x| x.median_ms)
    };
    for q in &names {
        let mut row = format!("| `{}` |", q.query.name);
        for (ri, r) in results.iter().enumerate() {
            let qi = r.queries.iter().position(|x| x.query == q.query);
            let cell = qi
                .map(|i| ms(r.queries[i].median_ms))
                .unwrap_or_else(|| "–".into());
            let mark = match qi.and_then(|i| agree[ri].get(i).cloned().flatten()) {
                Some(a) if !a.ok => " ✗",
                Some(a) if a.rule != STRICT && a.max_rel > 1e-6 => " ≈",
                _ => "",
            };
            row += &format!(" {cell}{mark} |");
        }
        if ratios {
            let s = median_of(sb, q);
            row += &format!(
                " {} | {} |",
                ratio(s, median_of(prom, q)),
                ratio(s, median_of(vm, q))
            );
        }
        push(&mut o, &row);
    }
    push(&mut o, "");
    push(
        &mut o,
        "The queries (instant at the last sample, range over the 2 h before it with step 60 s):\n",
    );
    for q in &names {
        push(&mut o, &format!("- `{}`: `{}`", q.query.name, q.query.expr));
    }
    push(&mut o, "");

    // Answers.
    push(&mut o, "## Do the answers agree?\n");
    push(
        &mut o,
        &format!(
            "Every answer is compared with {}'s: same series, same timestamps, every value within 1e-6 \
             relative. VictoriaMetrics' `rate` does not extrapolate to the window's edges and takes the \
             increase from the last sample before the window (it divides 20 increments by 300 s where \
             Prometheus divides 19 by 285 s), so a single slow counter's rate may differ by 20% or more; \
             its `rate` queries must have the same series, timestamps and NaNs, and the sum of all their \
             values within {:.0}% (marked ≈); its other queries are held to 1e-6 per value. \
             ✗ marks a disagreement; its latency does not count. Scrapes fall 7 s before whole minutes and \
             queries at whole minutes, so no sample sits on a `[5m]` window's edge, where Prometheus 2's \
             left-closed windows (the reference here) and Prometheus 3's left-open ones (Silverback's) \
             would differ.\n",
            reference.map(|r| r.title.as_str()).unwrap_or("the first system"),
            match VM_RATE {
                Rule::Total(t) | Rule::PerValue(t) => t * 100.0,
            }
        ),
    );
    let old_prometheus = reference
        .and_then(|r| r.title.strip_prefix("Prometheus "))
        .is_some_and(before_2_51);
    if old_prometheus {
        push(
            &mut o,
            &format!(
                "The reference predates Prometheus 2.51, whose `rate` extrapolation Silverback follows: \
                 where a counter starts inside the window, Prometheus before 2.51 limited the \
                 extrapolation towards the window's start to the counter's zero point before deciding \
                 that the series starts there, so it could extrapolate up to 1.1 scrape intervals back \
                 instead of half of one; prometheus/prometheus#13725 (2.51) applies the zero-point limit \
                 after. Silverback's `rate` queries are therefore held to {:.0}% per value (marked ≈ \
                 when they differ by more than 1e-6), which only series starting inside a `[5m]` window \
                 can use.\n",
                match PRE_2_51_RATE {
                    Rule::Total(t) | Rule::PerValue(t) => t * 100.0,
                }
            ),
        );
    }
    let mut all_ok = true;
    for (ri, r) in results.iter().enumerate() {
        if Some(r.system.as_str()) == reference.map(|x| x.system.as_str()) {
            continue;
        }
        let mut strict_max: f64 = 0.0;
        let mut loose_max: f64 = 0.0;
        let mut loose_total: f64 = 0.0;
        let mut bad = Vec::new();
        for (qi, a) in agree[ri].iter().enumerate() {
            let q = &r.queries[qi];
            match a {
                Some(a) if a.ok && a.rule != STRICT => {
                    loose_max = loose_max.max(a.max_rel);
                    loose_total = loose_total.max(a.total_rel);
                }
                Some(a) if a.ok => strict_max = strict_max.max(a.max_rel),
                Some(a) => bad.push(format!(
                    "`{}`: {}",
                    q.query.name,
                    a.detail.clone().unwrap_or_default()
                )),
                None => bad.push(format!(
                    "`{}`: no answer to compare ({})",
                    q.query.name,
                    q.error.clone().unwrap_or_else(|| "reference failed".into())
                )),
            }
        }
        all_ok &= bad.is_empty();
        let mut line = format!("- {}: ", r.title);
        if bad.is_empty() {
            line += &format!(
                "all {} agree (largest relative difference {strict_max:.1e}",
                r.queries.len()
            );
            if loose_max > 0.0 {
                line += &format!(
                    "; `rate` queries: sums within {loose_total:.1e}, single values within {loose_max:.1e}"
                );
            }
            line += ")";
        } else {
            line += &format!("{} disagree: {}", bad.len(), bad.join("; "));
        }
        push(&mut o, &line);
    }
    push(&mut o, "");

    // Targets.
    if let Some(sb) = sb {
        push(&mut o, "## Targets (issues 12 and 13)\n");
        let t = targets(sb, prom, vm, sb3, &agree, results);
        for (ok, text) in t {
            push(
                &mut o,
                &format!("- {} {text}", if ok { "met:" } else { "**not met:**" }),
            );
        }
        if !all_ok {
            push(&mut o, "- **not met:** some answers disagree (above)");
        }
        push(&mut o, "");
    }

    // How.
    push(&mut o, "## How each figure is measured\n");
    for line in [
        "- Ingest samples/s: samples sent ÷ wall time from the first request to the last acknowledgement (2xx).",
        "- Remote-write request latency: from sending a request to its acknowledgement, retries included (what a sender waits), over every request of the run.",
        "- Server CPU per sample: utime + stime from `/proc/<pid>/stat` of every server process, before the first and after the last write, ÷ samples.",
        "- Peak RSS: `VmHWM` from `/proc/<pid>/status` after the queries, summed over the cluster's processes; per series: ÷ series (not ÷ replicas).",
        "- Disk: bytes under the data directories after each system's own flush (below) ÷ samples sent; a 3-node RF 3 cluster stores every sample three times.",
    ] {
        push(&mut o, line);
    }
    for r in results {
        if let Some(d) = &r.disk {
            push(
                &mut o,
                &format!(
                    "- {} disk: {} ({} bytes stored data, {} bytes in all)",
                    r.title, d.how, d.bytes, d.total_bytes
                ),
            );
            if !d.parts.is_empty() {
                let samples = r.shape.samples.max(1) as f64;
                let parts: Vec<String> = d
                    .parts
                    .iter()
                    .map(|(k, v)| format!("{k} {:.2}", *v as f64 / samples))
                    .collect();
                push(
                    &mut o,
                    &format!("  - by part, bytes/sample: {}", parts.join(", ")),
                );
            }
        }
    }
    push(&mut o, "");
    push(&mut o, "## Commands\n");
    for r in results {
        push(&mut o, &format!("{}:\n", r.title));
        push(&mut o, "```sh");
        for c in &r.commands {
            push(&mut o, c);
        }
        push(&mut o, "```\n");
    }
    if !meta.notes.is_empty() {
        push(&mut o, "## Notes\n");
        for n in &meta.notes {
            push(&mut o, &format!("- {n}"));
        }
        push(&mut o, "");
    }
    o
}

fn targets(
    sb: &RunResult,
    prom: Option<&RunResult>,
    vm: Option<&RunResult>,
    sb3: Option<&RunResult>,
    agree: &[Vec<Option<Agreement>>],
    results: &[RunResult],
) -> Vec<(bool, String)> {
    let mut t = Vec::new();
    let rate = sb.ingest.samples_per_sec;
    if let Some(vm) = vm {
        let r = rate / vm.ingest.samples_per_sec;
        t.push((
            r >= 1.0,
            format!(
                "single-node ingest ≥ VictoriaMetrics: {} vs {} samples/s ({r:.2}×)",
                si(rate),
                si(vm.ingest.samples_per_sec)
            ),
        ));
    }
    if let Some(p) = prom {
        let r = rate / p.ingest.samples_per_sec;
        t.push((
            r >= 1.0,
            format!(
                "single-node ingest ≥ Prometheus: {} vs {} samples/s ({r:.2}×)",
                si(rate),
                si(p.ingest.samples_per_sec)
            ),
        ));
    }
    let p99 = sb.ingest.latency_p99_ms;
    if p99 > 0.0 {
        t.push((
            p99 <= 100.0,
            format!("single-node remote-write request latency p99 ≤ 100 ms: {p99:.1} ms"),
        ));
    }
    let cpu = sb.cpu_us_per_sample;
    if cpu > 0.0 {
        t.push((
            cpu <= 1.2,
            format!("single-node server CPU per sample ≤ 1.2 µs: {cpu:.2} µs"),
        ));
    }
    let kib = sb.rss_per_series_bytes / 1024.0;
    let rss_of = |r: &RunResult| {
        format!(
            "{:.2} KiB (peak RSS {:.0} MiB ÷ {} series)",
            r.rss_per_series_bytes / 1024.0,
            r.peak_rss_bytes as f64 / 1048576.0,
            r.shape.series
        )
    };
    if sb.shape.series >= 1_000_000 {
        t.push((
            kib <= 0.5,
            format!(
                "RSS per active series ≤ 0.5 KiB at 1M series: {}",
                rss_of(sb)
            ),
        ));
    } else if let Some(vm) = vm {
        t.push((
            sb.rss_per_series_bytes <= vm.rss_per_series_bytes,
            format!(
                "RSS per active series ≤ VictoriaMetrics': {} vs {}",
                rss_of(sb),
                rss_of(vm)
            ),
        ));
    }
    // Mostly series creation (pod churn): few points per series.
    if sb.shape.points <= 16 && sb.ingest.seconds > 0.0 {
        let per_s = sb.shape.series as f64 / sb.ingest.seconds;
        t.push((
            per_s >= 100_000.0,
            format!("new series ≥ 100 k/s on one node: {}/s", si(per_s)),
        ));
    }
    if let Some(d) = &sb.disk {
        if sb.shape.points >= 100 {
            t.push((
                d.total_bytes_per_sample <= 2.0,
                format!(
                    "whole data dir ≤ 2.0 bytes/sample on a samples-heavy run: {:.2}",
                    d.total_bytes_per_sample
                ),
            ));
        } else if let Some(vmd) = vm.and_then(|v| v.disk.as_ref()) {
            t.push((
                d.total_bytes_per_sample <= vmd.total_bytes_per_sample,
                format!(
                    "whole data dir ≤ VictoriaMetrics' on an index-heavy run: {:.2} vs {:.2} bytes/sample",
                    d.total_bytes_per_sample, vmd.total_bytes_per_sample
                ),
            ));
        }
    }
    if let (Some(d), Some(vmd)) = (&sb.disk, vm.and_then(|v| v.disk.as_ref())) {
        t.push((
            d.bytes_per_sample <= vmd.bytes_per_sample,
            format!(
                "bytes per sample ≤ VictoriaMetrics: {:.2} vs {:.2}",
                d.bytes_per_sample, vmd.bytes_per_sample
            ),
        ));
    }
    if let Some(vm) = vm {
        let sbi = results.iter().position(|r| r.system == SILVERBACK);
        let mut slower = Vec::new();
        let mut n = 0;
        for (qi, q) in sb.queries.iter().enumerate() {
            let Some(v) = vm.queries.iter().find(|x| x.query == q.query) else {
                continue;
            };
            n += 1;
            let wrong = sbi
                .and_then(|i| agree.get(i))
                .and_then(|a| a.get(qi).cloned().flatten())
                .is_some_and(|a| !a.ok);
            match (q.median_ms, v.median_ms) {
                (Some(a), Some(b)) if a <= b && !wrong => {}
                (a, b) => slower.push(format!("`{}` {} vs {} ms", q.query.name, ms(a), ms(b))),
            }
        }
        t.push((
            slower.is_empty(),
            format!(
                "every dashboard query at or below VictoriaMetrics' latency: {} of {n} are{}",
                n - slower.len(),
                if slower.is_empty() {
                    String::new()
                } else {
                    format!("; slower: {}", slower.join(", "))
                }
            ),
        ));
    }
    if let Some(c) = sb3 {
        let r = c.ingest.samples_per_sec / rate;
        t.push((
            r >= 1.0 / 3.0,
            format!(
                "3 nodes, RF 3 ≥ 1/3 of single-node ingest: {} vs {} samples/s ({r:.2}×)",
                si(c.ingest.samples_per_sec),
                si(rate)
            ),
        ));
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::load::queries::{dashboard, AnswerSeries};
    use std::collections::BTreeMap;

    fn run(system: &str, rate: f64, value: f64) -> RunResult {
        let queries = dashboard()
            .into_iter()
            .map(|q| QueryResult {
                median_ms: Some(10.0),
                runs_ms: vec![10.0],
                answer: Some(vec![AnswerSeries {
                    labels: BTreeMap::new(),
                    points: vec![(1.0, if q.uses_rate { value } else { 1.0 })],
                }]),
                error: None,
                query: q,
            })
            .collect();
        RunResult {
            system: system.into(),
            title: system.into(),
            shape: ShapeInfo {
                series: 1000,
                samples: 1000,
                ..Default::default()
            },
            ingest: IngestStats {
                samples_per_sec: rate,
                seconds: 0.001,
                ..Default::default()
            },
            rss_per_series_bytes: if system == SILVERBACK { 2048.0 } else { 1024.0 },
            disk: Some(Disk {
                total_bytes: 2000,
                total_bytes_per_sample: 2.0,
                parts: BTreeMap::new(),
                bytes: 1000,
                bytes_per_sample: 1.0,
                how: "du".into(),
            }),
            queries,
            ..Default::default()
        }
    }

    #[test]
    fn report_marks_agreement_and_targets() {
        let rs = vec![
            run(PROMETHEUS, 100.0, 1.0),
            run(VICTORIA, 300.0, 1.03), // rate off by 3%: allowed for VM
            run(SILVERBACK, 400.0, 1.0 + 1e-9),
            run(SILVERBACK_3, 100.0, 1.2), // rate off by 20%: wrong
        ];
        let md = render(
            &rs,
            &Meta {
                date: "d".into(),
                ..Default::default()
            },
        );
        assert!(md.contains("- victoriametrics: all 12 agree"), "{md}");
        assert!(md.contains("- silverback: all 12 agree"), "{md}");
        assert!(md.contains("- silverback-3: 8 disagree"), "{md}");
        assert!(
            md.contains("met: single-node ingest ≥ VictoriaMetrics"),
            "{md}"
        );
        assert!(
            md.contains("**not met:** RSS per active series ≤ VictoriaMetrics': 2.00 KiB"),
            "{md}"
        );
        // 1000 series of one point each: a series-creation run.
        assert!(md.contains("new series ≥ 100 k/s on one node"), "{md}");
        assert!(!md.contains("at 1M series"), "{md}");
        assert!(md.contains("**not met:** 3 nodes, RF 3 ≥ 1/3"), "{md}");
        assert!(md.contains("| 1.33× |"), "{md}"); // 400 / 300
    }

    #[test]
    fn silverback_rate_answers_against_prometheus_before_2_51() {
        let with_reference = |title: &str, sb_rate: f64| {
            let mut prom = run(PROMETHEUS, 100.0, 1.0);
            prom.title = title.into();
            let rs = vec![prom, run(SILVERBACK, 400.0, sb_rate)];
            render(
                &rs,
                &Meta {
                    date: "d".into(),
                    ..Default::default()
                },
            )
        };
        // 0.3% off on `rate` queries: the extrapolation change of 2.51.
        let md = with_reference("Prometheus 2.42.0", 1.003);
        assert!(md.contains("- silverback: all 12 agree"), "{md}");
        assert!(md.contains("prometheus/prometheus#13725"), "{md}");
        assert!(md.contains(" ≈ |"), "{md}");
        // 2% off is still wrong, and a newer reference is held to 1e-6.
        let md = with_reference("Prometheus 2.42.0", 1.02);
        assert!(md.contains("- silverback: 8 disagree"), "{md}");
        let md = with_reference("Prometheus 2.53.1", 1.003);
        assert!(md.contains("- silverback: 8 disagree"), "{md}");
        assert!(!md.contains("prometheus/prometheus#13725"), "{md}");
    }
}
