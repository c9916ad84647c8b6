use std::collections::BTreeMap;

use super::*;

struct FakeQuerier;

impl TemplateQuerier for FakeQuerier {
    fn query(&self, q: &str, t_ms: i64) -> Result<Vec<QuerySample>, String> {
        match q {
            "up" => Ok(vec![
                QuerySample {
                    labels: [("__name__", "up"), ("instance", "b:9100")]
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    value: 0.0,
                },
                QuerySample {
                    labels: [("__name__", "up"), ("instance", "a:9100")]
                        .iter()
                        .map(|(k, v)| (k.to_string(), v.to_string()))
                        .collect(),
                    value: 1.0,
                },
            ]),
            "time()" => Ok(vec![QuerySample {
                labels: BTreeMap::new(),
                value: t_ms as f64 / 1000.0,
            }]),
            "none" => Ok(vec![]),
            _ => Err(format!("bad query {q}")),
        }
    }
}

fn run(src: &str) -> String {
    let labels: BTreeMap<String, String> =
        [("instance", "host1.example.com:9100"), ("job", "node")]
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
    let ext: BTreeMap<String, String> = [("cluster".to_string(), "eu1".to_string())].into();
    let data = TemplateData::new(labels, ext, "http://silverback:9201/prefix", 1234567.0);
    let env = Env {
        querier: Some(&FakeQuerier),
        ts_ms: 42_000,
        external_url: "http://silverback:9201/prefix",
    };
    match Template::parse("t", src) {
        Ok(t) => t
            .execute(&data, &env)
            .unwrap_or_else(|e| format!("EXEC ERROR: {e}")),
        Err(e) => format!("PARSE ERROR: {e}"),
    }
}

#[test]
fn templates_expand_like_prometheus() {
    let f = |src: &str, want: &str| assert_eq!(run(src), want, "template {src:?}");
    f("plain text", "plain text");
    f("{{ $value }}", "1.234567e+06");
    f("{{ .Value }}", "1.234567e+06");
    f(
        "{{ $labels.job }}/{{ .Labels.instance }}",
        "node/host1.example.com:9100",
    );
    f("{{ $labels.missing }}", "<no value>");
    f("{{ $externalLabels.cluster }}", "eu1");
    f("{{ humanize $value }}", "1.235M");
    f("{{ humanize 0.00123 }}", "1.23m");
    f("{{ humanize 0 }}", "0");
    f("{{ humanize1024 1048576 }}", "1Mi");
    f("{{ humanize1024 0.5 }}", "0.5");
    f("{{ humanizePercentage 0.1234 }}", "12.34%");
    f("{{ humanizeDuration 3661 }}", "1h 1m 1s");
    f("{{ humanizeDuration 90061 }}", "1d 1h 1m 1s");
    f("{{ humanizeDuration 1.5 }}", "1.5s");
    f("{{ humanizeDuration 0.25 }}", "250ms");
    f("{{ humanizeDuration 0 }}", "0s");
    f("{{ humanizeDuration -61 }}", "-1m 1s");
    f(
        "{{ humanizeTimestamp 1435065584.128 }}",
        "2015-06-23 13:19:44.128 +0000 UTC",
    );
    f("{{ humanize \"1234\" }}", "1.234k");
    f("{{ printf \"%.2f\" $value }}", "1234567.00");
    f("{{ printf \"%s=%d\" \"a\" 3 }}", "a=3");
    f("{{ $value | printf \"%.1f\" }}", "1234567.0");
    f(
        "{{ toUpper \"abc\" }} {{ toLower \"ABC\" }} {{ title \"hello world\" }}",
        "ABC abc Hello World",
    );
    f(
        "{{ reReplaceAll \"(a+)b\" \"${1}X\" \"aab cab\" }}",
        "aaX caX",
    );
    f(
        "{{ if match \"^node$\" $labels.job }}yes{{ else }}no{{ end }}",
        "yes",
    );
    f("{{ stripPort $labels.instance }}", "host1.example.com");
    f("{{ stripPort \"[::1]:80\" }}", "::1");
    f("{{ stripDomain $labels.instance }}", "host1:9100");
    f("{{ stripDomain \"10.0.0.1:80\" }}", "10.0.0.1:80");
    f(
        "{{ graphLink \"up == 0\" }}",
        "/graph?g0.expr=up+%3D%3D+0&g0.tab=0",
    );
    f("{{ tableLink \"up\" }}", "/graph?g0.expr=up&g0.tab=1");
    f("{{ safeHtml \"<b>\" }}", "<b>");
    f(
        "{{ externalURL }} {{ pathPrefix }}",
        "http://silverback:9201/prefix /prefix",
    );
    f(
        "{{ with $x := args 1 \"b\" }}{{ $x.arg0 }}-{{ .arg1 }}{{ end }}",
        "1-b",
    );
    f("{{ query \"up\" | first | value }}", "0");
    f(
        "{{ with query \"up\" }}{{ . | first | label \"instance\" }}{{ end }}",
        "b:9100",
    );
    f("{{ range query \"up\" | sortByLabel \"instance\" }}{{ .Labels.instance }}={{ .Value }};{{ end }}", "a:9100=1;b:9100=0;");
    f("{{ range $i, $s := query \"up\" }}{{ $i }}{{ end }}", "01");
    f(
        "{{ with query \"none\" }}x{{ else }}empty{{ end }}",
        "empty",
    );
    f("{{ query \"time()\" | first | value }}", "42");
    f("{{- \"a\" -}}   b   {{- \"c\" }}", "abc");
    f("x {{/* comment */}} y", "x  y");
    f(
        "{{ $v := 3 }}{{ if gt $v 2 }}big{{ else if gt $v 1 }}mid{{ else }}small{{ end }}",
        "big",
    );
    f(
        "{{ $v := 1 }}{{ if gt $v 2 }}big{{ else if eq $v 1 }}one{{ end }}",
        "one",
    );
    f("{{ $x := 1 }}{{ $x = 2 }}{{ $x }}", "2");
    f("{{ len \"abcd\" }} {{ index $labels \"job\" }}", "4 node");
    f(
        "{{ if and true 0 }}a{{ else }}b{{ end }}{{ or 0 \"z\" }}{{ not false }}",
        "bztrue",
    );
    f("{{ (query \"up\" | first).Labels.instance }}", "b:9100");
    f("{{ parseDuration \"1m30s\" }}", "90");
    f(
        "{{ printf \"%v\" 1.5 }} {{ 0x10 }} {{ 1e3 }}",
        "1.5 16 1000",
    );
}

#[test]
fn template_errors() {
    let f = |src: &str, want: &str| {
        let got = run(src);
        assert!(
            got.contains(want),
            "template {src:?}: want {want:?} in {got:?}"
        );
    };
    f(
        "{{ $labels.job",
        "PARSE ERROR: template: t:1: unclosed action",
    );
    f(
        "{{ nosuch 1 }}",
        "PARSE ERROR: template: t: function \"nosuch\" not defined",
    );
    f("{{ $undefined }}", "PARSE ERROR");
    f("{{ if true }}x", "PARSE ERROR");
    f("{{ end }}", "PARSE ERROR");
    f("{{ query \"none\" | first }}", "EXEC ERROR: template: t: executing: error calling first: first() called on vector with no elements");
    f("{{ query \"bad\" }}", "error calling query: bad query bad");
    f("{{ humanize \"abc\" }}", "error calling humanize");
    f(
        "{{ reReplaceAll \"(\" \"\" \"x\" }}",
        "error calling reReplaceAll",
    );
    f("{{ 1 2 }}", "can't give argument to non-function");
}

#[test]
fn expand_reports_error_text() {
    let data = TemplateData::new(BTreeMap::new(), BTreeMap::new(), "", 1.0);
    let (s, e) = expand("__alert_x", "{{ query \"up\" }}", &data, &Env::default());
    assert!(s.starts_with("<error expanding template: "), "{s}");
    assert!(e.is_some());
    let (s, e) = expand("__alert_x", "no braces {{", &data, &Env::default());
    assert!(s.starts_with("<error expanding template"), "{s}");
    assert!(e.is_some());
    let (s, e) = expand("__alert_x", "v={{ $value }}", &data, &Env::default());
    assert_eq!((s.as_str(), e), ("v=1", None));
}
