//! Real-process tests of `POST /api/v1/write` error handling (issue 5):
//! 400 naming series and reason (valid series still stored), 413 over the
//! body limit, native histograms refused, auth.

use proto::prometheus::{Histogram, WriteRequest};
use tests::{encode_write, now_ms, series, Options, Silverback};

async fn count(c: &tests::Client, q: &str) -> usize {
    let v = c.query(q, now_ms() as f64 / 1000.0).await.unwrap();
    v["data"]["result"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn bad_bodies_are_400_with_reason() {
    let node = Silverback::start(Options::default()).await.unwrap();
    let c = node.client();
    let (st, body) = c
        .write_raw(b"\xff\xff\xff\xff\xff\xff\xff".to_vec())
        .await
        .unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("snappy"), "{body}");
    let not_proto = snap::raw::Encoder::new()
        .compress_vec(b"\x0a\xff\xff\xff")
        .unwrap();
    let (st, body) = c.write_raw(not_proto).await.unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("protobuf"), "{body}");
}

#[tokio::test]
async fn invalid_series_are_named_and_valid_ones_stored() {
    let node = Silverback::start(Options::default()).await.unwrap();
    let c = node.client();
    let t = now_ms();
    let (st, body) = c
        .write(&[
            series("good_metric", &[("job", "a")], &[(t, 1.0)]),
            series("bad_metric", &[("0bad", "x")], &[(t, 1.0)]),
        ])
        .await
        .unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("bad_metric") && body.contains("0bad"),
        "{body}"
    );
    assert_eq!(count(&c, "good_metric").await, 1);
    assert_eq!(count(&c, "bad_metric").await, 0);

    // Out of order: a sample older than the newest stored one.
    let (st, body) = c
        .write(&[series("good_metric", &[("job", "a")], &[(t - 60_000, 5.0)])])
        .await
        .unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("out of order"), "{body}");
    assert!(body.contains("good_metric"), "{body}");
    // Resending the identical sample is accepted (Prometheus retries).
    let (st, body) = c
        .write(&[series("good_metric", &[("job", "a")], &[(t, 1.0)])])
        .await
        .unwrap();
    assert_eq!(st, 204, "{body}");
    // Same timestamp, other value: a duplicate.
    let (st, body) = c
        .write(&[series("good_metric", &[("job", "a")], &[(t, 2.0)])])
        .await
        .unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("duplicate"), "{body}");

    // Native histograms are refused, never dropped silently.
    let mut h = series("native_h", &[], &[]);
    h.histograms.push(Histogram {
        timestamp: t,
        ..Default::default()
    });
    let (st, body) = c.write(&[h]).await.unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("native histogram") && body.contains("native_h"),
        "{body}"
    );

    let (_, metrics) = c.get_text("/metrics").await.unwrap();
    assert!(
        metrics.contains("silverback_ingest_rejected_samples_total{reason=\"invalid_labels\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("silverback_ingest_rejected_samples_total{reason=\"native_histogram\"} 1"),
        "{metrics}"
    );
}

/// Issue 14: a sample from a wrong clock (year 2255) is refused per sample
/// with the series named, and does not block the series' real samples
/// (before, it was stored and every later sample was out of order); a
/// sample older than the retention is refused the same way.
#[tokio::test]
async fn samples_outside_now_plus_max_future_and_retention_are_refused() {
    let node = Silverback::start(Options::default()).await.unwrap();
    let c = node.client();
    let t = now_ms();
    let year_2255 = 9_000_000_000_000;
    let (st, body) = c
        .write(&[series(
            "skewed",
            &[("job", "a")],
            &[(t, 1.0), (year_2255, 2.0)],
        )])
        .await
        .unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(body.contains("skewed") && body.contains("future"), "{body}");
    let (st, body) = c
        .write(&[series("skewed", &[("job", "a")], &[(t + 1000, 3.0)])])
        .await
        .unwrap();
    assert_eq!(st, 204, "the real sample after the skewed one: {body}");
    let v = c.query("skewed", (t + 1000) as f64 / 1000.0).await.unwrap();
    assert_eq!(v["data"]["result"][0]["value"][1], "3", "{v}");
    let (st, body) = c
        .write(&[series("ancient", &[], &[(t - 20 * 86_400_000, 1.0)])])
        .await
        .unwrap();
    assert_eq!(st, 400, "{body}");
    assert!(
        body.contains("ancient") && body.contains("retention"),
        "{body}"
    );
    let (_, metrics) = c.get_text("/metrics").await.unwrap();
    for reason in ["too_far_in_future", "too_old"] {
        let line = format!("silverback_ingest_rejected_samples_total{{reason=\"{reason}\"}} 1");
        assert!(metrics.contains(&line), "{line} in {metrics}");
    }
}

#[tokio::test]
async fn limits_413_and_400() {
    let mut o = Options::default();
    o.extra_args.extend(
        [
            "--max-body-bytes",
            "2000",
            "--max-series-per-request",
            "3",
            "--max-label-value-length",
            "20",
        ]
        .map(String::from),
    );
    let node = Silverback::start(o).await.unwrap();
    let c = node.client();
    let t = now_ms();
    // Over the body limit: pseudo-random letters, which snappy (no entropy
    // coding) cannot shrink below the limit.
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let big: String = (0..5000)
        .map(|_| {
            x = x
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            char::from(b'a' + ((x >> 33) % 26) as u8)
        })
        .collect();
    let mut s = series("big", &[], &[(t, 1.0)]);
    s.labels.push(proto::prometheus::Label {
        name: "blob".into(),
        value: big,
    });
    let body = encode_write(&WriteRequest {
        timeseries: vec![s],
        metadata: vec![],
    });
    assert!(body.len() > 2000);
    let (st, text) = c.write_raw(body).await.unwrap();
    assert_eq!(st, 413, "{text}");
    assert!(text.contains("max-body-bytes"), "{text}");
    // Too many series.
    let many: Vec<_> = (0..4)
        .map(|i| series("m", &[("i", &i.to_string())], &[(t, 1.0)]))
        .collect();
    let (st, text) = c.write(&many).await.unwrap();
    assert_eq!(st, 400, "{text}");
    assert!(text.contains("max-series-per-request"), "{text}");
    // Label value too long.
    let (st, text) = c
        .write(&[series(
            "m",
            &[("v", "a-value-longer-than-twenty")],
            &[(t, 1.0)],
        )])
        .await
        .unwrap();
    assert_eq!(st, 400, "{text}");
    assert!(text.contains("max-label-value-length"), "{text}");
}

#[tokio::test]
async fn bearer_and_basic_auth() {
    let dir = tempfile::tempdir().unwrap();
    let tok = dir.path().join("token");
    let pw = dir.path().join("pw");
    std::fs::write(&tok, "s3cret\n").unwrap();
    std::fs::write(&pw, "hunter2\n").unwrap();
    let mut o = Options::default();
    o.extra_args.extend([
        "--bearer-token-file".to_string(),
        tok.display().to_string(),
        "--basic-auth-username".to_string(),
        "admin".to_string(),
        "--basic-auth-password-file".to_string(),
        pw.display().to_string(),
    ]);
    let node = Silverback::start(o).await.unwrap();
    let http = reqwest::Client::new();
    let url = format!("{}/api/v1/labels", node.url());
    let r = http.get(&url).send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http.get(&url).bearer_auth("wrong").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 401);
    let r = http.get(&url).bearer_auth("s3cret").send().await.unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(&url)
        .basic_auth("admin", Some("hunter2"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let r = http
        .get(&url)
        .basic_auth("admin", Some("nope"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    // Probes stay open.
    let r = http
        .get(format!("{}/-/ready", node.url()))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
}
