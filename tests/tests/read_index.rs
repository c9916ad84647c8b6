//! Issue 13: `labels`, `label/<name>/values`, `series` and `status/tsdb`
//! answered from the shards' in-memory indexes, across real processes: three
//! nodes, replication factor 1, so most shards a node asks about live on
//! another node and their answers (the tsdb figures included) cross gRPC.
//! Every node gives the same, exact answers.

use serde_json::{json, Value};
use tests::{now_ms, series, Cluster, Silverback};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_node_answers_metadata_from_the_indexes() {
    let cluster = Cluster::start(3, 6, 1, &[]).await.expect("cluster");
    let clients: Vec<_> = cluster.nodes.iter().map(Silverback::client).collect();
    let now = now_ms();
    let pts: Vec<(i64, f64)> = (0..5)
        .map(|i| (now - 60_000 + i * 15_000, i as f64))
        .collect();
    let mut ts = Vec::new();
    for i in 0..40 {
        let inst = format!("host-{:02}:9100", i % 8);
        let code = if i % 2 == 0 { "200" } else { "500" };
        ts.push(series(
            "http_requests_total",
            &[("instance", &inst), ("code", code), ("i", &i.to_string())],
            &pts,
        ));
    }
    ts.push(series("up", &[("instance", "host-00:9100")], &pts));
    let (st, body) = clients[0].write(&ts).await.expect("write");
    assert_eq!(st, 204, "{body}");

    let range = [
        ("start", (now / 1000 - 3600).to_string()),
        ("end", (now / 1000 + 60).to_string()),
    ];
    let range: Vec<(&str, &str)> = range.iter().map(|(a, b)| (*a, b.as_str())).collect();
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut v = range.clone();
        v.extend_from_slice(extra);
        v
    };
    for c in &clients {
        let (st, v) = c.get("/api/v1/labels", &range).await.expect("labels");
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["data"], json!(["__name__", "code", "i", "instance"]));

        let (st, v) = c
            .get("/api/v1/label/instance/values", &with(&[("match[]", "up")]))
            .await
            .expect("values");
        assert_eq!(st, 200, "{v}");
        assert_eq!(v["data"], json!(["host-00:9100"]));

        let (_, v) = c
            .get("/api/v1/label/instance/values", &range)
            .await
            .expect("values");
        let want: Vec<String> = (0..8).map(|i| format!("host-{i:02}:9100")).collect();
        assert_eq!(v["data"], json!(want));

        // one instance, and `code=~` with `i!=` in one selector
        let (_, v) = c
            .get(
                "/api/v1/series",
                &with(&[(
                    "match[]",
                    "http_requests_total{instance=\"host-03:9100\",code=~\"5..\",i!=\"3\"}",
                )]),
            )
            .await
            .expect("series");
        let got: Vec<&str> = v["data"]
            .as_array()
            .expect("array")
            .iter()
            .map(|s| s["i"].as_str().expect("i"))
            .collect();
        assert_eq!(got, vec!["11", "19", "27", "35"], "{v}");

        // a label that is absent: `code=""` selects `up` only
        let (_, v) = c
            .get(
                "/api/v1/series",
                &with(&[("match[]", "{instance=\"host-00:9100\",code=\"\"}")]),
            )
            .await
            .expect("series");
        assert_eq!(v["data"].as_array().map(Vec::len), Some(1), "{v}");
        assert_eq!(v["data"][0]["__name__"], "up");

        let (st, v) = c
            .get("/api/v1/status/tsdb", &[("limit", "3")])
            .await
            .expect("tsdb");
        assert_eq!(st, 200, "{v}");
        let d: &Value = &v["data"];
        assert_eq!(d["headStats"]["numSeries"], 41, "{v}");
        // __name__ 2 + code 2 + i 40 + instance 8
        assert_eq!(d["headStats"]["numLabelPairs"], 52, "{v}");
        assert_eq!(
            d["seriesCountByMetricName"],
            json!([{"name": "http_requests_total", "value": 40}, {"name": "up", "value": 1}])
        );
        assert_eq!(
            d["labelValueCountByLabelName"],
            json!([{"name": "i", "value": 40}, {"name": "instance", "value": 8}, {"name": "__name__", "value": 2}])
        );
        assert_eq!(
            d["seriesCountByLabelValuePair"],
            json!([
                {"name": "__name__=http_requests_total", "value": 40},
                {"name": "code=200", "value": 20},
                {"name": "code=500", "value": 20}
            ])
        );
    }
}
