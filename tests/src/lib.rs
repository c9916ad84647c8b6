//! Helpers for Silverback's integration tests: start real `silverback`
//! processes on loopback, send remote writes, query the HTTP API.
//!
//! ```no_run
//! # async fn demo() -> anyhow::Result<()> {
//! use tests::{Silverback, Options, series};
//!
//! let node = Silverback::start(Options::default()).await?; // waits for /-/ready
//! let c = node.client();
//! let status = c.write(&[series("up", &[("job", "a")], &[(1_000, 1.0)])]).await?;
//! assert_eq!(status.0, 204);
//! let v = c.query("up", 1.0).await?; // the whole JSON body
//! assert_eq!(v["data"]["result"][0]["value"][1], "1");
//! // Dropping `node` kills the process by PID (SIGKILL); `stop()` sends
//! // SIGTERM and waits for a clean exit.
//! # Ok(()) }
//! ```
//!
//! A multi-node cluster: [`Cluster::start`] (`n` nodes, each with `--peers`
//! naming all of them). Every process gets free ports, its own temporary
//! data dir (kept across [`Silverback::restart`]) and a log file whose tail
//! is printed when a start fails ([`Silverback::log_tail`]).

use std::collections::HashSet;
use std::net::{SocketAddr, TcpListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use prost::Message;
use proto::prometheus::{Label, Sample, TimeSeries, WriteRequest};
use rand::Rng;

pub mod checker;
pub mod load;

/// The `silverback` binary next to the test executable
/// (`target/<profile>/silverback`; tests run from `target/<profile>/deps/`).
///
/// Cargo builds a package's binaries for its own integration tests only, and
/// `silverback` lives in `server`; so under `cargo test` the first call
/// builds it (`cargo build --workspace --bins`, a no-op when it is fresh),
/// which guarantees the tests never run a stale binary.
pub fn binary_path() -> Result<PathBuf> {
    static BUILT: std::sync::OnceLock<std::result::Result<(), String>> = std::sync::OnceLock::new();
    let exe = std::env::current_exe().context("cannot find the test executable")?;
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .ok_or_else(|| anyhow!("test executable {} has no grandparent dir", exe.display()))?;
    if let Ok(cargo) = std::env::var("CARGO") {
        let release = dir.file_name().is_some_and(|n| n == "release");
        BUILT
            .get_or_init(|| build_binary(&cargo, release))
            .clone()
            .map_err(|e| anyhow!(e))?;
    }
    let bin = dir.join("silverback");
    if !bin.exists() {
        bail!(
            "the silverback binary is missing at {}; build it first with `cargo build -p server`",
            bin.display()
        );
    }
    Ok(bin)
}

fn build_binary(cargo: &str, release: bool) -> std::result::Result<(), String> {
    let mut cmd = Command::new(cargo);
    cmd.args(["build", "--workspace", "--bins", "--quiet"]);
    // The variables cargo sets for a test process are not set for the
    // `cargo test` that started it; build scripts that watch one (ring's
    // watches CARGO_MANIFEST_DIR) would otherwise rebuild, and everything
    // above them (rustls, tonic, every workspace crate), on each switch
    // between `cargo test` and this build.
    for (k, _) in std::env::vars_os() {
        let k = k.to_string_lossy();
        let set_for_tests = [
            "CARGO_MANIFEST_DIR",
            "CARGO_MANIFEST_PATH",
            "CARGO_CRATE_NAME",
            "CARGO_PRIMARY_PACKAGE",
            "CARGO_TARGET_TMPDIR",
            "CARGO_RUSTC_CURRENT_DIR",
        ]
        .contains(&k.as_ref())
            || k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_BIN_EXE_");
        if set_for_tests {
            cmd.env_remove(k.as_ref());
        }
    }
    if release {
        cmd.arg("--release");
    }
    let out = cmd
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {cargo} build: {e}"))?;
    if !out.status.success() {
        return Err(format!(
            "cannot build the silverback binary: {}",
            String::from_utf8_lossy(&out.stderr)
        ));
    }
    Ok(())
}

/// Wall-clock time in Unix milliseconds (the sample timestamps the tests
/// write and query around).
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

/// A free TCP port on 127.0.0.1 (bound, then released), for a server a
/// test starts a moment later.
///
/// It comes from below the kernel's ephemeral range
/// (`/proc/sys/net/ipv4/ip_local_port_range`, 32768-60999 by default): a
/// port from `bind(":0")` is an ephemeral one, and in the moment before the
/// server binds it, an outgoing connection (the nodes already started
/// dialling their peers) could take it as its source port, and the server
/// would fail to start. No port is handed out twice in one test process.
pub fn free_port() -> Result<u16> {
    static TAKEN: Mutex<Option<HashSet<u16>>> = Mutex::new(None);
    let (low, _) = ephemeral_range();
    let (first, last) = (10_000u16, low.saturating_sub(1).max(10_001));
    let mut taken = TAKEN
        .lock()
        .map_err(|_| anyhow!("port registry poisoned"))?;
    let taken = taken.get_or_insert_with(HashSet::new);
    let mut rng = rand::thread_rng();
    for _ in 0..1000 {
        let port = rng.gen_range(first..=last);
        if taken.contains(&port) {
            continue;
        }
        if let Ok(l) = TcpListener::bind(("127.0.0.1", port)) {
            drop(l);
            taken.insert(port);
            return Ok(port);
        }
    }
    bail!("no free port in {first}..={last} after 1000 tries")
}

/// The kernel's ephemeral port range (the Linux default if unknown).
fn ephemeral_range() -> (u16, u16) {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|s| {
            let mut it = s.split_whitespace().map(|w| w.parse::<u16>().ok());
            Some((it.next()??, it.next()??))
        })
        .unwrap_or((32_768, 60_999))
}

/// How to start one node. `Options::default()` is a single-node cluster with
/// self-scrape off, 4 shards, free ports and a fresh temporary data dir.
#[derive(Clone, Debug)]
pub struct Options {
    /// `--node-id`.
    pub node_id: u64,
    /// HTTP port (0: pick a free one).
    pub http_port: u16,
    /// gRPC port (0: pick a free one).
    pub grpc_port: u16,
    /// `--peers` as (id, grpc address); empty for a single node.
    pub peers: Vec<(u64, SocketAddr)>,
    /// `--join` address.
    pub join: Option<SocketAddr>,
    /// `--shards`.
    pub shards: u32,
    /// `--replication-factor`.
    pub replication_factor: u32,
    /// Further flags, appended as given (e.g. `["--max-body-bytes", "1000"]`).
    pub extra_args: Vec<String>,
    /// How long to wait for `/-/ready`.
    pub ready_timeout: Duration,
    /// Wait for `/-/ready` in [`Silverback::start`].
    pub wait_ready: bool,
    /// A command the binary runs under, with its arguments (e.g.
    /// `["fiu-run", "-x"]` to inject faults); empty: run it directly.
    pub wrapper: Vec<String>,
    /// The cluster secret, written to a file given as
    /// `--cluster-secret-file` (None: no secret).
    pub cluster_secret: Option<String>,
    /// A directory made by [`make_cluster_certs`]: the node runs mutual TLS
    /// on its cluster port with `node-<id>.crt`/`.key` and `ca.crt` from it
    /// (None: plain TCP).
    pub grpc_tls: Option<PathBuf>,
    /// `--data-dir` (None: `data` in the node's temporary dir). A test that
    /// gives one keeps it alive for as long as the node.
    pub data_dir: Option<PathBuf>,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            node_id: 1,
            http_port: 0,
            grpc_port: 0,
            peers: Vec::new(),
            join: None,
            shards: 4,
            replication_factor: 3,
            extra_args: vec!["--self-scrape-interval".into(), "0".into()],
            ready_timeout: Duration::from_secs(60),
            wait_ready: true,
            wrapper: Vec::new(),
            cluster_secret: None,
            grpc_tls: None,
            data_dir: None,
        }
    }
}

/// A running `silverback` process (killed by PID on drop).
pub struct Silverback {
    /// HTTP address.
    pub http: SocketAddr,
    /// gRPC address.
    pub grpc: SocketAddr,
    /// Node id.
    pub node_id: u64,
    opts: Options,
    child: Option<Child>,
    dir: tempfile::TempDir,
}

impl Silverback {
    /// Starts a node and (unless `opts.wait_ready` is false) waits until
    /// `/-/ready` answers 200.
    pub async fn start(mut opts: Options) -> Result<Silverback> {
        if opts.http_port == 0 {
            opts.http_port = free_port()?;
        }
        if opts.grpc_port == 0 {
            opts.grpc_port = free_port()?;
        }
        let dir = tempfile::Builder::new()
            .prefix("silverback-test-")
            .tempdir()
            .context("cannot create a temp dir")?;
        let mut s = Silverback {
            http: SocketAddr::from(([127, 0, 0, 1], opts.http_port)),
            grpc: SocketAddr::from(([127, 0, 0, 1], opts.grpc_port)),
            node_id: opts.node_id,
            opts,
            child: None,
            dir,
        };
        s.spawn()?;
        if s.opts.wait_ready {
            s.wait_ready().await?;
        }
        Ok(s)
    }

    /// The data directory ([`Options::data_dir`], else inside the temp dir;
    /// kept across restarts).
    pub fn data_dir(&self) -> PathBuf {
        match &self.opts.data_dir {
            Some(d) => d.clone(),
            None => self.dir.path().join("data"),
        }
    }

    /// The file the process logs to.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("silverback.log")
    }

    /// The last `n` lines of the log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    /// The file holding the cluster secret (when the node has one).
    pub fn secret_path(&self) -> PathBuf {
        self.dir.path().join("cluster-secret")
    }

    /// The command-line arguments this node is started with (an
    /// `--grpc-listen` in `extra_args` replaces the loopback one).
    pub fn args(&self) -> Vec<String> {
        let o = &self.opts;
        let mut a = vec![
            "--node-id".to_string(),
            o.node_id.to_string(),
            "--http-listen".into(),
            self.http.to_string(),
        ];
        if !o.extra_args.iter().any(|x| x == "--grpc-listen") {
            a.extend(["--grpc-listen".into(), self.grpc.to_string()]);
        }
        if o.cluster_secret.is_some() {
            a.push("--cluster-secret-file".into());
            a.push(self.secret_path().display().to_string());
        }
        if let Some(d) = &o.grpc_tls {
            let f = |name: String| d.join(name).display().to_string();
            a.extend([
                "--grpc-tls-cert-file".into(),
                f(format!("node-{}.crt", o.node_id)),
                "--grpc-tls-key-file".into(),
                f(format!("node-{}.key", o.node_id)),
                "--grpc-tls-ca-file".into(),
                f("ca.crt".into()),
            ]);
        }
        a.extend([
            "--data-dir".into(),
            self.data_dir().display().to_string(),
            "--shards".into(),
            o.shards.to_string(),
            "--replication-factor".into(),
            o.replication_factor.to_string(),
        ]);
        if !o.peers.is_empty() {
            let peers: Vec<String> = o.peers.iter().map(|(id, a)| format!("{id}={a}")).collect();
            a.push("--peers".into());
            a.push(peers.join(","));
        }
        if let Some(j) = o.join {
            a.push("--join".into());
            a.push(j.to_string());
        }
        a.extend(o.extra_args.iter().cloned());
        a
    }

    fn spawn(&mut self) -> Result<()> {
        if let Some(secret) = &self.opts.cluster_secret {
            std::fs::write(self.secret_path(), format!("{secret}\n"))
                .context("cannot write the cluster secret file")?;
        }
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("cannot open the node's log file")?;
        let mut cmd = match self.opts.wrapper.split_first() {
            Some((prog, args)) => {
                let mut c = Command::new(prog);
                c.args(args).arg(binary_path()?);
                c
            }
            None => Command::new(binary_path()?),
        };
        let child = cmd
            .args(self.args())
            .env(
                "RUST_LOG",
                std::env::var("SILVERBACK_TEST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot spawn silverback")?;
        self.child = Some(child);
        Ok(())
    }

    /// The process id, while running.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }

    /// Base URL, e.g. `http://127.0.0.1:40123`.
    pub fn url(&self) -> String {
        format!("http://{}", self.http)
    }

    /// An API client for this node.
    pub fn client(&self) -> Client {
        Client::new(&self.url())
    }

    /// Sets the command the binary runs under from the next (re)start on
    /// (see [`Options::wrapper`]).
    pub fn set_wrapper(&mut self, wrapper: Vec<String>) {
        self.opts.wrapper = wrapper;
    }

    /// If the process has exited: its status and the end of its log.
    pub fn exit_report(&mut self) -> Option<String> {
        let status = self.child.as_mut()?.try_wait().ok()??;
        self.child = None;
        Some(format!(
            "silverback node {} exited with {status}; log:\n{}",
            self.node_id,
            self.log_tail(20)
        ))
    }

    /// Waits until `/-/ready` answers 200 (fails early if the process exits).
    pub async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + self.opts.ready_timeout;
        let c = reqwest::Client::new();
        loop {
            if let Some(child) = self.child.as_mut() {
                if let Some(status) = child.try_wait()? {
                    self.child = None;
                    bail!(
                        "silverback node {} exited with {status} before becoming ready; log:\n{}",
                        self.node_id,
                        self.log_tail(40)
                    );
                }
            }
            if let Ok(r) = c.get(format!("{}/-/ready", self.url())).send().await {
                if r.status().as_u16() == 200 {
                    return Ok(());
                }
            }
            if Instant::now() > deadline {
                bail!(
                    "silverback node {} not ready after {:?}; log:\n{}",
                    self.node_id,
                    self.opts.ready_timeout,
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Sends SIGTERM and waits for the process to exit (at most `timeout`;
    /// then SIGKILL and an error).
    pub async fn stop_within(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let Some(mut child) = self.child.take() else {
            bail!("node {} is not running", self.node_id)
        };
        let pid = child.id().to_string();
        Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .context("cannot run kill")?;
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(st) = child.try_wait()? {
                return Ok(st);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                bail!(
                    "node {} did not exit within {timeout:?} of SIGTERM; log:\n{}",
                    self.node_id,
                    self.log_tail(40)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// [`Silverback::stop_within`] 60 s.
    pub async fn stop(&mut self) -> Result<ExitStatus> {
        self.stop_within(Duration::from_secs(60)).await
    }

    /// Kills the process with SIGKILL (no checkpoint) and reaps it.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Starts the process again with the same ports, flags and data dir
    /// (after [`Silverback::stop`] or [`Silverback::kill`]), and waits for
    /// ready.
    pub async fn restart(&mut self) -> Result<()> {
        self.respawn()?;
        self.wait_ready().await
    }

    /// Starts the process again like [`Silverback::restart`] but returns at
    /// once: nodes of a cluster that were all killed become ready only
    /// together (each group needs a quorum).
    pub fn respawn(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!(
                "node {} is still running; stop or kill it first",
                self.node_id
            );
        }
        self.spawn()
    }
}

impl Drop for Silverback {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A cluster of nodes on loopback, each started with `--peers` naming all.
pub struct Cluster {
    /// The nodes, node id `i + 1` at index `i`.
    pub nodes: Vec<Silverback>,
}

impl Cluster {
    /// Starts `n` nodes with `shards` shards and replication factor `rf`, and
    /// waits until every node is ready. `extra_args` go to every node.
    pub async fn start(n: usize, shards: u32, rf: u32, extra_args: &[&str]) -> Result<Cluster> {
        Self::start_with(n, shards, rf, extra_args, None).await
    }

    /// [`Cluster::start`] with every node given `secret` as its
    /// `--cluster-secret-file` (None: no secret).
    pub async fn start_with(
        n: usize,
        shards: u32,
        rf: u32,
        extra_args: &[&str],
        secret: Option<&str>,
    ) -> Result<Cluster> {
        Self::start_secured(n, shards, rf, extra_args, secret, None).await
    }

    /// [`Cluster::start_with`], and with mutual TLS on the cluster port
    /// when `tls` names a directory made by [`make_cluster_certs`] (with
    /// certificates for nodes `1..=n`).
    pub async fn start_secured(
        n: usize,
        shards: u32,
        rf: u32,
        extra_args: &[&str],
        secret: Option<&str>,
        tls: Option<&Path>,
    ) -> Result<Cluster> {
        let mut ports = Vec::new();
        for i in 0..n {
            ports.push((i as u64 + 1, free_port()?, free_port()?));
        }
        let peers: Vec<(u64, SocketAddr)> = ports
            .iter()
            .map(|(id, _, g)| (*id, SocketAddr::from(([127, 0, 0, 1], *g))))
            .collect();
        let mut nodes = Vec::new();
        for (id, h, g) in &ports {
            let mut extra: Vec<String> = Options::default().extra_args;
            extra.extend(extra_args.iter().map(|s| s.to_string()));
            nodes.push(
                Silverback::start(Options {
                    node_id: *id,
                    http_port: *h,
                    grpc_port: *g,
                    peers: peers.clone(),
                    shards,
                    replication_factor: rf,
                    extra_args: extra,
                    wait_ready: false,
                    cluster_secret: secret.map(str::to_string),
                    grpc_tls: tls.map(Path::to_path_buf),
                    ..Options::default()
                })
                .await?,
            );
        }
        for i in 0..nodes.len() {
            if let Err(e) = nodes[i].wait_ready().await {
                // A node waits for its peers, so the cause may be another
                // node that did not start.
                let others: Vec<String> =
                    nodes.iter_mut().filter_map(|n| n.exit_report()).collect();
                bail!("{e:#}\n{}", others.join("\n"));
            }
        }
        Ok(Cluster { nodes })
    }
}

/// Makes a cluster CA and certificates for `nodes` in `dir` with
/// `scripts/make-cluster-certs.sh` (the script operators use):
/// `ca.crt`, `node-<id>.crt`/`.key`, `operator.crt`/`.key`.
pub fn make_cluster_certs(dir: &Path, nodes: &[u64]) -> Result<()> {
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/make-cluster-certs.sh");
    let out = Command::new("sh")
        .arg(&script)
        .arg(dir)
        .args(nodes.iter().map(u64::to_string))
        .output()
        .with_context(|| format!("cannot run {}", script.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed ({}): {}",
            script.display(),
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Builds a remote-write series from a metric name, extra labels and
/// `(timestamp_ms, value)` samples.
pub fn series(name: &str, labels: &[(&str, &str)], samples: &[(i64, f64)]) -> TimeSeries {
    let mut l = vec![Label {
        name: "__name__".into(),
        value: name.into(),
    }];
    l.extend(labels.iter().map(|(n, v)| Label {
        name: n.to_string(),
        value: v.to_string(),
    }));
    l.sort_by(|a, b| a.name.cmp(&b.name));
    TimeSeries {
        labels: l,
        samples: samples
            .iter()
            .map(|(t, v)| Sample {
                timestamp: *t,
                value: *v,
            })
            .collect(),
        ..Default::default()
    }
}

/// The snappy-compressed protobuf body of a remote write request.
pub fn encode_write(req: &WriteRequest) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(&req.encode_to_vec())
        .unwrap_or_default()
}

/// A small HTTP client for one node's API.
#[derive(Clone)]
pub struct Client {
    base: String,
    http: reqwest::Client,
}

impl Client {
    /// A client for `base` (e.g. `http://127.0.0.1:9201`).
    pub fn new(base: &str) -> Client {
        Client {
            base: base.trim_end_matches('/').to_string(),
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(60))
                .build()
                .unwrap_or_default(),
        }
    }

    /// The base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// Remote-writes `series`; returns (status, body text).
    pub async fn write(&self, series: &[TimeSeries]) -> Result<(u16, String)> {
        let req = WriteRequest {
            timeseries: series.to_vec(),
            metadata: vec![],
        };
        self.write_raw(encode_write(&req)).await
    }

    /// POSTs a raw body to `/api/v1/write` with remote-write headers.
    pub async fn write_raw(&self, body: Vec<u8>) -> Result<(u16, String)> {
        let r = self
            .http
            .post(format!("{}/api/v1/write", self.base))
            .header("Content-Type", "application/x-protobuf")
            .header("Content-Encoding", "snappy")
            .header("X-Prometheus-Remote-Write-Version", "0.1.0")
            .body(body)
            .send()
            .await?;
        Ok((r.status().as_u16(), r.text().await?))
    }

    /// GET `path` with query parameters; returns (status, JSON body; `Null`
    /// when the body is not JSON).
    pub async fn get(
        &self,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<(u16, serde_json::Value)> {
        json_answer(self.http.get(format!("{}{path}", self.base)).query(params)).await
    }

    /// GET `path`; returns (status, body text).
    pub async fn get_text(&self, path: &str) -> Result<(u16, String)> {
        let r = self.http.get(format!("{}{path}", self.base)).send().await?;
        Ok((r.status().as_u16(), r.text().await?))
    }

    /// POST `path` with the parameters in the URL and no body (as admin
    /// endpoints take them); returns (status, JSON body; `Null` when not
    /// JSON).
    pub async fn post(
        &self,
        path: &str,
        params: &[(&str, &str)],
    ) -> Result<(u16, serde_json::Value)> {
        json_answer(self.http.post(format!("{}{path}", self.base)).query(params)).await
    }

    /// POST `path` with a form-encoded body; returns (status, JSON body).
    pub async fn post_form(
        &self,
        path: &str,
        form: &[(&str, &str)],
    ) -> Result<(u16, serde_json::Value)> {
        let body = form
            .iter()
            .map(|(k, v)| format!("{}={}", urlencode(k), urlencode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let r = self
            .http
            .post(format!("{}{path}", self.base))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await?;
        let st = r.status().as_u16();
        let text = r.text().await?;
        Ok((
            st,
            serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
        ))
    }

    /// An instant query at `t` (unix seconds); fails unless status 200.
    pub async fn query(&self, q: &str, t: f64) -> Result<serde_json::Value> {
        let t = t.to_string();
        let (st, v) = self
            .get("/api/v1/query", &[("query", q), ("time", &t)])
            .await?;
        if st != 200 {
            bail!("query {q:?} answered {st}: {v}");
        }
        Ok(v)
    }

    /// A range query; fails unless status 200.
    pub async fn query_range(
        &self,
        q: &str,
        start: f64,
        end: f64,
        step: f64,
    ) -> Result<serde_json::Value> {
        let (s, e, st) = (start.to_string(), end.to_string(), step.to_string());
        let (code, v) = self
            .get(
                "/api/v1/query_range",
                &[("query", q), ("start", &s), ("end", &e), ("step", &st)],
            )
            .await?;
        if code != 200 {
            bail!("query_range {q:?} answered {code}: {v}");
        }
        Ok(v)
    }
}

/// Percent-encodes a form value.
pub fn urlencode(s: &str) -> String {
    let mut out = String::new();
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Sends `req`; returns (status, JSON body; `Null` when the body is not
/// JSON).
async fn json_answer(req: reqwest::RequestBuilder) -> Result<(u16, serde_json::Value)> {
    let r = req.send().await?;
    let st = r.status().as_u16();
    let text = r.text().await?;
    Ok((
        st,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    ))
}
