//! The HTTP side hardened (issue 14): remote write 2.0 bodies are refused
//! with 415 instead of being misread as 1.0; SIGHUP never kills a node;
//! admin endpoints are off without `--enable-admin-api` and refuse
//! cross-site requests; slow, idle and excess connections are bounded
//! (slowloris) without harming the connections being served.

use std::process::Command;
use std::time::{Duration, Instant};

use tests::{encode_write, now_ms, series, Options, Silverback};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

fn node_opts(extra: &[&str]) -> Options {
    let mut o = Options::default();
    o.extra_args.extend(extra.iter().map(|s| s.to_string()));
    o
}

#[tokio::test]
async fn remote_write_2_is_refused_with_415() {
    let node = Silverback::start(Options::default()).await.expect("node");
    let body = encode_write(&proto::prometheus::WriteRequest {
        timeseries: vec![series("rw_version", &[], &[(now_ms(), 1.0)])],
        metadata: vec![],
    });
    let http = reqwest::Client::new();
    let post = |ct: &'static str| {
        http.post(format!("{}/api/v1/write", node.url()))
            .header("Content-Type", ct)
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "2.0.0")
            .body(body.clone())
            .send()
    };
    let r = post("application/x-protobuf;proto=io.prometheus.write.v2.Request")
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 415);
    let text = r.text().await.expect("body");
    assert!(text.contains("remote write 2.0"), "{text}");
    // Nothing of it was stored.
    let v = node
        .client()
        .query("rw_version", now_ms() as f64 / 1000.0)
        .await
        .expect("query");
    assert_eq!(v["data"]["result"], serde_json::json!([]), "{v}");
    // The same bytes named as 1.0 are stored.
    let r = post("application/x-protobuf;proto=prometheus.WriteRequest")
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 204, "{:?}", r.text().await);
}

#[tokio::test]
async fn sighup_does_not_kill_a_node_without_rules() {
    let mut node = Silverback::start(Options::default()).await.expect("node");
    let pid = node.pid().expect("pid").to_string();
    for _ in 0..2 {
        let st = Command::new("kill")
            .args(["-HUP", &pid])
            .status()
            .expect("kill");
        assert!(st.success());
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    if let Some(report) = node.exit_report() {
        panic!("SIGHUP killed the node: {report}");
    }
    let (st, _) = node.client().get_text("/-/ready").await.expect("ready");
    assert_eq!(st, 200);
    assert!(
        node.log_tail(50).contains("SIGHUP received"),
        "{}",
        node.log_tail(20)
    );
    node.stop().await.expect("clean stop");
}

#[tokio::test]
async fn admin_endpoints_need_the_flag_and_refuse_cross_site() {
    let (off, on) = tokio::join!(
        Silverback::start(Options::default()),
        Silverback::start(node_opts(&["--enable-admin-api"]))
    );
    let (off, on) = (off.expect("node"), on.expect("node"));
    const PATH: &str = "/api/v1/admin/cluster/decommission";

    // Off by default, answered as Prometheus answers.
    let (st, v) = off
        .client()
        .post(PATH, &[("node", "1")])
        .await
        .expect("post");
    assert_eq!(st, 503, "{v}");
    assert_eq!(v["errorType"], "unavailable", "{v}");
    assert!(
        v["error"]
            .as_str()
            .unwrap_or("")
            .contains("admin APIs disabled"),
        "{v}"
    );
    // Still known in the cluster map: nothing was decommissioned.
    let (_, status) = off
        .client()
        .get("/api/v1/status/cluster", &[])
        .await
        .expect("status");
    assert!(!status.to_string().contains("removed"), "{status}");

    // On: what a page on another site can make a browser send is refused.
    let http = reqwest::Client::new();
    let url = format!("{}{PATH}?node=77", on.url());
    let refused = [
        http.post(&url)
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body("node=77"),
        http.post(&url)
            .header("Content-Type", "text/plain")
            .body("x"),
        http.post(&url).header("Origin", "http://evil.example"),
        http.post(&url).header("Sec-Fetch-Site", "cross-site"),
    ];
    for req in refused {
        let r = req.send().await.expect("post");
        let st = r.status().as_u16();
        let text = r.text().await.unwrap_or_default();
        assert_eq!(st, 403, "{text}");
        assert!(text.contains("cannot accept this request"), "{text}");
    }
    // A same-origin request or a script passes the gate and reaches the
    // handler (which names the unknown node).
    let r = http
        .post(&url)
        .header("Origin", on.url())
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 400);
    let (st, v) = on
        .client()
        .post(PATH, &[("node", "77")])
        .await
        .expect("post");
    assert_eq!(st, 400, "{v}");
    assert!(v["error"].as_str().unwrap_or("").contains("77"), "{v}");
    // /-/reload refuses cross-site requests too.
    let r = http
        .post(format!("{}/-/reload", on.url()))
        .header("Origin", "http://evil.example")
        .send()
        .await
        .expect("post");
    assert_eq!(r.status().as_u16(), 403);
}

/// One keep-alive request on `s`; the status line.
async fn get_on(s: &mut TcpStream) -> std::io::Result<String> {
    s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: t\r\n\r\n")
        .await?;
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    // "Silverback is Healthy.\n" ends the body.
    while !got.ends_with(b"Healthy.\n") {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        got.extend_from_slice(&buf[..n]);
    }
    let text = String::from_utf8_lossy(&got).to_string();
    Ok(text.lines().next().unwrap_or("").to_string())
}

/// How long until the server closes `s` (EOF or reset), at most `max`.
async fn closed_after(mut s: TcpStream, max: Duration) -> Option<Duration> {
    let t = Instant::now();
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(max.saturating_sub(t.elapsed()), s.read(&mut buf)).await {
            Err(_) => return None,
            Ok(Ok(0)) | Ok(Err(_)) => return Some(t.elapsed()),
            // A 408 or similar before the close.
            Ok(Ok(_)) => continue,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_idle_and_excess_connections_are_bounded() {
    let node = Silverback::start(node_opts(&[
        "--http-header-read-timeout",
        "2s",
        "--http-idle-timeout",
        "3s",
        "--http-max-connections",
        "3",
    ]))
    .await
    .expect("node");
    // The readiness poller's connections close with its client; let the
    // server see them go.
    tokio::time::sleep(Duration::from_millis(500)).await;

    // A, a client being served, takes the first slot and keeps requesting.
    let mut a = TcpStream::connect(node.http).await.expect("connect");
    assert!(get_on(&mut a).await.expect("A").contains("200"));
    // Two slowloris connections send half a header each: the cap is reached.
    let t0 = Instant::now();
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut s = TcpStream::connect(node.http).await.expect("connect");
        s.write_all(b"GET /-/healthy HTTP/1.1\r\nHost: t\r\n")
            .await
            .expect("half a header");
        slow.push(s);
    }
    // D, one over the cap: the kernel queues it; it is served once a slow
    // connection is closed, not before.
    let d = tokio::spawn({
        let addr = node.http;
        async move {
            let mut d = TcpStream::connect(addr).await?;
            let st = get_on(&mut d).await?;
            Ok::<_, std::io::Error>((st, t0.elapsed()))
        }
    });
    let closes: Vec<_> = slow
        .into_iter()
        .map(|s| tokio::spawn(closed_after(s, Duration::from_secs(10))))
        .collect();
    // Meanwhile A is answered at once, every time.
    while t0.elapsed() < Duration::from_millis(3500) {
        let t = Instant::now();
        let st = get_on(&mut a).await.expect("A is served at the cap");
        assert!(st.contains("200"), "{st}");
        assert!(
            t.elapsed() < Duration::from_secs(1),
            "A waited {:?} at the cap",
            t.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    for c in closes {
        let after = c
            .await
            .expect("task")
            .expect("a half-header connection was not closed within 10s");
        assert!(
            after >= Duration::from_millis(1500) && after < Duration::from_secs(5),
            "half-header connection closed after {after:?}, want about 2s"
        );
    }
    let (st, waited) = d.await.expect("task").expect("D is served");
    assert!(st.contains("200"), "{st}");
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(6),
        "the connection over the cap was answered after {waited:?}; want after the slow ones closed (~2s)"
    );

    // An idle connection that never sends a byte is closed too.
    let idle = TcpStream::connect(node.http).await.expect("connect");
    let after = closed_after(idle, Duration::from_secs(10))
        .await
        .expect("an idle connection was not closed within 10s");
    assert!(
        after < Duration::from_secs(4),
        "idle closed after {after:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lookups_are_capped() {
    let node = Silverback::start(node_opts(&[
        "--max-concurrent-queries",
        "1",
        "--query-timeout",
        "1s",
        "--max-lookup-results",
        "2",
    ]))
    .await
    .expect("node");
    let c = node.client();
    let t = now_ms();
    let many: Vec<_> = (0..5)
        .map(|i| series("lk", &[("i", &i.to_string())], &[(t, 1.0)]))
        .collect();
    assert_eq!(c.write(&many).await.expect("write").0, 204);

    // The server's cap, and a smaller `limit`.
    let (st, v) = c
        .get("/api/v1/series", &[("match[]", "lk")])
        .await
        .expect("series");
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2), "{v}");
    assert!(
        v["warnings"].to_string().contains("max-lookup-results"),
        "{v}"
    );
    let (_, v) = c
        .get("/api/v1/series", &[("match[]", "lk"), ("limit", "1")])
        .await
        .expect("series");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(1), "{v}");
    let (_, v) = c.get("/api/v1/label/i/values", &[]).await.expect("values");
    assert_eq!(v["data"].as_array().map(Vec::len), Some(2), "{v}");

    // Through the query-slot layer (--max-concurrent-queries 1), lookups
    // answer one after another.
    let (st, v) = c.get("/api/v1/labels", &[]).await.expect("labels");
    assert_eq!(st, 200, "{v}");
    assert_eq!(v["data"], serde_json::json!(["__name__", "i"]), "{v}");
}

#[tokio::test]
async fn self_scrape_labels_name_the_node() {
    let mut o = Options {
        node_id: 3,
        ..Options::default()
    };
    o.extra_args = vec!["--self-scrape-interval".into(), "1s".into()];
    let node = Silverback::start(o).await.expect("node");
    let deadline = Instant::now() + Duration::from_secs(15);
    let v = loop {
        let v = node
            .client()
            .query("up{job=\"silverback\"}", now_ms() as f64 / 1000.0)
            .await
            .expect("query");
        if v["data"]["result"]
            .as_array()
            .is_some_and(|r| !r.is_empty())
        {
            break v;
        }
        assert!(Instant::now() < deadline, "no self-scraped `up`: {v}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let m = &v["data"]["result"][0]["metric"];
    assert_eq!(m["node"], "3", "{v}");
    assert_eq!(m["instance"], node.http.to_string(), "{v}");
}
