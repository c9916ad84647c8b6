//! Replays the calls Grafana's Prometheus data source makes (flavour
//! detection through buildinfo, the query builder's labels, label values,
//! series and metadata, dashboard panels' `query_range` and `query` as
//! form POSTs with Grafana's fields) and checks the response shapes Grafana
//! parses (issue 5).

use proto::prometheus::{metric_metadata::MetricType, MetricMetadata, WriteRequest};
use serde_json::{json, Value};
use tests::{encode_write, series, Options, Silverback};

fn now_s() -> i64 {
    tests::now_ms() / 1000
}

fn assert_success(st: u16, v: &Value) {
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["status"], "success", "{v}");
}

#[tokio::test]
async fn grafana_data_source_calls() {
    let node = Silverback::start(Options::default()).await.unwrap();
    let c = node.client();
    let end = now_s();
    let pts: Vec<(i64, f64)> = (0..40)
        .map(|i| ((end - 600 + i * 15) * 1000, i as f64))
        .collect();
    let req = WriteRequest {
        timeseries: vec![
            series(
                "node_cpu_seconds_total",
                &[("job", "node"), ("cpu", "0"), ("mode", "idle")],
                &pts,
            ),
            series(
                "node_cpu_seconds_total",
                &[("job", "node"), ("cpu", "1"), ("mode", "idle")],
                &pts,
            ),
            series("go_goroutines", &[("job", "node")], &pts),
        ],
        metadata: vec![
            MetricMetadata {
                r#type: MetricType::Counter as i32,
                metric_family_name: "node_cpu_seconds_total".into(),
                help: "Seconds the CPUs spent in each mode.".into(),
                unit: String::new(),
            },
            MetricMetadata {
                r#type: MetricType::Gauge as i32,
                metric_family_name: "go_goroutines".into(),
                help: "Number of goroutines that currently exist.".into(),
                unit: String::new(),
            },
        ],
    };
    let (st, body) = c.write_raw(encode_write(&req)).await.unwrap();
    assert_eq!(st, 204, "{body}");
    let (start, endq) = ((end - 3600).to_string(), end.to_string());

    // 1. Flavour/version detection.
    let (st, v) = c.get("/api/v1/status/buildinfo", &[]).await.unwrap();
    assert_success(st, &v);
    let version = v["data"]["version"].as_str().unwrap();
    assert!(
        version.split('.').count() == 3 && version.split('.').all(|p| p.parse::<u32>().is_ok()),
        "semver: {version}"
    );

    // 2. Query builder: metric names and label names over the time range.
    let (st, v) = c
        .get(
            "/api/v1/label/__name__/values",
            &[("start", &start), ("end", &endq)],
        )
        .await
        .unwrap();
    assert_success(st, &v);
    assert_eq!(
        v["data"],
        json!(["go_goroutines", "node_cpu_seconds_total"])
    );
    let (st, v) = c
        .post_form("/api/v1/labels", &[("start", &start), ("end", &endq)])
        .await
        .unwrap();
    assert_success(st, &v);
    assert_eq!(v["data"], json!(["__name__", "cpu", "job", "mode"]));
    let (st, v) = c
        .get(
            "/api/v1/labels",
            &[
                ("match[]", "node_cpu_seconds_total"),
                ("start", &start),
                ("end", &endq),
            ],
        )
        .await
        .unwrap();
    assert_success(st, &v);
    assert_eq!(v["data"], json!(["__name__", "cpu", "job", "mode"]));
    let (st, v) = c
        .get(
            "/api/v1/label/cpu/values",
            &[
                ("match[]", "node_cpu_seconds_total{job=\"node\"}"),
                ("start", &start),
                ("end", &endq),
            ],
        )
        .await
        .unwrap();
    assert_success(st, &v);
    assert_eq!(v["data"], json!(["0", "1"]));
    let (st, v) = c
        .get(
            "/api/v1/series",
            &[
                ("match[]", "{__name__=\"go_goroutines\",job=\"node\"}"),
                ("start", &start),
                ("end", &endq),
            ],
        )
        .await
        .unwrap();
    assert_success(st, &v);
    assert_eq!(
        v["data"],
        json!([{"__name__": "go_goroutines", "job": "node"}])
    );

    // 3. Metadata for the metrics browser and hover docs.
    let (st, v) = c.get("/api/v1/metadata", &[]).await.unwrap();
    assert_success(st, &v);
    assert_eq!(
        v["data"]["node_cpu_seconds_total"],
        json!([{"type": "counter", "help": "Seconds the CPUs spent in each mode.", "unit": ""}])
    );
    let (_, v) = c
        .get("/api/v1/metadata", &[("metric", "go_goroutines")])
        .await
        .unwrap();
    assert_eq!(v["data"].as_object().unwrap().len(), 1);
    assert_eq!(v["data"]["go_goroutines"][0]["type"], "gauge");

    // 4. A dashboard panel: query_range POST with Grafana's form fields.
    let (st, v) = c
        .post_form(
            "/api/v1/query_range",
            &[
                (
                    "query",
                    "sum by (mode) (rate(node_cpu_seconds_total{job=\"node\"}[1m]))",
                ),
                ("start", &(end - 300).to_string()),
                ("end", &end.to_string()),
                ("step", "15"),
            ],
        )
        .await
        .unwrap();
    assert_success(st, &v);
    assert_eq!(v["data"]["resultType"], "matrix");
    let series0 = &v["data"]["result"][0];
    assert_eq!(series0["metric"], json!({"mode": "idle"}));
    let values = series0["values"].as_array().unwrap();
    assert_eq!(values.len(), 21);
    for p in values {
        assert!(p[0].is_number() && p[1].is_string(), "{p}");
        // Each CPU counts one per 15 s: 2/15 per second for two CPUs.
        let r: f64 = p[1].as_str().unwrap().parse().unwrap();
        assert!((r - 2.0 / 15.0).abs() < 1e-9, "{p}");
    }

    // 5. A stat panel / Explore instant query: query POST with time.
    let (st, v) = c
        .post_form(
            "/api/v1/query",
            &[("query", "go_goroutines"), ("time", &end.to_string())],
        )
        .await
        .unwrap();
    assert_success(st, &v);
    assert_eq!(v["data"]["resultType"], "vector");
    assert_eq!(v["data"]["result"][0]["value"][1], "39");

    // 6. Exemplars (Grafana asks alongside range queries) and rules (the
    //    alerting UI) answer with empty results in the right shape.
    let (st, v) = c
        .post_form(
            "/api/v1/query_exemplars",
            &[
                ("query", "go_goroutines"),
                ("start", &start),
                ("end", &endq),
            ],
        )
        .await
        .unwrap();
    assert_success(st, &v);
    assert_eq!(v["data"], json!([]));
    let (st, v) = c.get("/api/v1/rules", &[]).await.unwrap();
    assert_success(st, &v);
    assert!(v["data"]["groups"].is_array());

    // 7. A syntax error in the editor comes back as Grafana shows it.
    let (st, v) = c
        .post_form(
            "/api/v1/query",
            &[("query", "rate(go_goroutines[5m]"), ("time", &endq)],
        )
        .await
        .unwrap();
    assert_eq!(st, 400);
    assert_eq!(v["errorType"], "bad_data");
}
