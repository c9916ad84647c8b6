//! `silverback-load`: generates deterministic Prometheus-like data, sends it
//! by remote write, runs the dashboard queries, and writes the results as
//! JSON; `report` turns the JSON of several systems into BENCHMARKS.md.
//! `tests/bench/compare.sh` drives it; see `silverback-load --help`.

use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};
use tests::load::encode::{build, Requests};
use tests::load::gen::Shape;
use tests::load::queries::{dashboard, default_end_ms, Window};
use tests::load::report::{render, Disk, GeneratorStats, Meta, RunResult, ShapeInfo};
use tests::load::{procstat, queries, send};

#[derive(Parser)]
#[command(
    name = "silverback-load",
    about = "Load generator and side-by-side benchmark for Prometheus-compatible TSDBs"
)]
struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Build the requests only and print how fast (JSON).
    Generate(GenArgs),
    /// Send the data to a system, run the queries, write the result JSON.
    Run(RunArgs),
    /// Record the disk use of a finished run in its result JSON.
    SetDisk(DiskArgs),
    /// Write the Markdown report from result JSON files (in column order).
    Report(ReportArgs),
}

#[derive(Args, Clone)]
struct GenArgs {
    /// Series (histogram buckets, _sum and _count each count as one).
    #[arg(long, default_value_t = 50_000)]
    series: usize,
    /// Samples per series.
    #[arg(long, default_value_t = 504)]
    points: usize,
    /// Scrape interval in seconds.
    #[arg(long, default_value_t = 15)]
    interval_s: u32,
    /// Distinct instances.
    #[arg(long, default_value_t = 100)]
    instances: usize,
    /// Seed.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Timestamp of the last sample, Unix ms [default: 7 s before the last
    /// whole minute]. Give the same value to every run that is compared.
    #[arg(long)]
    end_ms: Option<i64>,
    /// Samples per request.
    #[arg(long, default_value_t = 2000)]
    per_request: usize,
    /// Threads that build requests.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

#[derive(Args)]
struct RunArgs {
    #[command(flatten)]
    gen: GenArgs,
    /// Key of the system (prometheus, victoriametrics, silverback,
    /// silverback-3 get ratios and targets in the report).
    #[arg(long)]
    system: String,
    /// Column title, e.g. "Prometheus 2.42.0".
    #[arg(long)]
    title: String,
    /// Base URL to write to (repeat for a cluster: requests go round-robin);
    /// queries go to the first.
    #[arg(long = "url", required = true)]
    urls: Vec<String>,
    /// Server process to measure (repeat for a cluster).
    #[arg(long = "pid")]
    pids: Vec<u32>,
    /// How the server was started (repeatable; copied into the report).
    #[arg(long = "command")]
    commands: Vec<String>,
    /// URL to GET after the ingest and before the queries (e.g.
    /// VictoriaMetrics' /internal/force_flush); repeatable.
    #[arg(long = "flush-url")]
    flush_urls: Vec<String>,
    /// Requests in flight.
    #[arg(long, default_value_t = 24)]
    concurrency: usize,
    /// Timed runs per query (after one warm-up).
    #[arg(long, default_value_t = 10)]
    runs: usize,
    /// Clock ticks per second of /proc/<pid>/stat (`getconf CLK_TCK`).
    #[arg(long, default_value_t = 100)]
    clk_tck: u64,
    /// Result JSON to write.
    #[arg(long)]
    out: PathBuf,
}

#[derive(Args)]
struct DiskArgs {
    /// Result JSON of the run.
    #[arg(long)]
    result: PathBuf,
    /// Bytes of stored data (without write-ahead logs).
    #[arg(long, required_unless_present = "rocksdb")]
    bytes: Option<u64>,
    /// Every byte of the data dir(s) [default: --bytes].
    #[arg(long)]
    total_bytes: Option<u64>,
    /// RocksDB directory to measure by column family (repeatable, e.g. one
    /// per node); stored data is everything but the Raft log and meta
    /// families, RocksDB's WAL, and its manifest/options/info logs.
    #[arg(long)]
    rocksdb: Vec<PathBuf>,
    /// What was measured after which flush.
    #[arg(long)]
    how: String,
}

#[derive(Args)]
struct ReportArgs {
    /// Result JSON files, one per column.
    #[arg(required = true)]
    results: Vec<PathBuf>,
    /// Markdown file to write.
    #[arg(long)]
    out: PathBuf,
    /// Date line.
    #[arg(long)]
    date: String,
    /// The command line that ran the comparison.
    #[arg(long, default_value = "tests/bench/compare.sh")]
    command: String,
    /// Wall time of the whole comparison in seconds.
    #[arg(long)]
    elapsed_s: Option<f64>,
    /// A note for the Notes section (repeatable).
    #[arg(long = "note")]
    notes: Vec<String>,
}

fn shape(g: &GenArgs) -> Shape {
    let end_ms = g.end_ms.unwrap_or_else(|| default_end_ms(tests::now_ms()));
    Shape {
        series: g.series,
        points: g.points.max(1),
        interval_ms: g.interval_s as i64 * 1000,
        end_ms,
        instances: g.instances,
        seed: g.seed,
    }
}

fn generate(g: &GenArgs, s: &Shape) -> (Requests, GeneratorStats) {
    let t0 = Instant::now();
    let reqs = build(s, g.per_request, g.threads);
    let seconds = t0.elapsed().as_secs_f64();
    let stats = GeneratorStats {
        seconds,
        samples_per_sec: reqs.total_samples() as f64 / seconds.max(1e-9),
        threads: g.threads,
        requests: reqs.bodies.len(),
        raw_bytes: reqs.raw_bytes,
        compressed_bytes: reqs.compressed_bytes(),
    };
    (reqs, stats)
}

async fn run(a: RunArgs) -> Result<()> {
    let s = shape(&a.gen);
    eprintln!(
        "silverback-load: {}: building {} series × {} points",
        a.system, s.series, s.points
    );
    let (reqs, gen) = generate(&a.gen, &s);
    eprintln!(
        "silverback-load: built {} requests in {:.1} s ({:.0} samples/s, {:.0} MB compressed)",
        gen.requests,
        gen.seconds,
        gen.samples_per_sec,
        gen.compressed_bytes as f64 / 1e6
    );
    let idle_rss = procstat::sum(&a.pids, |p| procstat::memory(p, "VmRSS"))?;
    let cpu0 = procstat::sum(&a.pids, |p| procstat::cpu_seconds(p, a.clk_tck))?;
    let ingest = send::ingest(
        &a.urls,
        &reqs.bodies,
        &reqs.samples,
        s.series,
        a.gen.per_request,
        a.concurrency,
    )
    .await?;
    let cpu1 = procstat::sum(&a.pids, |p| procstat::cpu_seconds(p, a.clk_tck))?;
    drop(reqs);
    eprintln!(
        "silverback-load: ingested {} samples in {:.1} s: {:.0} samples/s, {} retries, {:.2} µs CPU/sample, request latency p50 {:.1} ms, p99 {:.1} ms",
        ingest.samples,
        ingest.seconds,
        ingest.samples_per_sec,
        ingest.retries,
        (cpu1 - cpu0) / ingest.samples.max(1) as f64 * 1e6,
        ingest.latency_p50_ms,
        ingest.latency_p99_ms
    );
    let client = reqwest::Client::new();
    for u in &a.flush_urls {
        let r = client
            .get(u)
            .send()
            .await
            .with_context(|| format!("cannot GET {u}"))?;
        if !r.status().is_success() {
            bail!("flush {u} answered {}", r.status());
        }
    }
    let w = Window::for_shape(&s);
    let mut results = Vec::new();
    for q in dashboard() {
        let r = queries::run(&a.urls[0], &q, &w, a.runs).await;
        match (&r.median_ms, &r.error) {
            (Some(m), _) => eprintln!("silverback-load: {:<32} {m:>9.2} ms", q.name),
            (_, Some(e)) => eprintln!("silverback-load: {:<32} failed: {e}", q.name),
            _ => {}
        }
        results.push(r);
    }
    let peak = procstat::sum(&a.pids, |p| procstat::memory(p, "VmHWM"))?;
    let cpu_s = cpu1 - cpu0;
    let result = RunResult {
        system: a.system,
        title: a.title,
        commands: a.commands,
        pids: a.pids,
        shape: ShapeInfo {
            series: s.series,
            points: s.points,
            interval_s: s.interval_ms as f64 / 1000.0,
            instances: s.instances,
            seed: s.seed,
            end_ms: s.end_ms,
            samples: s.samples(),
        },
        per_request: a.gen.per_request,
        concurrency: a.concurrency,
        generator: gen,
        idle_rss_bytes: idle_rss,
        ingest_cpu_seconds: cpu_s,
        cpu_us_per_sample: cpu_s / ingest.samples.max(1) as f64 * 1e6,
        ingest,
        peak_rss_bytes: peak,
        rss_per_series_bytes: peak as f64 / s.series.max(1) as f64,
        queries: results,
        disk: None,
    };
    std::fs::write(&a.out, serde_json::to_vec_pretty(&result)?)
        .with_context(|| format!("cannot write {}", a.out.display()))?;
    Ok(())
}

fn read_result(p: &PathBuf) -> Result<RunResult> {
    let b = std::fs::read(p).with_context(|| format!("cannot read {}", p.display()))?;
    serde_json::from_slice(&b).with_context(|| format!("cannot parse {}", p.display()))
}

/// RocksDB parts that are logs or bookkeeping, not stored series data.
const NOT_DATA: [&str; 4] = ["raft_log", "raft_meta", "wal", "other"];

fn set_disk(a: DiskArgs) -> Result<()> {
    let mut r = read_result(&a.result)?;
    let dirs: Vec<&std::path::Path> = a.rocksdb.iter().map(PathBuf::as_path).collect();
    let parts = if dirs.is_empty() {
        Default::default()
    } else {
        tests::load::sst::usage(&dirs)?
    };
    let data: u64 = parts
        .iter()
        .filter(|(k, _)| !NOT_DATA.contains(&k.as_str()))
        .map(|(_, v)| v)
        .sum();
    let bytes = a.bytes.unwrap_or(data);
    let total = a.total_bytes.unwrap_or_else(|| {
        if parts.is_empty() {
            bytes
        } else {
            parts.values().sum()
        }
    });
    let samples = r.shape.samples.max(1) as f64;
    r.disk = Some(Disk {
        bytes,
        bytes_per_sample: bytes as f64 / samples,
        total_bytes: total,
        total_bytes_per_sample: total as f64 / samples,
        parts,
        how: a.how,
    });
    std::fs::write(&a.result, serde_json::to_vec_pretty(&r)?)
        .with_context(|| format!("cannot write {}", a.result.display()))
}

fn machine() -> String {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    let model = cpuinfo
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split_once(':'))
        .map(|(_, m)| m.trim().to_string())
        .unwrap_or_else(|| "unknown CPU".into());
    let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let mem = procstat::parse_status_kb(&meminfo, "MemTotal").unwrap_or(0);
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap_or_default();
    format!(
        "{cores} × {model}, {:.1} GiB RAM, Linux {}",
        mem as f64 / (1u64 << 30) as f64,
        kernel.trim()
    )
}

fn report(a: ReportArgs) -> Result<()> {
    let results = a
        .results
        .iter()
        .map(read_result)
        .collect::<Result<Vec<_>>>()?;
    let meta = Meta {
        date: a.date,
        machine: machine(),
        command: a.command,
        elapsed_s: a.elapsed_s,
        notes: a.notes,
    };
    std::fs::write(&a.out, render(&results, &meta))
        .with_context(|| format!("cannot write {}", a.out.display()))
}

#[tokio::main]
async fn main() -> Result<()> {
    match Cli::parse().cmd {
        Cmd::Generate(g) => {
            let s = shape(&g);
            let (_, stats) = generate(&g, &s);
            println!("{}", serde_json::to_string_pretty(&stats)?);
            Ok(())
        }
        Cmd::Run(a) => run(a).await,
        Cmd::SetDisk(a) => set_disk(a),
        Cmd::Report(a) => report(a),
    }
}
