//! Rule files are reloaded with `POST /-/reload` (issue 6): a bad file is
//! rejected as a whole with an error naming it and the running rules stay;
//! a good file replaces them. A recording rule's output is queryable.

use std::time::{Duration, Instant};

use serde_json::Value;
use tests::{series, Client, Options, Silverback};

async fn group_names(c: &Client) -> Vec<String> {
    let (_, v) = c.get("/api/v1/rules", &[]).await.expect("rules");
    v["data"]["groups"]
        .as_array()
        .map(|g| {
            g.iter()
                .filter_map(|x| x["name"].as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

async fn post_reload(c: &Client) -> (u16, String) {
    let r = reqwest::Client::new()
        .post(format!("{}/-/reload", c.base()))
        .send()
        .await
        .expect("reload");
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test]
async fn reload_keeps_rules_on_error_and_swaps_on_success() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("rules.yml");
    let rules = |group: &str, expr: &str| {
        format!("groups:\n  - name: {group}\n    interval: 1s\n    rules:\n      - record: job:x:sum\n        expr: {expr}\n")
    };
    std::fs::write(&file, rules("first", "sum by (job) (x)")).expect("write");
    let mut o = Options::default();
    o.extra_args
        .extend(["--rule-file".into(), file.display().to_string()]);
    let node = Silverback::start(o).await.expect("start");
    let c = node.client();
    assert_eq!(group_names(&c).await, ["first"]);

    // The recording rule writes job:x:sum from x.
    let now = tests::now_ms();
    let (st, body) = c
        .write(&[
            series("x", &[("job", "a"), ("i", "1")], &[(now, 2.0)]),
            series("x", &[("job", "a"), ("i", "2")], &[(now, 3.0)]),
        ])
        .await
        .expect("write");
    assert_eq!(st, 204, "{body}");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let t = tests::now_ms() as f64 / 1000.0;
        let v: Value = c.query("job:x:sum", t).await.expect("query");
        if v["data"]["result"][0]["value"][1] == "5" {
            assert_eq!(
                v["data"]["result"][0]["metric"],
                serde_json::json!({"__name__": "job:x:sum", "job": "a"})
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "recording rule output never appeared: {v}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // A bad file: rejected, naming file and problem; the old group stays.
    std::fs::write(&file, rules("second", "sum by (job) (")).expect("write");
    let (st, text) = post_reload(&c).await;
    assert_eq!(st, 500, "{text}");
    assert!(
        text.contains("rules.yml") && text.contains("could not parse expression"),
        "{text}"
    );
    assert_eq!(group_names(&c).await, ["first"]);

    // A good file replaces the rules.
    std::fs::write(&file, rules("second", "max by (job) (x)")).expect("write");
    let (st, text) = post_reload(&c).await;
    assert_eq!(st, 200, "{text}");
    assert_eq!(group_names(&c).await, ["second"]);
}
