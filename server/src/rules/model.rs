//! Rule files: the Prometheus YAML format, loading and validation.
//!
//! ```yaml
//! groups:
//!   - name: example            # unique in the file
//!     interval: 30s            # default: the global evaluation interval (1m)
//!     query_offset: 0s         # evaluate at t - query_offset
//!     limit: 0                 # 0 = no limit on series/alerts per rule
//!     labels: {team: x}        # added to every rule of the group
//!     rules:
//!       - record: job:up:sum
//!         expr: sum by (job) (up)
//!         labels: {k: v}
//!       - alert: InstanceDown
//!         expr: up == 0
//!         for: 5m
//!         keep_firing_for: 1m
//!         labels: {severity: page}
//!         annotations: {summary: "{{ $labels.instance }} is down"}
//! ```
//!
//! A file is validated as a whole, like `promtool check rules`: every error
//! names the file, line, group and rule, and one bad rule rejects the file.

use std::collections::{BTreeMap, HashSet};
use std::path::Path;

use query::parser::ParseOptions;
use serde::Deserialize;

use super::template::Template;
use super::RulesError;

/// The default group interval (Prometheus' global `evaluation_interval`).
pub const DEFAULT_INTERVAL_MS: i64 = 60_000;

/// A YAML scalar read as a string (Go's YAML decoder accepts `expr: 1`).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ScalarString(pub String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        use serde::de::Error;
        match serde_yaml::Value::deserialize(d)? {
            serde_yaml::Value::String(s) => Ok(ScalarString(s)),
            serde_yaml::Value::Number(n) => Ok(ScalarString(n.to_string())),
            serde_yaml::Value::Bool(b) => Ok(ScalarString(b.to_string())),
            serde_yaml::Value::Null => Ok(ScalarString(String::new())),
            _ => Err(D::Error::custom("expected a string")),
        }
    }
}

/// A rule file as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleFileDef {
    /// The groups.
    #[serde(default)]
    pub groups: Vec<GroupDef>,
}

/// A group as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupDef {
    /// Name, unique in the file.
    #[serde(default)]
    pub name: String,
    /// Evaluation interval (Prometheus duration).
    pub interval: Option<String>,
    /// Query offset.
    pub query_offset: Option<String>,
    /// Series/alert limit per rule.
    #[serde(default)]
    pub limit: usize,
    /// Labels added to every rule.
    #[serde(default)]
    pub labels: BTreeMap<String, ScalarString>,
    /// The rules.
    #[serde(default)]
    pub rules: Vec<RuleDef>,
}

/// A rule as written.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDef {
    /// Recording rule output metric.
    pub record: Option<String>,
    /// Alert name.
    pub alert: Option<String>,
    /// PromQL expression.
    #[serde(default)]
    pub expr: ScalarString,
    /// Pending duration.
    #[serde(rename = "for")]
    pub for_: Option<String>,
    /// Keep-firing duration.
    pub keep_firing_for: Option<String>,
    /// Labels (templated for alerts).
    #[serde(default)]
    pub labels: BTreeMap<String, ScalarString>,
    /// Annotations (templated).
    #[serde(default)]
    pub annotations: BTreeMap<String, ScalarString>,
}

/// What kind of rule, with the alert-only settings.
#[derive(Clone, Debug, PartialEq)]
pub enum RuleKind {
    /// A recording rule.
    Recording,
    /// An alerting rule.
    Alerting {
        /// `for`, ms.
        for_ms: i64,
        /// `keep_firing_for`, ms.
        keep_firing_for_ms: i64,
        /// Annotation templates, sorted by name.
        annotations: Vec<(String, String)>,
    },
}

/// A validated rule.
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSpec {
    /// `record` or `alert` name.
    pub name: String,
    /// The PromQL expression as written (trimmed).
    pub expr: String,
    /// Labels (templates for alerts), sorted by name; group labels included.
    pub labels: Vec<(String, String)>,
    /// Kind.
    pub kind: RuleKind,
}

/// A validated group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupSpec {
    /// The file it came from.
    pub file: String,
    /// Group name.
    pub name: String,
    /// Interval, ms.
    pub interval_ms: i64,
    /// Query offset, ms.
    pub query_offset_ms: i64,
    /// Limit (0 = none).
    pub limit: usize,
    /// Rules, in file order.
    pub rules: Vec<RuleSpec>,
}

impl GroupSpec {
    /// The group's key, unique across files: `file;name` as Prometheus.
    pub fn key(&self) -> String {
        format!("{};{}", self.file, self.name)
    }
}

/// Prometheus duration (`1h30m`, `5m`, `0`) in ms.
pub fn parse_duration(s: &str) -> Result<i64, String> {
    query::parser::parse_duration(s.trim())
        .map_err(|_| format!("not a valid duration string: {s:?}"))
}

/// Go's `strconv.ParseFloat` for the spellings templates and tests use.
pub fn parse_go_float(s: &str) -> Option<f64> {
    let t = s.trim();
    match t.to_ascii_lowercase().trim_start_matches(['+', '-']) {
        "inf" | "infinity" => {
            return Some(if t.starts_with('-') {
                f64::NEG_INFINITY
            } else {
                f64::INFINITY
            })
        }
        "nan" => return Some(f64::NAN),
        _ => {}
    }
    if let Some(h) = t.strip_prefix("0x").or_else(|| t.strip_prefix("0X")) {
        return i64::from_str_radix(h, 16).ok().map(|v| v as f64);
    }
    t.parse().ok()
}

fn valid_label_name(n: &str) -> bool {
    let mut cs = n.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

fn valid_metric_name(n: &str) -> bool {
    let mut cs = n.chars();
    matches!(cs.next(), Some(c) if c.is_ascii_alphabetic() || c == '_' || c == ':')
        && cs.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// Lines (1-based) of each group's `- name:` and each rule's
/// `- record:`/`- alert:` key, in document order, found by scanning the text
/// (serde_yaml keeps no positions for values).
fn locate(src: &str) -> (Vec<usize>, Vec<usize>) {
    let mut groups = Vec::new();
    let mut rules = Vec::new();
    let mut in_block: Option<usize> = None;
    for (i, line) in src.lines().enumerate() {
        let indent = line.len() - line.trim_start().len();
        let t = line.trim_start();
        if let Some(ind) = in_block {
            if t.is_empty() || indent > ind {
                continue;
            }
            in_block = None;
        }
        let item = t.strip_prefix("- ").map(str::trim_start);
        let key = item.unwrap_or(t);
        let key_name = key.split(':').next().unwrap_or("").trim();
        if item.is_some() && key_name == "name" {
            groups.push(i + 1);
        }
        if (key_name == "record" || key_name == "alert") && key.contains(':') {
            rules.push(i + 1);
        }
        if t.ends_with('|')
            || t.ends_with('>')
            || t.ends_with("|-")
            || t.ends_with(">-")
            || t.ends_with("|+")
            || t.ends_with(">+")
        {
            in_block = Some(indent);
        }
    }
    (groups, rules)
}

/// Validates one rule; the error message has no location.
fn validate_rule(
    r: &RuleDef,
    group_labels: &BTreeMap<String, ScalarString>,
    opts: ParseOptions,
) -> Result<RuleSpec, String> {
    let name = match (&r.record, &r.alert) {
        (Some(_), Some(_)) => return Err("only one of 'record' and 'alert' must be set".into()),
        (None, None) => return Err("one of 'record' or 'alert' must be set".into()),
        (Some(n), None) | (None, Some(n)) => n.clone(),
    };
    let expr = r.expr.0.trim().to_string();
    if expr.is_empty() {
        return Err("field 'expr' must be set in rule".into());
    }
    query::parser::parse_with(&expr, opts)
        .map_err(|e| format!("could not parse expression: {e}"))?;
    let mut labels: BTreeMap<String, String> = group_labels
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect();
    labels.extend(r.labels.iter().map(|(k, v)| (k.clone(), v.0.clone())));
    for k in labels.keys() {
        if !valid_label_name(k) || k == "__name__" {
            return Err(format!("invalid label name: {k}"));
        }
    }
    let labels: Vec<(String, String)> = labels.into_iter().collect();
    let kind = if r.record.is_some() {
        if !valid_metric_name(&name) {
            return Err(format!("invalid recording rule name: {name}"));
        }
        if !r.annotations.is_empty() {
            return Err("invalid field 'annotations' in recording rule".into());
        }
        if r.for_.is_some() {
            return Err("invalid field 'for' in recording rule".into());
        }
        if r.keep_firing_for.is_some() {
            return Err("invalid field 'keep_firing_for' in recording rule".into());
        }
        RuleKind::Recording
    } else {
        if name.is_empty() {
            return Err("field 'alert' must not be empty".into());
        }
        for k in r.annotations.keys() {
            if !valid_label_name(k) {
                return Err(format!("invalid annotation name: {k}"));
            }
        }
        let dur = |d: &Option<String>| {
            d.as_deref()
                .map(parse_duration)
                .transpose()
                .map(|v| v.unwrap_or(0))
        };
        let annotations: Vec<(String, String)> = r
            .annotations
            .iter()
            .map(|(k, v)| (k.clone(), v.0.clone()))
            .collect();
        for (what, (k, v)) in labels
            .iter()
            .map(|l| ("label", l))
            .chain(annotations.iter().map(|a| ("annotation", a)))
        {
            Template::parse(&format!("__alert_{name}"), v)
                .map_err(|e| format!("template error in {what} {k:?}: {e}"))?;
        }
        RuleKind::Alerting {
            for_ms: dur(&r.for_)?,
            keep_firing_for_ms: dur(&r.keep_firing_for)?,
            annotations,
        }
    };
    Ok(RuleSpec {
        name,
        expr,
        labels,
        kind,
    })
}

/// Parses and validates rule file text with Prometheus' default parser
/// (no experimental functions). `file` is only used in messages and as part
/// of the group keys. Returns every error found.
pub fn parse_rule_file(file: &str, src: &str) -> Result<Vec<GroupSpec>, Vec<RulesError>> {
    parse_rule_file_with(file, src, ParseOptions::NONE)
}

/// [`parse_rule_file`] whose expressions are parsed with `opts` (the
/// server's `--enable-feature` switches).
pub fn parse_rule_file_with(
    file: &str,
    src: &str,
    opts: ParseOptions,
) -> Result<Vec<GroupSpec>, Vec<RulesError>> {
    let mk = |line: usize, msg: String| RulesError::Invalid {
        file: file.to_string(),
        line,
        msg,
    };
    let def: RuleFileDef = match serde_yaml::from_str::<Option<RuleFileDef>>(src) {
        Ok(d) => d.unwrap_or_default(),
        Err(e) => {
            let line = e.location().map(|l| l.line()).unwrap_or(0);
            return Err(vec![mk(line, e.to_string())]);
        }
    };
    let (group_lines, rule_lines) = locate(src);
    let mut errs = Vec::new();
    let mut groups = Vec::new();
    let mut seen = HashSet::new();
    let mut rule_no = 0usize;
    for (gi, g) in def.groups.iter().enumerate() {
        let gline = group_lines.get(gi).copied().unwrap_or(0);
        let mut gerr = |msg: String| errs.push(mk(gline, msg));
        if g.name.is_empty() {
            gerr("Groupname must not be empty".into());
        } else if !seen.insert(g.name.clone()) {
            gerr(format!("{:?} is repeated in the same file", g.name));
        }
        let interval_ms = match g.interval.as_deref().map(parse_duration).transpose() {
            Ok(Some(0)) => {
                gerr(format!("group {:?}: interval must be positive", g.name));
                DEFAULT_INTERVAL_MS
            }
            Ok(v) => v.unwrap_or(DEFAULT_INTERVAL_MS),
            Err(e) => {
                gerr(format!("group {:?}: interval: {e}", g.name));
                DEFAULT_INTERVAL_MS
            }
        };
        let query_offset_ms = match g.query_offset.as_deref().map(parse_duration).transpose() {
            Ok(v) => v.unwrap_or(0),
            Err(e) => {
                gerr(format!("group {:?}: query_offset: {e}", g.name));
                0
            }
        };
        let mut rules = Vec::new();
        for (ri, r) in g.rules.iter().enumerate() {
            let line = rule_lines.get(rule_no).copied().unwrap_or(gline);
            rule_no += 1;
            match validate_rule(r, &g.labels, opts) {
                Ok(spec) => rules.push(spec),
                Err(msg) => {
                    let rname = r
                        .record
                        .as_ref()
                        .or(r.alert.as_ref())
                        .cloned()
                        .unwrap_or_default();
                    errs.push(mk(
                        line,
                        format!("group {:?}, rule {}, {rname:?}: {msg}", g.name, ri + 1),
                    ));
                }
            }
        }
        groups.push(GroupSpec {
            file: file.to_string(),
            name: g.name.clone(),
            interval_ms,
            query_offset_ms,
            limit: g.limit,
            rules,
        });
    }
    if errs.is_empty() {
        Ok(groups)
    } else {
        Err(errs)
    }
}

/// Reads and validates one file (Prometheus' default parser).
pub fn load_file(path: &Path) -> Result<Vec<GroupSpec>, Vec<RulesError>> {
    load_file_with(path, ParseOptions::NONE)
}

/// [`load_file`] whose expressions are parsed with `opts`.
pub fn load_file_with(path: &Path, opts: ParseOptions) -> Result<Vec<GroupSpec>, Vec<RulesError>> {
    let name = path.display().to_string();
    let src = std::fs::read_to_string(path).map_err(|e| {
        vec![RulesError::Io {
            path: name.clone(),
            msg: e.to_string(),
        }]
    })?;
    parse_rule_file_with(&name, &src, opts)
}

/// Expands glob patterns (sorted matches; a pattern without wildcards must
/// name an existing file... like Prometheus, a non-matching glob is fine).
pub fn expand_globs(patterns: &[String]) -> Result<Vec<std::path::PathBuf>, RulesError> {
    let mut out = Vec::new();
    for p in patterns {
        let paths = glob::glob(p).map_err(|e| RulesError::Io {
            path: p.clone(),
            msg: format!("bad glob pattern: {e}"),
        })?;
        let mut found: Vec<_> = paths.filter_map(Result::ok).collect();
        found.sort();
        out.extend(found);
    }
    out.dedup();
    Ok(out)
}

/// Loads every file matched by `patterns`, parsing expressions with `opts`;
/// any invalid file rejects the whole set (the caller keeps its previous
/// rules).
pub fn load_all(
    patterns: &[String],
    opts: ParseOptions,
) -> Result<Vec<GroupSpec>, Vec<RulesError>> {
    let files = expand_globs(patterns).map_err(|e| vec![e])?;
    let mut groups = Vec::new();
    let mut errs = Vec::new();
    for f in files {
        match load_file_with(&f, opts) {
            Ok(g) => groups.extend(g),
            Err(e) => errs.extend(e),
        }
    }
    if errs.is_empty() {
        Ok(groups)
    } else {
        Err(errs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn errs(src: &str) -> String {
        match parse_rule_file("f.yml", src) {
            Ok(_) => String::from("OK"),
            Err(e) => e
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n"),
        }
    }

    #[test]
    fn parses_a_good_file() {
        let g = parse_rule_file(
            "f.yml",
            "groups:\n- name: a\n  interval: 30s\n  rules:\n  - record: job:x:sum\n    expr: sum by (job) (x)\n  - alert: High\n    expr: job:x:sum > 1\n    for: 1m\n    labels: {severity: page}\n    annotations:\n      summary: '{{ $labels.job }} is {{ humanize $value }}'\n",
        )
        .unwrap();
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].interval_ms, 30_000);
        assert_eq!(g[0].rules[0].kind, RuleKind::Recording);
        match &g[0].rules[1].kind {
            RuleKind::Alerting {
                for_ms,
                annotations,
                ..
            } => {
                assert_eq!(*for_ms, 60_000);
                assert_eq!(annotations[0].0, "summary");
            }
            k => panic!("wrong kind {k:?}"),
        }
    }

    #[test]
    fn experimental_functions_follow_the_parse_options() {
        let src = "groups:\n- name: a\n  rules:\n  - record: x:sorted\n    expr: sort_by_label(x, \"job\")\n";
        let e = errs(src);
        assert!(
            e.contains("--enable-feature=promql-experimental-functions"),
            "{e}"
        );
        let on = ParseOptions {
            experimental_functions: true,
            ..ParseOptions::NONE
        };
        let g = parse_rule_file_with("f.yml", src, on).unwrap();
        assert_eq!(g[0].rules.len(), 1);
    }

    #[test]
    fn reports_errors_with_location() {
        let f = |src: &str, want: &str| {
            let got = errs(src);
            assert!(got.contains(want), "want {want:?} in {got:?}");
        };
        f(
            "groups:\n- name: a\n  rules:\n  - record: x\n    expr: sum(\n",
            "f.yml:4: group \"a\", rule 1, \"x\": could not parse expression",
        );
        f(
            "groups:\n- name: a\n  rules: []\n- name: a\n  rules: []\n",
            "f.yml:4: \"a\" is repeated in the same file",
        );
        f(
            "groups:\n- name: a\n  rules:\n  - record: x\n    alert: y\n    expr: up\n",
            "only one of 'record' and 'alert' must be set",
        );
        f(
            "groups:\n- name: a\n  rules:\n  - expr: up\n",
            "one of 'record' or 'alert' must be set",
        );
        f(
            "groups:\n- name: a\n  rules:\n  - record: 'bad name'\n    expr: up\n",
            "invalid recording rule name: bad name",
        );
        f(
            "groups:\n- name: a\n  rules:\n  - record: x\n    expr: up\n    for: 1m\n",
            "invalid field 'for' in recording rule",
        );
        f(
            "groups:\n- name: a\n  rules:\n  - alert: x\n    expr: up\n  - alert: y\n    expr: up\n    annotations:\n      s: '{{ $labels.x '\n",
            "f.yml:6: group \"a\", rule 2, \"y\": template error in annotation \"s\"",
        );
        f("groups:\n- name: a\n  rules:\n  - alert: x\n    expr: up\n    annotations:\n      s: '{{ nosuchfunc 1 }}'\n", "function \"nosuchfunc\" not defined");
        f("groups:\n- name: a\n  rules:\n  - alert: x\n    expr: up\n    labels:\n      __name__: y\n", "invalid label name: __name__");
        f("groups:\n- name: a\n  bogus: 1\n", "f.yml:3");
        f(
            "groups:\n- name: a\n  rules:\n  - alert: x\n    expr: up\n    for: 5x\n",
            "not a valid duration string",
        );
        f(
            "groups:\n- name: ''\n  rules: []\n",
            "Groupname must not be empty",
        );
    }

    #[test]
    fn block_scalars_do_not_confuse_line_numbers() {
        let src = "groups:\n- name: a\n  rules:\n  - alert: x\n    expr: |\n      up\n      # record: nope\n  - record: y\n    expr: sum(\n";
        assert!(errs(src).contains("f.yml:8:"), "{}", errs(src));
    }
}
