//! Real-process tests of the Prometheus HTTP API (issue 5): write through
//! remote write, then read through every endpoint, and check the JSON shapes.

use serde_json::{json, Value};
use tests::{now_ms, series, Options, Silverback};

/// Writes `http_requests_total{job,instance}` (2 series, counters) and
/// `temperature{room}` (gauge) ending at `end` (ms, whole seconds).
async fn load(c: &tests::Client, end: i64) {
    let pts = |f: fn(i64) -> f64| -> Vec<(i64, f64)> {
        (0..20).map(|i| (end - (19 - i) * 15_000, f(i))).collect()
    };
    let (st, body) = c
        .write(&[
            series(
                "http_requests_total",
                &[("job", "api"), ("instance", "a:1")],
                &pts(|i| (i * 10) as f64),
            ),
            series(
                "http_requests_total",
                &[("job", "api"), ("instance", "b:1")],
                &pts(|i| (i * 20) as f64),
            ),
            series(
                "temperature",
                &[("room", "kitchen")],
                &pts(|i| 20.0 + i as f64 / 2.0),
            ),
        ])
        .await
        .unwrap();
    assert_eq!(st, 204, "write failed: {body}");
}

#[tokio::test]
async fn write_then_read_every_endpoint() {
    let node = Silverback::start(Options::default()).await.unwrap();
    let c = node.client();
    let end = now_ms() / 1000 * 1000;
    load(&c, end).await;
    let t = end as f64 / 1000.0;

    // Instant query: vector with string values and float-second timestamps.
    let v = c
        .query("sum by (job) (http_requests_total)", t)
        .await
        .unwrap();
    assert_eq!(v["status"], "success");
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(
        v["data"]["result"],
        json!([{"metric": {"job": "api"}, "value": [end / 1000, "570"]}])
    );

    // Scalar and string results.
    let v = c.query("1 + 1", t).await.unwrap();
    assert_eq!(
        v["data"],
        json!({"resultType": "scalar", "result": [end / 1000, "2"]})
    );
    let v = c.query("\"hi\"", t).await.unwrap();
    assert_eq!(
        v["data"],
        json!({"resultType": "string", "result": [end / 1000, "hi"]})
    );
    let v = c.query("1/0", t).await.unwrap();
    assert_eq!(v["data"]["result"][1], "+Inf");

    // Range query: 60 s steps over the last 4 minutes.
    let v = c
        .query_range("temperature", t - 240.0, t, 60.0)
        .await
        .unwrap();
    assert_eq!(v["data"]["resultType"], "matrix");
    let r = &v["data"]["result"][0];
    assert_eq!(
        r["metric"],
        json!({"__name__": "temperature", "room": "kitchen"})
    );
    let values = r["values"].as_array().unwrap();
    assert_eq!(values.len(), 5);
    assert_eq!(values[4], json!([end / 1000, "29.5"]));
    assert_eq!(values[0], json!([end / 1000 - 240, "21.5"])); // i = 3: 20 + 3/2

    // Range query through a form POST with RFC 3339 times and a duration step.
    let rfc = |ms: i64| chrono_like_rfc3339(ms);
    let (st, v) = c
        .post_form(
            "/api/v1/query_range",
            &[
                ("query", "rate(http_requests_total[1m])"),
                ("start", &rfc(end - 60_000)),
                ("end", &rfc(end)),
                ("step", "30s"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 2);

    // series / labels / label values, with match[] and limit.
    let (st, v) = c
        .get(
            "/api/v1/series",
            &[
                ("match[]", "http_requests_total"),
                ("match[]", "temperature"),
            ],
        )
        .await
        .unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"].as_array().unwrap().len(), 3);
    assert!(v["data"]
        .as_array()
        .unwrap()
        .contains(&json!({"__name__": "temperature", "room": "kitchen"})));
    let (_, v) = c
        .get(
            "/api/v1/series",
            &[("match[]", "http_requests_total"), ("limit", "1")],
        )
        .await
        .unwrap();
    assert_eq!(v["data"].as_array().unwrap().len(), 1);
    assert!(v["warnings"].is_array(), "{v}");
    let (_, v) = c.get("/api/v1/labels", &[]).await.unwrap();
    assert_eq!(v["data"], json!(["__name__", "instance", "job", "room"]));
    let (_, v) = c
        .get("/api/v1/labels", &[("match[]", "temperature")])
        .await
        .unwrap();
    assert_eq!(v["data"], json!(["__name__", "room"]));
    let (_, v) = c.get("/api/v1/label/__name__/values", &[]).await.unwrap();
    assert_eq!(v["data"], json!(["http_requests_total", "temperature"]));
    let (_, v) = c
        .get(
            "/api/v1/label/instance/values",
            &[("match[]", "{job=\"api\"}")],
        )
        .await
        .unwrap();
    assert_eq!(v["data"], json!(["a:1", "b:1"]));
    let (st, v) = c.get("/api/v1/series", &[]).await.unwrap();
    assert_eq!((st, v["errorType"].clone()), (400, json!("bad_data")));

    // format_query, parse_query, query_exemplars.
    let (_, v) = c
        .get(
            "/api/v1/format_query",
            &[("query", "sum(rate(x[5m]))by(job)")],
        )
        .await
        .unwrap();
    assert_eq!(v["data"], "sum by (job) (rate(x[5m]))");
    let (_, v) = c
        .get("/api/v1/parse_query", &[("query", "up == 1")])
        .await
        .unwrap();
    assert_eq!(v["data"]["type"], "binaryExpr");
    let (_, v) = c
        .get("/api/v1/query_exemplars", &[("query", "up")])
        .await
        .unwrap();
    assert_eq!(v, json!({"status": "success", "data": []}));

    // Status endpoints.
    let (_, v) = c.get("/api/v1/status/buildinfo", &[]).await.unwrap();
    assert!(v["data"]["version"].is_string());
    let (_, v) = c.get("/api/v1/status/flags", &[]).await.unwrap();
    assert_eq!(v["data"]["shards"], "4");
    let (_, v) = c.get("/api/v1/status/config", &[]).await.unwrap();
    assert!(v["data"]["yaml"]
        .as_str()
        .unwrap()
        .contains("retention: 15d"));
    let (_, v) = c.get("/api/v1/status/runtimeinfo", &[]).await.unwrap();
    assert_eq!(v["data"]["storageRetention"], "15d");
    let (_, v) = c.get("/api/v1/status/tsdb", &[]).await.unwrap();
    assert_eq!(v["data"]["headStats"]["numSeries"], 3);
    assert_eq!(
        v["data"]["seriesCountByMetricName"][0],
        json!({"name": "http_requests_total", "value": 2})
    );
    let (st, v) = c.get("/api/v1/status/cluster", &[]).await.unwrap();
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"]["node_id"], 1);
    let (_, v) = c.get("/api/v1/rules", &[]).await.unwrap();
    assert!(v["data"]["groups"].is_array(), "{v}");
    let (_, v) = c.get("/api/v1/alerts", &[]).await.unwrap();
    assert!(v["data"]["alerts"].is_array(), "{v}");
    assert_eq!(c.get_text("/-/healthy").await.unwrap().0, 200);
    assert_eq!(c.get_text("/-/ready").await.unwrap().0, 200);
    let (st, v) = c.get("/api/v1/nope", &[]).await.unwrap();
    assert_eq!((st, v["status"].clone()), (404, json!("error")));

    // /metrics counts what happened.
    let (st, text) = c.get_text("/metrics").await.unwrap();
    assert_eq!(st, 200);
    assert!(
        text.contains("silverback_ingest_samples_total 60"),
        "{text}"
    );
    // Label order inside braces is free in the text format.
    assert!(
        text.lines().any(
            |l| l.starts_with("silverback_http_request_duration_seconds_bucket{")
                && l.contains("handler=\"/api/v1/query\"")
        ),
        "{text}"
    );
    assert!(
        text.contains("silverback_raft_is_leader{group=\"0\"} 1"),
        "{text}"
    );
    assert!(text.contains("process_resident_memory_bytes"), "{text}");
}

/// RFC 3339 with milliseconds, UTC, from unix ms (no chrono dependency).
fn chrono_like_rfc3339(ms: i64) -> String {
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = if m <= 2 { y + 1 } else { y };
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms.rem_euclid(1000)
    )
}

#[tokio::test]
async fn query_errors_have_prometheus_shape_and_status() {
    let node = Silverback::start(Options::default()).await.unwrap();
    let c = node.client();
    let end = now_ms() / 1000 * 1000;
    load(&c, end).await;
    let t = (end / 1000).to_string();
    let check = |st: u16, v: &Value, code: u16, kind: &str| {
        assert_eq!(st, code, "{v}");
        assert_eq!(v["status"], "error", "{v}");
        assert_eq!(v["errorType"], kind, "{v}");
        assert!(v["error"].as_str().is_some_and(|s| !s.is_empty()), "{v}");
    };
    let (st, v) = c.get("/api/v1/query", &[("query", "sum(")]).await.unwrap();
    check(st, &v, 400, "bad_data");
    let (st, v) = c.get("/api/v1/query", &[]).await.unwrap();
    check(st, &v, 400, "bad_data");
    let (st, v) = c
        .get("/api/v1/query", &[("query", "up"), ("time", "yesterday")])
        .await
        .unwrap();
    check(st, &v, 400, "bad_data");
    assert!(v["error"].as_str().unwrap().contains("time"), "{v}");
    let (st, v) = c
        .get(
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "10"),
                ("end", "20"),
                ("step", "0"),
            ],
        )
        .await
        .unwrap();
    check(st, &v, 400, "bad_data");
    let (st, v) = c
        .get(
            "/api/v1/query_range",
            &[("query", "up"), ("end", "20"), ("step", "1")],
        )
        .await
        .unwrap();
    check(st, &v, 400, "bad_data");
    let (st, v) = c
        .get(
            "/api/v1/query_range",
            &[
                ("query", "up"),
                ("start", "0"),
                ("end", "100000"),
                ("step", "1"),
            ],
        )
        .await
        .unwrap();
    check(st, &v, 400, "bad_data");
    // Many-to-many matching is an execution error (422).
    let (st, v) = c
        .get(
            "/api/v1/query",
            &[
                ("query", "http_requests_total + on(job) http_requests_total"),
                ("time", &t),
            ],
        )
        .await
        .unwrap();
    check(st, &v, 422, "execution");
    // The sample limit is an execution error too.
    drop(node);
    let mut o = Options::default();
    o.extra_args
        .extend(["--max-query-samples".to_string(), "5".to_string()]);
    let node = Silverback::start(o).await.unwrap();
    let c = node.client();
    load(&c, end).await;
    let (st, v) = c
        .get(
            "/api/v1/query",
            &[("query", "sum_over_time(temperature[10m])"), ("time", &t)],
        )
        .await
        .unwrap();
    check(st, &v, 422, "execution");
}

#[tokio::test]
async fn restart_keeps_data() {
    let mut node = Silverback::start(Options::default()).await.unwrap();
    let c = node.client();
    let end = now_ms() / 1000 * 1000;
    load(&c, end).await;
    let t = end as f64 / 1000.0;
    let before = c.query("temperature", t).await.unwrap();
    let status = node.stop().await.unwrap();
    assert!(status.success(), "SIGTERM must exit 0, got {status}");
    node.restart().await.unwrap();
    let after = c.query("temperature", t).await.unwrap();
    assert_eq!(before, after);
    assert_eq!(after["data"]["result"][0]["value"][1], "29.5");
}

#[tokio::test]
async fn self_scrape_writes_own_metrics() {
    let o = Options {
        extra_args: vec!["--self-scrape-interval".into(), "1s".into()],
        ..Default::default()
    };
    let node = Silverback::start(o).await.unwrap();
    let c = node.client();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let v = c
            .query("up{job=\"silverback\"}", now_ms() as f64 / 1000.0)
            .await
            .unwrap();
        if v["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            assert_eq!(
                v["data"]["result"][0]["metric"]["instance"],
                node.http.to_string()
            );
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "no self-scraped `up` after 30 s: {v}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    let v = c
        .query(
            "silverback_ingest_samples_total{job=\"silverback\"}",
            now_ms() as f64 / 1000.0,
        )
        .await
        .unwrap();
    assert_eq!(v["data"]["result"].as_array().unwrap().len(), 1, "{v}");
}
