//! Query memory budgets and cancellation (issue 13): every limit refuses
//! its bad query with Prometheus' status and message, the node answers a
//! normal query afterwards, memory stays within the budget, and a timeout
//! stops the evaluation instead of leaving it running.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tests::{now_ms, series, Client, Cluster, Options, Silverback};

const TOO_MANY: &str =
    "query processing would load too many samples into memory in query execution";

fn node_opts(extra: &[&str]) -> Options {
    let mut o = Options::default();
    o.extra_args.extend(extra.iter().map(|s| s.to_string()));
    o
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, field: &str) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    text.lines()
        .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or_else(|| panic!("no {field} in /proc/{pid}/status"))
}

/// CPU time (user + system) the process has used, in clock ticks (1/100 s).
fn cpu_ticks(pid: u32) -> u64 {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("proc stat");
    // Fields after the `(comm)`: state is field 3, utime 14, stime 15.
    let rest = &text[text.rfind(')').expect("comm") + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    f[11].parse::<u64>().expect("utime") + f[12].parse::<u64>().expect("stime")
}

async fn assert_error(got: (u16, Value), status: u16, kind: &str, msg: &str) {
    let (st, v) = got;
    assert_eq!(st, status, "{v}");
    assert_eq!(v["status"], "error", "{v}");
    assert_eq!(v["errorType"], kind, "{v}");
    assert_eq!(v["error"], msg, "{v}");
}

async fn still_answers(c: &Client) {
    let v = c.query("vector(1)", 1000.0).await.expect("a normal query");
    assert_eq!(v["data"]["result"][0]["value"][1], "1", "{v}");
}

#[tokio::test]
async fn range_queries_over_11000_points_per_series_are_refused() {
    let node = Silverback::start(Options::default()).await.expect("node");
    let c = node.client();
    let range = |end: &'static str| {
        let c = c.clone();
        async move {
            c.get(
                "/api/v1/query_range",
                &[
                    ("query", "vector(1)"),
                    ("start", "0"),
                    ("end", end),
                    ("step", "1"),
                ],
            )
            .await
            .expect("query_range")
        }
    };
    // (end - start) / step = 11000 is allowed (11001 points), as in
    // Prometheus; one more step is refused.
    let (st, v) = range("11000").await;
    assert_eq!(st, 200, "{v}");
    let points = v["data"]["result"][0]["values"].as_array().expect("values");
    assert_eq!(points.len(), 11001);
    assert_error(
        range("11001").await,
        400,
        "bad_data",
        "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query resolution (?step=XX)",
    )
    .await;
    still_answers(&c).await;
}

#[tokio::test]
async fn the_sample_limit_allows_exactly_its_value() {
    let node = Silverback::start(node_opts(&["--max-query-samples", "1000"]))
        .await
        .expect("node");
    let c = node.client();
    let instant = |q: &'static str| {
        let c = c.clone();
        async move {
            c.get("/api/v1/query", &[("query", q), ("time", "1000000")])
                .await
                .expect("query")
        }
    };
    // (t - 1000s, t] every second: exactly 1000 points.
    let (st, v) = instant("vector(1)[1000s:1s]").await;
    assert_eq!(st, 200, "{v}");
    let points = v["data"]["result"][0]["values"].as_array().expect("values");
    assert_eq!(points.len(), 1000);
    assert_error(
        instant("vector(1)[1001s:1s]").await,
        422,
        "execution",
        TOO_MANY,
    )
    .await;
    still_answers(&c).await;
}

#[tokio::test]
async fn count_values_over_11000_steps_stays_within_its_budget() {
    // 2 M samples of 16 bytes: a 32 MiB budget. Before issue 13 this query
    // built 11,000 series of 11,000 slots each (121 M, 1.9 GiB) and kept
    // the memory afterwards.
    let node = Silverback::start(node_opts(&["--max-query-samples", "2000000"]))
        .await
        .expect("node");
    let c = node.client();
    let pid = node.pid().expect("pid");
    still_answers(&c).await;
    let rss_before = status_kib(pid, "VmRSS");
    let got = c
        .get(
            "/api/v1/query_range",
            &[
                ("query", r#"count_values("v", vector(time()))"#),
                ("start", "1000000"),
                ("end", "1010999"),
                ("step", "1"),
            ],
        )
        .await
        .expect("query_range");
    assert_error(got, 422, "execution", TOO_MANY).await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let peak = status_kib(pid, "VmHWM");
    let rss_after = status_kib(pid, "VmRSS");
    // The peak may exceed the budget by the allocator's and the runtime's
    // overhead, not by the 1.9 GiB of before: 32 MiB budget + 96 MiB.
    assert!(
        peak < rss_before + 128 * 1024,
        "peak RSS {peak} KiB, {rss_before} KiB before the query"
    );
    // The memory the query freed went back to the OS.
    assert!(
        rss_after < rss_before + 32 * 1024,
        "RSS {rss_after} KiB after the query, {rss_before} KiB before"
    );
    still_answers(&c).await;
}

/// Writes `n` series `name{i="0".."n"}` of 300 samples, 10 s apart,
/// ending now.
async fn write_series(c: &Client, name: &str, n: usize) -> i64 {
    let now = now_ms();
    let samples: Vec<(i64, f64)> = (0..300)
        .rev()
        .map(|k| (now - k * 10_000, k as f64))
        .collect();
    let all: Vec<_> = (0..n)
        .map(|i| series(name, &[("i", &i.to_string())], &samples))
        .collect();
    let (st, body) = c.write(&all).await.expect("write");
    assert_eq!(st, 204, "{body}");
    now
}

#[tokio::test]
async fn loading_counts_against_the_limit() {
    let node = Silverback::start(node_opts(&["--max-query-samples", "500"]))
        .await
        .expect("node");
    let c = node.client();
    let now = write_series(&c, "loaded", 3).await;
    // A second after the newest sample, so the hour holds all 300.
    let t = (now / 1000 + 1).to_string();
    let instant = |q: &'static str| {
        let (c, t) = (c.clone(), t.clone());
        async move {
            c.get("/api/v1/query", &[("query", q), ("time", &t)])
                .await
                .expect("query")
        }
    };
    // One series: 300 samples loaded and one result point.
    let (st, v) = instant(r#"count_over_time(loaded{i="0"}[1h])"#).await;
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["result"][0]["value"][1], "300", "{v}");
    // Three: 900 samples, refused while loading.
    assert_error(
        instant("count_over_time(loaded[1h])").await,
        422,
        "execution",
        TOO_MANY,
    )
    .await;
    still_answers(&c).await;
}

#[tokio::test]
async fn the_limit_applies_to_samples_read_from_remote_shards() {
    // Two nodes, one replica per shard: about half of the series live on
    // the other node and come over gRPC as chunks, decoded against the
    // querying node's budget.
    let cluster = Cluster::start(2, 4, 1, &["--max-query-samples", "1000"])
        .await
        .expect("cluster");
    let c = cluster.nodes[0].client();
    let now = write_series(&c, "remote", 8).await;
    let t = (now / 1000).to_string();
    let (st, v) = c
        .get(
            "/api/v1/query",
            &[
                ("query", r#"count_over_time(remote{i=~"0|1|2"}[1h])"#),
                ("time", &t),
            ],
        )
        .await
        .expect("query");
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["result"].as_array().map(Vec::len), Some(3), "{v}");
    let got = c
        .get(
            "/api/v1/query",
            &[("query", "count_over_time(remote[1h])"), ("time", &t)],
        )
        .await
        .expect("query");
    assert_error(got, 422, "execution", TOO_MANY).await;
    still_answers(&c).await;
    still_answers(&cluster.nodes[1].client()).await;
}

#[tokio::test]
async fn a_timeout_stops_the_evaluation() {
    let node = Silverback::start(Options::default()).await.expect("node");
    let c = node.client();
    let pid = node.pid().expect("pid");
    // 11,000 steps, each summing a window of 180,000 subquery points: many
    // seconds of CPU if nothing stopped it.
    let began = Instant::now();
    let got = c
        .get(
            "/api/v1/query_range",
            &[
                ("query", "sum_over_time(vector(time())[30m:10ms])"),
                ("start", "1000000"),
                ("end", "1010999"),
                ("step", "1"),
                ("timeout", "200ms"),
            ],
        )
        .await
        .expect("query_range");
    let took = began.elapsed();
    assert_error(
        got,
        503,
        "timeout",
        "query timed out in expression evaluation",
    )
    .await;
    assert!(took < Duration::from_secs(2), "answered after {took:?}");
    // The evaluation stopped with the answer: the process is idle after it.
    let ticks = cpu_ticks(pid);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let used = cpu_ticks(pid) - ticks;
    assert!(
        used < 50,
        "{used} ticks of CPU in the 2 s after the timeout"
    );
    let began = Instant::now();
    still_answers(&c).await;
    assert!(
        began.elapsed() < Duration::from_millis(500),
        "{:?}",
        began.elapsed()
    );
}

// The series-metadata endpoints under the query limits (issue 14):
// `/api/v1/series`, `/api/v1/labels`, `/api/v1/label/<name>/values` and
// `/api/v1/status/tsdb` take a query slot, end at `--query-timeout` (the
// wait for the slot included) and cut their answers to `limit` and
// `--max-lookup-results`.

/// The four metadata endpoints, each with parameters that make it walk
/// every series `metric` has (written by [`write_wide`]) or more: several
/// `match[]` selectors where one pass is quick (each selects them all),
/// every list of the TSDB status in full. Over 100,000 series each takes
/// 0.25-1 s on the dev build (measured 2026-12-07).
fn lookups(metric: &str) -> Vec<(&'static str, Vec<(&'static str, String)>)> {
    let sels = |n: usize| {
        let each = (0..n).map(|k| ("match[]", format!(r#"{metric}{{l{k}=~"v.+"}}"#)));
        each.collect()
    };
    vec![
        ("/api/v1/series", sels(1)),
        ("/api/v1/labels", sels(8)),
        ("/api/v1/label/i/values", sels(5)),
        ("/api/v1/status/tsdb", vec![("limit", "100000".into())]),
    ]
}

async fn get(c: &Client, path: &str, params: &[(&'static str, String)]) -> (u16, Value) {
    let params: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    c.get(path, &params).await.expect(path)
}

/// Writes `n` series `metric{i="0".."n", l0..l7="v0".."v9"}`, one sample
/// each at `t` (ms), in batches of 50,000.
async fn write_wide(c: &Client, metric: &str, n: usize, t: i64) {
    let names = ["l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7"];
    for first in (0..n).step_by(50_000) {
        let batch: Vec<_> = (first..n.min(first + 50_000))
            .map(|i| {
                let i_s = i.to_string();
                let vals: Vec<String> = (0..8).map(|k| format!("v{}", (i + k) % 10)).collect();
                let mut l: Vec<(&str, &str)> = names
                    .iter()
                    .copied()
                    .zip(vals.iter().map(String::as_str))
                    .collect();
                l.push(("i", &i_s));
                series(metric, &l, &[(t, 1.0)])
            })
            .collect();
        let (st, body) = c.write(&batch).await.expect("write");
        assert_eq!(st, 204, "{body}");
    }
}

/// `silverback_queries_running` (queries and lookups holding a slot).
async fn queries_running(c: &Client) -> String {
    let (_, text) = c.get_text("/metrics").await.expect("metrics");
    text.lines()
        .find_map(|l| l.strip_prefix("silverback_queries_running "))
        .unwrap_or("none")
        .to_string()
}

/// A range query that evaluates for many seconds (see
/// [`a_timeout_stops_the_evaluation`]) unless `timeout` stops it.
async fn slow_query(c: Client, timeout: &'static str) -> (u16, Value) {
    c.get(
        "/api/v1/query_range",
        &[
            ("query", "sum_over_time(vector(time())[30m:10ms])"),
            ("start", "1000000"),
            ("end", "1010999"),
            ("step", "1"),
            ("timeout", timeout),
        ],
    )
    .await
    .expect("query_range")
}

/// With `--max-concurrent-queries 1`, while a query holds the slot, a
/// query that cannot wait as long is refused and each lookup waits, then
/// answers. (A lookup waits within the same `--query-timeout` as the
/// query it waits for, which ends first: so one query alone cannot make it
/// time out.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_requests_wait_for_the_only_query_slot() {
    let node = Silverback::start(node_opts(&["--max-concurrent-queries", "1"]))
        .await
        .expect("node");
    let c = node.client();
    write_wide(&c, "slot", 1000, now_ms()).await;

    // A query holds the only slot for its 2 s.
    let sent = Instant::now();
    let holder = tokio::spawn(slow_query(c.clone(), "2s"));
    let deadline = Instant::now() + Duration::from_secs(10);
    while queries_running(&c).await != "1" {
        assert!(Instant::now() < deadline, "the slow query never ran");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    // A query waiting longer than its timeout is refused; a metadata
    // request waits for the slot.
    let queued = c.get(
        "/api/v1/query",
        &[
            ("query", "vector(1)"),
            ("time", "1000"),
            ("timeout", "300ms"),
        ],
    );
    let waiting: Vec<_> = lookups("slot")
        .into_iter()
        .map(|(path, params)| {
            let c = c.clone();
            tokio::spawn(async move { (path, get(&c, path, &params).await, sent.elapsed()) })
        })
        .collect();
    assert_error(
        queued.await.expect("query"),
        503,
        "timeout",
        "query timed out in query queue; all --max-concurrent-queries=1 slots stayed busy",
    )
    .await;
    for w in waiting {
        let (path, (st, v), done) = w.await.expect("task");
        assert_eq!(st, 200, "{path}: {v}");
        assert!(
            done >= Duration::from_secs(2),
            "{path} answered {done:?} after the slot was taken for 2 s"
        );
    }
    assert_error(
        holder.await.expect("task"),
        503,
        "timeout",
        "query timed out in expression evaluation",
    )
    .await;

    // Each answers in full once the slot is free.
    let (_, v) = get(&c, "/api/v1/series", &[("match[]", "slot".into())]).await;
    assert_eq!(v["data"].as_array().map(Vec::len), Some(1000), "{v}");
    let (_, v) = c.get("/api/v1/labels", &[]).await.expect("labels");
    let want = [
        "__name__", "i", "l0", "l1", "l2", "l3", "l4", "l5", "l6", "l7",
    ];
    assert_eq!(v["data"], json!(want), "{v}");
    let (_, v) = c.get("/api/v1/label/i/values", &[]).await.expect("values");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(1000), "{v}");
    let (_, v) = c.get("/api/v1/status/tsdb", &[]).await.expect("tsdb");
    assert_eq!(v["data"]["headStats"]["numSeries"], 1000, "{v}");
    assert_eq!(queries_running(&c).await, "0");
}

/// Each lookup answers 503 at the timeout, not after its work. The TSDB
/// status reads the shards in ~50 ms and then ranks 100,000 label pairs:
/// before the lookups moved off the runtime that ranking ran past the
/// deadline and was answered 200 after 250-800 ms.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metadata_requests_over_many_series_end_at_the_query_timeout() {
    let node = Silverback::start(node_opts(&["--query-timeout", "100ms"]))
        .await
        .expect("node");
    let c = node.client();
    write_wide(&c, "wide", 100_000, now_ms()).await;
    for (path, params) in lookups("wide") {
        let began = Instant::now();
        let got = get(&c, path, &params).await;
        let took = began.elapsed();
        assert_error(
            got,
            503,
            "timeout",
            "cannot answer: no result within --query-timeout=100ms \
             (waiting for a query slot included; see --max-concurrent-queries)",
        )
        .await;
        assert!(
            took < Duration::from_millis(500),
            "{path} answered after {took:?}"
        );
    }
    // What was cut short does not go on (shard reads under way finish):
    // a second later a small lookup fits in the 100 ms again.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let (st, v) = c.get("/api/v1/labels", &[]).await.expect("labels");
    assert_eq!(st, 200, "{v}");
}

/// `limit` (Prometheus 2.49+) and `--max-lookup-results` on each lookup.
#[tokio::test]
async fn metadata_answers_are_cut_to_the_limit_and_the_server_cap() {
    let node = Silverback::start(node_opts(&["--max-lookup-results", "5"]))
        .await
        .expect("node");
    let c = node.client();
    // 10 series, 10 label names, 10 values of `i` and of each `l*`.
    write_wide(&c, "lim", 10, now_ms()).await;
    const LIMIT: &str = "results truncated due to limit";
    const CAP: &str = "results truncated due to limit (--max-lookup-results=5)";
    let f = |path: &'static str, params: Vec<(&'static str, &'static str)>| {
        let c = c.clone();
        async move {
            let (st, v) = c.get(path, &params).await.expect(path);
            assert_eq!(st, 200, "{path} {params:?}: {v}");
            v
        }
    };
    let names = |v: &Value| -> Vec<String> {
        let d = v["data"].as_array().expect("a list");
        d.iter()
            .map(|x| match x["i"].as_str() {
                Some(i) => i.to_string(), // a series: its `i`
                None => x.as_str().expect("a string").to_string(),
            })
            .collect()
    };
    let warnings = |v: &Value| v["warnings"].clone();

    // `limit` below the cap, above it, and 0 (none): what is cut, and why.
    let v = f("/api/v1/series", vec![("match[]", "lim"), ("limit", "3")]).await;
    assert_eq!(names(&v), ["0", "1", "2"], "{v}");
    assert_eq!(warnings(&v), json!([LIMIT]), "{v}");
    for limit in ["10", "0"] {
        let v = f("/api/v1/series", vec![("match[]", "lim"), ("limit", limit)]).await;
        assert_eq!(names(&v), ["0", "1", "2", "3", "4"], "{v}");
        assert_eq!(warnings(&v), json!([CAP]), "{v}");
    }
    let v = f("/api/v1/labels", vec![("limit", "2")]).await;
    assert_eq!(names(&v), ["__name__", "i"], "{v}");
    assert_eq!(warnings(&v), json!([LIMIT]), "{v}");
    let v = f("/api/v1/labels", vec![]).await;
    assert_eq!(names(&v), ["__name__", "i", "l0", "l1", "l2"], "{v}");
    assert_eq!(warnings(&v), json!([CAP]), "{v}");
    let v = f("/api/v1/label/i/values", vec![("limit", "4")]).await;
    assert_eq!(names(&v), ["0", "1", "2", "3"], "{v}");
    assert_eq!(warnings(&v), json!([LIMIT]), "{v}");
    let v = f("/api/v1/label/l7/values", vec![("match[]", "lim")]).await;
    assert_eq!(names(&v), ["v0", "v1", "v2", "v3", "v4"], "{v}");
    assert_eq!(warnings(&v), json!([CAP]), "{v}");
    // Nothing cut, no warning.
    let v = f("/api/v1/label/__name__/values", vec![("limit", "1")]).await;
    assert_eq!(v, json!({"status": "success", "data": ["lim"]}));

    // The TSDB status: `limit` entries per list (default 10), at most the
    // cap. Ties go by name.
    let v = f("/api/v1/status/tsdb", vec![("limit", "2")]).await;
    let d = &v["data"];
    assert_eq!(d["headStats"]["numSeries"], 10, "{v}");
    assert_eq!(d["headStats"]["numLabelPairs"], 91, "{v}");
    assert_eq!(
        d["seriesCountByMetricName"],
        json!([{"name": "lim", "value": 10}]),
        "{v}"
    );
    assert_eq!(
        d["labelValueCountByLabelName"],
        json!([{"name": "i", "value": 10}, {"name": "l0", "value": 10}]),
        "{v}"
    );
    assert_eq!(
        d["seriesCountByLabelValuePair"],
        json!([{"name": "__name__=lim", "value": 10}, {"name": "i=0", "value": 1}]),
        "{v}"
    );
    assert_eq!(v.get("warnings"), None, "{v}");
    for limit in [vec![], vec![("limit", "100")]] {
        let v = f("/api/v1/status/tsdb", limit).await;
        for list in [
            "labelValueCountByLabelName",
            "memoryInBytesByLabelName",
            "seriesCountByLabelValuePair",
        ] {
            assert_eq!(v["data"][list].as_array().map(Vec::len), Some(5), "{v}");
        }
        assert_eq!(warnings(&v), json!([CAP]), "{v}");
    }

    // A limit that is not a count is refused by each, as in Prometheus.
    for path in [
        "/api/v1/series",
        "/api/v1/labels",
        "/api/v1/label/i/values",
        "/api/v1/status/tsdb",
    ] {
        let bad = |limit: &'static str| {
            let c = c.clone();
            async move {
                c.get(path, &[("match[]", "lim"), ("limit", limit)])
                    .await
                    .expect(path)
            }
        };
        assert_error(
            bad("-1").await,
            400,
            "bad_data",
            "limit must be non-negative",
        )
        .await;
        assert_error(
            bad("x").await,
            400,
            "bad_data",
            r#"invalid parameter "limit": cannot parse "x" to a valid limit"#,
        )
        .await;
    }
}
