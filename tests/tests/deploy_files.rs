//! Checks the files in `deploy/`: every YAML parses, and every Silverback
//! command line and config they contain is accepted by `silverback
//! --check-config` (so they name only flags and keys that exist, with valid
//! values) (issue 5). The Kubernetes start script is run as each pod would
//! run it, a fourth pod (scale-out) included, and the user the systemd unit
//! runs as is created by the sysusers file beside it (issue 14).

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_yaml::Value;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../deploy")
}

fn yaml_docs(name: &str) -> Vec<Value> {
    let text =
        std::fs::read_to_string(deploy().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_yaml::Deserializer::from_str(&text)
        .map(|d| serde::Deserialize::deserialize(d).unwrap_or_else(|e| panic!("{name}: {e}")))
        .collect()
}

/// Where the examples keep the cluster secret.
const SECRET_PATHS: [&str; 2] = [
    "/etc/silverback/cluster-secret",
    "/etc/silverback-secret/cluster-secret",
];

/// Where the example config keeps the node's certificates for the cluster
/// port (compose and systemd install node N's files there).
const TLS_DIR: &str = "/etc/silverback/tls";
/// Where the Kubernetes pods find every node's certificates.
const K8S_TLS_DIR: &str = "/etc/silverback-tls";

/// The node id an example command line gives (`--node-id=N` or
/// `--node-id N`), else the example config's (1).
fn node_id(args: &[String]) -> u64 {
    args.iter()
        .enumerate()
        .find_map(|(i, a)| match a.strip_prefix("--node-id") {
            Some("") => args.get(i + 1).and_then(|v| v.parse().ok()),
            Some(v) => v.strip_prefix('=').and_then(|v| v.parse().ok()),
            None => None,
        })
        .unwrap_or(1)
}

/// Runs `silverback ARGS --check-config`, with the in-container config path
/// replaced by `config`, the cluster secret's path by a test secret, and
/// the certificates' paths by test certificates for the node.
fn check(what: &str, args: &[String], config: &Path) {
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("cluster-secret");
    std::fs::write(&secret, "0123456789abcdef\n").unwrap();
    let certs = dir.path().join("certs");
    let id = node_id(args);
    tests::make_cluster_certs(&certs, &[id]).unwrap();
    let mut text = std::fs::read_to_string(config).unwrap();
    for p in SECRET_PATHS {
        text = text.replace(p, &secret.display().to_string());
    }
    let c = certs.display();
    text = text
        .replace(&format!("{TLS_DIR}/node."), &format!("{c}/node-{id}."))
        .replace(TLS_DIR, &c.to_string());
    let config = dir.path().join("silverback.yml");
    std::fs::write(&config, text).unwrap();
    let args: Vec<String> = args
        .iter()
        .map(|a| {
            a.replace(
                "/etc/silverback/silverback.yml",
                &config.display().to_string(),
            )
        })
        .collect();
    let out = Command::new(tests::binary_path().unwrap())
        .args(&args)
        .arg("--check-config")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{what}: `silverback {}` rejected: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Replaces shell arithmetic `$(( ... ))` with `1`, then splits on
/// whitespace.
fn shell_words(s: &str) -> Vec<String> {
    let mut s = s.to_string();
    while let Some(i) = s.find("$((") {
        let Some(j) = s[i..].find("))") else { break };
        s.replace_range(i..i + j + 2, "1");
    }
    s.split_whitespace().map(String::from).collect()
}

fn after_binary(words: Vec<String>) -> Vec<String> {
    let pos = words
        .iter()
        .position(|w| w.ends_with("silverback"))
        .expect("command line runs silverback");
    words[pos + 1..].to_vec()
}

#[test]
fn example_config_is_valid() {
    check(
        "deploy/silverback.yml",
        &["--config".into(), "/etc/silverback/silverback.yml".into()],
        &deploy().join("silverback.yml"),
    );
}

#[test]
fn compose_commands_are_valid() {
    let doc = &yaml_docs("docker-compose.yml")[0];
    let services = doc["services"].as_mapping().unwrap();
    let mut nodes = 0;
    for (name, svc) in services {
        let name = name.as_str().unwrap();
        if !name.starts_with("silverback") {
            continue;
        }
        nodes += 1;
        let cmd: Vec<String> = svc["command"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect();
        check(name, &cmd, &deploy().join("silverback.yml"));
    }
    assert_eq!(nodes, 3, "three Silverback nodes");
    for s in ["prometheus", "grafana", "alertmanager"] {
        assert!(services.contains_key(s), "compose has {s}");
    }
    for f in [
        "prometheus.yml",
        "alertmanager.yml",
        "rules.yml",
        "Dockerfile",
        "grafana/provisioning/datasources/silverback.yml",
    ] {
        assert!(deploy().join(f).exists(), "deploy/{f} exists");
    }
}

#[test]
fn examples_turn_the_cluster_secret_on() {
    let cfg = std::fs::read_to_string(deploy().join("silverback.yml")).unwrap();
    assert!(cfg.contains(&format!("\ncluster_secret_file: {}", SECRET_PATHS[0])));
    let cm = &yaml_docs("k8s/configmap.yaml")[0];
    let cm = cm["data"]["silverback.yml"].as_str().unwrap();
    assert!(cm.contains(&format!("cluster_secret_file: {}", SECRET_PATHS[1])));
    let compose = std::fs::read_to_string(deploy().join("docker-compose.yml")).unwrap();
    assert_eq!(
        compose
            .matches(&format!("./cluster-secret:{}:ro", SECRET_PATHS[0]))
            .count(),
        3,
        "every compose node mounts the secret"
    );
    let np = &yaml_docs("k8s/networkpolicy.yaml")[0];
    assert_eq!(np["kind"], "NetworkPolicy");
    let from_pods = &np["spec"]["ingress"][0];
    assert_eq!(from_pods["ports"][0]["port"], 9301);
    assert_eq!(
        from_pods["from"][0]["podSelector"]["matchLabels"]["app.kubernetes.io/name"],
        "silverback"
    );
}

#[test]
fn examples_turn_cluster_mtls_on() {
    let cfg = std::fs::read_to_string(deploy().join("silverback.yml")).unwrap();
    for (key, file) in [
        ("grpc_tls_cert_file", "node.crt"),
        ("grpc_tls_key_file", "node.key"),
        ("grpc_tls_ca_file", "ca.crt"),
    ] {
        assert!(cfg.contains(&format!("\n{key}: {TLS_DIR}/{file}")), "{key}");
    }
    let compose = std::fs::read_to_string(deploy().join("docker-compose.yml")).unwrap();
    for n in 1..=3 {
        for f in ["crt", "key"] {
            let m = format!("./certs/node-{n}.{f}:{TLS_DIR}/node.{f}:ro");
            assert!(compose.contains(&m), "compose node {n} mounts {m}");
        }
    }
    let mounts = format!("./certs/ca.crt:{TLS_DIR}/ca.crt:ro");
    assert_eq!(compose.matches(&mounts).count(), 3);
    let sts = std::fs::read_to_string(deploy().join("k8s/statefulset.yaml")).unwrap();
    assert!(sts.contains("secretName: silverback-cluster-tls"));
    assert!(sts.contains(&format!("mountPath: {K8S_TLS_DIR}")));
}

#[test]
fn kubernetes_manifests_are_valid() {
    let cm = &yaml_docs("k8s/configmap.yaml")[0];
    assert_eq!(cm["kind"], "ConfigMap");
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("silverback.yml");
    // The pods read the cluster secret from a mounted Secret: a test one.
    let secret = dir.path().join("cluster-secret");
    std::fs::write(&secret, "0123456789abcdef\n").unwrap();
    let mut text = cm["data"]["silverback.yml"].as_str().unwrap().to_string();
    for p in SECRET_PATHS {
        text = text.replace(p, &secret.display().to_string());
    }
    std::fs::write(&cfg, text).unwrap();
    // ... and every node's certificate from the Secret silverback-cluster-tls.
    let certs = dir.path().join("certs");
    tests::make_cluster_certs(&certs, &[1, 2, 3, 4]).unwrap();
    let sts = &yaml_docs("k8s/statefulset.yaml")[0];
    assert_eq!(sts["kind"], "StatefulSet");
    assert_eq!(sts["spec"]["replicas"], 3);
    let c = &sts["spec"]["template"]["spec"]["containers"][0];
    assert_eq!(c["command"][0], "/bin/sh");
    let script = c["args"][0].as_str().unwrap();
    let bin = tests::binary_path().unwrap();
    // Each pod's command line as `sh` runs it, checked by --check-config:
    // pods 0-2 start the cluster with --peers; pod 3 (kubectl scale) joins.
    let run = |hostname: &str| -> serde_yaml::Value {
        let script = script
            .replace(K8S_TLS_DIR, &certs.display().to_string())
            .replace("/usr/local/bin/silverback", &bin.display().to_string())
            .replace("/etc/silverback/silverback.yml", &cfg.display().to_string());
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!("{} --check-config", script.trim_end()))
            .env("HOSTNAME", hostname)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pod {hostname}: the start script fails: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_yaml::from_slice(&out.stdout).unwrap()
    };
    for (i, host) in ["silverback-0", "silverback-1", "silverback-2"]
        .iter()
        .enumerate()
    {
        let c = run(host);
        assert_eq!(c["node_id"], i as u64 + 1, "{host}");
        assert_eq!(c["peers"].as_sequence().map(Vec::len), Some(3), "{host}");
        assert_eq!(c["advertise_addr"], format!("{host}.silverback:9301"));
        let cert = c["grpc_tls_cert_file"].as_str().unwrap_or_default();
        assert!(
            cert.ends_with(&format!("/node-{}.crt", i + 1)),
            "{host}: {cert}"
        );
    }
    let c = run("silverback-3");
    assert_eq!(c["node_id"], 4);
    assert_eq!(c["peers"].as_sequence().map(Vec::len), Some(0));
    assert_eq!(c["join"], "silverback:9301");
    assert_eq!(c["advertise_addr"], "silverback-3.silverback:9301");
    let svcs = yaml_docs("k8s/service.yaml");
    assert!(
        svcs.iter().any(|s| s["spec"]["clusterIP"] == "None"),
        "a headless service"
    );
}

#[test]
fn systemd_unit_is_valid() {
    let text = std::fs::read_to_string(deploy().join("systemd/silverback.service")).unwrap();
    let exec = text
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    check(
        "systemd unit",
        &after_binary(shell_words(exec)),
        &deploy().join("silverback.yml"),
    );
}

#[test]
fn systemd_user_is_created_by_the_sysusers_file() {
    let unit = std::fs::read_to_string(deploy().join("systemd/silverback.service")).unwrap();
    let field = |k: &str| {
        unit.lines()
            .find_map(|l| l.strip_prefix(k))
            .unwrap_or_else(|| panic!("{k} in the unit"))
            .trim()
            .to_string()
    };
    let (user, group) = (field("User="), field("Group="));
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("etc")).unwrap();
    let out = Command::new("systemd-sysusers")
        .arg(format!("--root={}", root.path().display()))
        .arg(deploy().join("systemd/silverback.sysusers"))
        .output()
        .expect("systemd-sysusers is needed (scripts/install-deps.sh installs systemd)");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let passwd = std::fs::read_to_string(root.path().join("etc/passwd")).unwrap();
    let groups = std::fs::read_to_string(root.path().join("etc/group")).unwrap();
    assert!(
        passwd.lines().any(|l| l.starts_with(&format!("{user}:"))),
        "{passwd}"
    );
    assert!(
        groups.lines().any(|l| l.starts_with(&format!("{group}:"))),
        "{groups}"
    );
    assert!(unit.contains("silverback.sysusers"), "the unit says how");
}

#[test]
fn prometheus_and_grafana_point_at_silverback() {
    let p = &yaml_docs("prometheus.yml")[0];
    let url = p["remote_write"][0]["url"].as_str().unwrap();
    assert!(url.ends_with(":9201/api/v1/write"), "{url}");
    let g = &yaml_docs("grafana/provisioning/datasources/silverback.yml")[0];
    assert_eq!(g["datasources"][0]["type"], "prometheus");
    assert!(g["datasources"][0]["url"]
        .as_str()
        .unwrap()
        .ends_with(":9201"));
    let rules = &yaml_docs("rules.yml")[0];
    assert!(rules["groups"].is_sequence());
}
