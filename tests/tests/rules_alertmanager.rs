//! Rules end to end (issue 6): a 3-node cluster evaluates a recording rule
//! and a `for: 30s` alerting rule on its meta leader and notifies Debian's
//! real Alertmanager. The meta leader is SIGKILLed twice: while the alert is
//! pending (the new leader must continue the `for` timer, not restart it)
//! and while it fires (Alertmanager must keep it active with the same
//! `startsAt`: no resolve/re-fire gap). Then the data recovers and the alert
//! resolves.
//!
//! Needs `prometheus-alertmanager` on PATH (scripts/install-deps.sh installs
//! it); the test fails with that message when it is missing.

use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::Value;
use tests::{free_port, now_ms, series, Client, Cluster};

const FOR_S: i64 = 30;

struct Alertmanager(Child);

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn start_alertmanager(dir: &std::path::Path, port: u16) -> Alertmanager {
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: 'null'\n  group_wait: 1s\nreceivers:\n  - name: 'null'\n",
    )
    .expect("write alertmanager config");
    let log = std::fs::File::create(dir.join("alertmanager.log")).expect("log file");
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--storage.path={}", dir.join("am-data").display()))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        // No HA gossip: it would listen on 0.0.0.0:9094.
        .arg("--cluster.listen-address=")
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start prometheus-alertmanager ({e}); install it with \
                 `apt-get install prometheus-alertmanager` (scripts/install-deps.sh does)"
            )
        });
    Alertmanager(child)
}

/// Alertmanager's active `DemoHigh` alert, if any.
async fn am_alert(am: &Client) -> Option<Value> {
    let (st, v) = am.get("/api/v2/alerts", &[]).await.ok()?;
    if st != 200 {
        return None;
    }
    v.as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == "DemoHigh")
        .cloned()
}

/// The state of `DemoHigh` in a node's `/api/v1/alerts`.
async fn node_alert(c: &Client) -> Option<Value> {
    let (_, v) = c.get("/api/v1/alerts", &[]).await.ok()?;
    v["data"]["alerts"]
        .as_array()?
        .iter()
        .find(|a| a["labels"]["alertname"] == "DemoHigh")
        .cloned()
}

async fn meta_leader(c: &Client) -> Option<u64> {
    let (_, v) = c.get("/api/v1/status/cluster", &[]).await.ok()?;
    v["data"]["meta_leader"].as_u64()
}

/// Polls `f` every 200 ms until it returns `Some`, at most `secs`.
async fn wait_for<T, F, Fut>(secs: u64, what: &str, mut f: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        if let Some(v) = f().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alert_survives_leader_failover_at_alertmanager() {
    let dir = tempfile::tempdir().expect("tempdir");
    let am_port = free_port().expect("port");
    let _am = start_alertmanager(dir.path(), am_port);
    let am = Client::new(&format!("http://127.0.0.1:{am_port}"));

    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        format!(
            "groups:\n  - name: demo\n    interval: 1s\n    rules:\n      \
             - record: job:demo_value:max\n        expr: max by (job) (demo_value)\n      \
             - alert: DemoHigh\n        expr: job:demo_value:max > 10\n        for: {FOR_S}s\n        \
             labels:\n          severity: page\n        \
             annotations:\n          summary: \"{{{{ $labels.job }}}} value is {{{{ $value }}}}\"\n"
        ),
    )
    .expect("write rules");
    let am_url = format!("http://127.0.0.1:{am_port}");
    let mut cluster = Cluster::start(
        3,
        4,
        3,
        &[
            "--rule-file",
            rules.to_str().expect("utf-8 path"),
            "--alertmanager-url",
            &am_url,
        ],
    )
    .await
    .expect("cluster");
    let clients: Vec<Client> = cluster.nodes.iter().map(|n| n.client()).collect();

    // Data: demo_value{job="x"} = `value`, written every 500 ms to a live node.
    let value = Arc::new(AtomicU64::new(42));
    let live = Arc::new(Mutex::new(vec![true; 3]));
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let (clients, value, live, stop) =
            (clients.clone(), value.clone(), live.clone(), stop.clone());
        tokio::spawn(async move {
            let mut i = 0usize;
            while !stop.load(Ordering::Relaxed) {
                let v = value.load(Ordering::Relaxed) as f64;
                let target = {
                    let l = live.lock();
                    (0..3).cycle().skip(i).take(3).find(|k| l[*k])
                };
                i += 1;
                if let Some(k) = target {
                    let _ = clients[k]
                        .write(&[series("demo_value", &[("job", "x")], &[(now_ms(), v)])])
                        .await;
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        })
    };

    // Pending: the alert appears on the nodes.
    let pending = wait_for(30, "the alert to be pending", || async {
        node_alert(&clients[0])
            .await
            .filter(|a| a["state"] == "pending")
    })
    .await;
    let active_at = pending["activeAt"].as_str().expect("activeAt").to_string();

    // Kill the meta leader while the alert is pending; restart it later.
    let l1 = wait_for(10, "a meta leader", || meta_leader(&clients[0])).await;
    let i1 = (l1 - 1) as usize;
    live.lock()[i1] = false;
    cluster.nodes[i1].kill();
    let other = &clients[(i1 + 1) % 3];
    // The new leader continues the timer: same activeAt, still pending.
    let after = wait_for(30, "a new meta leader", || async {
        meta_leader(other).await.filter(|l| *l != l1)?;
        node_alert(other).await
    })
    .await;
    assert_eq!(
        after["activeAt"],
        active_at.as_str(),
        "the for timer restarted: {after}"
    );
    cluster.nodes[i1]
        .restart()
        .await
        .expect("restart the killed node");
    live.lock()[i1] = true;

    // Firing FOR_S after activeAt (not after the failover), and received
    // by Alertmanager with the templated annotation.
    let fired = wait_for(
        FOR_S as u64 + 30,
        "Alertmanager to receive the alert",
        || am_alert(&am),
    )
    .await;
    println!("Alertmanager received: {fired}");
    assert_eq!(fired["annotations"]["summary"], "x value is 42");
    assert_eq!(fired["labels"]["severity"], "page");
    assert_eq!(fired["labels"]["job"], "x");
    let starts_at = fired["startsAt"].as_str().expect("startsAt").to_string();
    // Followers show the replicated state, refreshed every group interval.
    let firing = wait_for(5, "the node to show the alert firing", || async {
        node_alert(other).await.filter(|a| a["state"] == "firing")
    })
    .await;
    assert_eq!(firing["activeAt"], active_at.as_str());
    let q = other
        .query(
            "ALERTS{alertname=\"DemoHigh\",alertstate=\"firing\"}",
            now_ms() as f64 / 1000.0,
        )
        .await
        .expect("query ALERTS");
    assert_eq!(q["data"]["result"][0]["value"][1], "1", "{q}");

    // Kill the meta leader while the alert fires.
    let l2 = wait_for(10, "a meta leader", || meta_leader(other)).await;
    let i2 = (l2 - 1) as usize;
    live.lock()[i2] = false;
    cluster.nodes[i2].kill();
    // Alertmanager keeps the alert active, with the same startsAt, through
    // the election; once the new leader has evaluated (followers' views may
    // lag by a heartbeat and an election), it shows the alert firing: it
    // continued from the replicated state instead of starting over.
    let survivors: Vec<Client> = (0..3)
        .filter(|k| *k != i2)
        .map(|k| clients[k].clone())
        .collect();
    let mut new_leader: Option<(Client, Instant)> = None;
    let watch_until = Instant::now() + Duration::from_secs(12);
    while Instant::now() < watch_until {
        if new_leader.is_none() {
            for c in &survivors {
                if let Some(l) = meta_leader(c).await.filter(|l| *l != l2) {
                    new_leader = Some((clients[(l - 1) as usize].clone(), Instant::now()));
                    break;
                }
            }
        }
        if let Some((c, since)) = &new_leader {
            if since.elapsed() > Duration::from_secs(2) {
                let a = node_alert(c).await.expect("the new leader lost the alert");
                assert_eq!(a["state"], "firing", "new leader {}: {a}", c.base());
                assert_eq!(
                    a["activeAt"],
                    active_at.as_str(),
                    "new leader {}: {a}",
                    c.base()
                );
            }
        }
        let a = am_alert(&am)
            .await
            .expect("Alertmanager lost the alert during failover");
        assert_eq!(a["startsAt"], starts_at.as_str(), "alert re-fired: {a}");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    assert!(
        new_leader.is_some(),
        "no new meta leader after killing node {l2}"
    );
    cluster.nodes[i2]
        .restart()
        .await
        .expect("restart the second killed node");
    live.lock()[i2] = true;

    // Recovery: the alert resolves at Alertmanager.
    value.store(1, Ordering::Relaxed);
    wait_for(30, "the alert to resolve at Alertmanager", || async {
        am_alert(&am).await.is_none().then_some(())
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    writer.await.expect("writer");
}
