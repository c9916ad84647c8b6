//! Alerts reach an Alertmanager served over HTTPS, and one Alertmanager
//! that never answers does not delay the others (issue 14): a node is given
//! a black hole (a socket that accepts and never answers) first and Debian's
//! real Alertmanager behind TLS (`--web.config.file`) second; the alert
//! must arrive at the live one within the usual few seconds, far below the
//! ~30 s the black hole takes to give up on a batch.
//!
//! Needs `prometheus-alertmanager` and `openssl` on PATH
//! (scripts/install-deps.sh installs them).

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use tests::{free_port, Options, Silverback};

struct Alertmanager(Child);

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .expect("openssl is needed (apt-get install openssl)");
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A test CA (`ca.crt`) and Alertmanager's certificate for 127.0.0.1
/// signed by it (`am.crt`, `am.key`): rustls, unlike curl, refuses a
/// self-signed CA certificate as a server's own.
fn openssl_certs(dir: &Path) {
    let ec = [
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:prime256v1",
        "-nodes",
    ];
    let mut ca = vec![
        "req",
        "-x509",
        "-days",
        "2",
        "-subj",
        "/CN=silverback-test-ca",
    ];
    ca.extend(ec);
    ca.extend(["-keyout", "ca.key", "-out", "ca.crt"]);
    openssl(dir, &ca);
    let mut csr = vec!["req", "-subj", "/CN=localhost"];
    csr.extend(ec);
    csr.extend(["-keyout", "am.key", "-out", "am.csr"]);
    openssl(dir, &csr);
    std::fs::write(
        dir.join("ext.cnf"),
        "subjectAltName=IP:127.0.0.1\nbasicConstraints=critical,CA:FALSE\n",
    )
    .expect("write ext.cnf");
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "am.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-set_serial",
            "2",
            "-days",
            "2",
            "-extfile",
            "ext.cnf",
            "-out",
            "am.crt",
        ],
    );
}

fn start_tls_alertmanager(dir: &Path, port: u16) -> Alertmanager {
    let cfg = dir.join("alertmanager.yml");
    std::fs::write(
        &cfg,
        "route:\n  receiver: 'null'\n  group_wait: 1s\nreceivers:\n  - name: 'null'\n",
    )
    .expect("write alertmanager config");
    let web = dir.join("web.yml");
    std::fs::write(
        &web,
        format!(
            "tls_server_config:\n  cert_file: {}\n  key_file: {}\n",
            dir.join("am.crt").display(),
            dir.join("am.key").display()
        ),
    )
    .expect("write web config");
    let log = std::fs::File::create(dir.join("alertmanager.log")).expect("log file");
    let child = Command::new("prometheus-alertmanager")
        .arg(format!("--config.file={}", cfg.display()))
        .arg(format!("--web.config.file={}", web.display()))
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

/// Whether Alertmanager holds the `Always` alert.
async fn am_has_alert(http: &reqwest::Client, url: &str) -> bool {
    let Ok(r) = http.get(format!("{url}/api/v2/alerts")).send().await else {
        return false;
    };
    let v: serde_json::Value = r.json().await.unwrap_or_default();
    v.as_array()
        .is_some_and(|a| a.iter().any(|x| x["labels"]["alertname"] == "Always"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alerts_reach_an_https_alertmanager_past_a_dead_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    openssl_certs(dir.path());
    let am_port = free_port().expect("port");
    let mut am = start_tls_alertmanager(dir.path(), am_port);
    let am_url = format!("https://127.0.0.1:{am_port}");
    let ca = std::fs::read(dir.path().join("ca.crt")).expect("ca");
    let http = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
        .timeout(Duration::from_secs(5))
        .build()
        .expect("client");
    // Alertmanager answers over TLS before the node starts.
    let deadline = Instant::now() + Duration::from_secs(20);
    while http
        .get(format!("{am_url}/-/ready"))
        .send()
        .await
        .map_or(true, |r| !r.status().is_success())
    {
        if let Ok(Some(st)) = am.0.try_wait() {
            panic!(
                "alertmanager exited with {st}: {}",
                std::fs::read_to_string(dir.path().join("alertmanager.log")).unwrap_or_default()
            );
        }
        assert!(Instant::now() < deadline, "alertmanager not ready over TLS");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // The black hole: accepts connections and never answers.
    let hole = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let hole_url = format!("http://{}", hole.local_addr().expect("addr"));
    let holder = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = hole.accept().await {
            held.push(s);
        }
    });

    let rules = dir.path().join("rules.yml");
    std::fs::write(
        &rules,
        "groups:\n  - name: g\n    interval: 1s\n    rules:\n      \
         - alert: Always\n        expr: vector(1)\n",
    )
    .expect("write rules");
    let mut o = Options::default();
    o.extra_args.extend(
        [
            "--rule-file",
            rules.to_str().expect("utf-8 path"),
            "--alertmanager-url",
            &hole_url,
            "--alertmanager-url",
            &am_url,
            "--alertmanager-ca-file",
            dir.path().join("ca.crt").to_str().expect("utf-8 path"),
        ]
        .iter()
        .map(|s| s.to_string()),
    );
    let node = Silverback::start(o).await.expect("node");
    let t0 = Instant::now();
    while !am_has_alert(&http, &am_url).await {
        assert!(
            t0.elapsed() < Duration::from_secs(15),
            "the alert did not reach the HTTPS Alertmanager within 15 s; node log:\n{}",
            node.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "alert at the HTTPS Alertmanager {:?} after ready",
        t0.elapsed()
    );
    holder.abort();
}
