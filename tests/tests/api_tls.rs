//! TLS on the HTTP API (issue 5): with `--tls-cert-file`/`--tls-key-file`
//! the API answers over HTTPS (checked with curl against the certificate),
//! remote write works over it, and plain HTTP gets no answer; a key that
//! does not match the certificate stops the start with a message naming it.
//!
//! Needs `openssl` and `curl` (scripts/install-deps.sh installs them).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use tests::{encode_write, series, Options, Silverback};

fn openssl_cert(dir: &Path, name: &str) {
    let st = Command::new("openssl")
        .args([
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
        ])
        .args(["-nodes", "-days", "2", "-subj", "/CN=localhost"])
        .args(["-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.crt")))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .expect("openssl is needed (apt-get install openssl)");
    assert!(st.success(), "openssl req failed");
}

/// `curl` over HTTPS trusting `ca`; returns (HTTP status, body).
fn curl(ca: &Path, args: &[&str]) -> Option<(u16, String)> {
    let out = Command::new("curl")
        .args(["-sS", "--max-time", "5", "-w", "\n%{http_code}", "--cacert"])
        .arg(ca)
        .args(args)
        .output()
        .expect("curl is needed (apt-get install curl)");
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let (body, code) = text.rsplit_once('\n')?;
    Some((code.trim().parse().ok()?, body.to_string()))
}

#[tokio::test]
async fn https_api_and_remote_write() {
    let dir = tempfile::tempdir().expect("tempdir");
    openssl_cert(dir.path(), "a");
    let (crt, key) = (dir.path().join("a.crt"), dir.path().join("a.key"));
    let mut o = Options {
        wait_ready: false,
        ..Options::default()
    };
    o.extra_args.extend([
        "--tls-cert-file".into(),
        crt.display().to_string(),
        "--tls-key-file".into(),
        key.display().to_string(),
    ]);
    let node = Silverback::start(o).await.expect("start");
    let https = format!("https://{}", node.http);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some((200, _)) = curl(&crt, &[&format!("{https}/-/ready")]) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not ready over HTTPS:\n{}",
            node.log_tail(30)
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Remote write over HTTPS.
    let now = tests::now_ms();
    let body = encode_write(&proto::prometheus::WriteRequest {
        timeseries: vec![series("tls_probe", &[("job", "t")], &[(now, 7.0)])],
        metadata: vec![],
    });
    let body_path = dir.path().join("body");
    std::fs::write(&body_path, body).expect("write body");
    let (st, text) = curl(
        &crt,
        &[
            "-X",
            "POST",
            "-H",
            "Content-Encoding: snappy",
            "-H",
            "Content-Type: application/x-protobuf",
            "-H",
            "X-Prometheus-Remote-Write-Version: 0.1.0",
            "--data-binary",
            &format!("@{}", body_path.display()),
            &format!("{https}/api/v1/write"),
        ],
    )
    .expect("remote write over HTTPS");
    assert_eq!(st, 204, "{text}");
    let (st, text) =
        curl(&crt, &[&format!("{https}/api/v1/query?query=tls_probe")]).expect("query");
    assert_eq!(st, 200, "{text}");
    assert!(text.contains("\"7\""), "{text}");
    // Plain HTTP on the TLS port gets no HTTP answer.
    let plain = Command::new("curl")
        .args([
            "-sS",
            "--max-time",
            "3",
            &format!("http://{}/-/ready", node.http),
        ])
        .output()
        .expect("curl");
    assert!(!plain.status.success() || plain.stdout.is_empty());
}

#[test]
fn mismatched_key_stops_the_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    openssl_cert(dir.path(), "a");
    openssl_cert(dir.path(), "b");
    let out = Command::new(tests::binary_path().expect("binary"))
        .args([
            "--http-listen",
            "127.0.0.1:0",
            "--grpc-listen",
            "127.0.0.1:0",
        ])
        .arg("--data-dir")
        .arg(dir.path().join("data"))
        .arg("--tls-cert-file")
        .arg(dir.path().join("a.crt"))
        .arg("--tls-key-file")
        .arg(dir.path().join("b.key"))
        .output()
        .expect("run silverback");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--tls-key-file"), "{err}");
}
