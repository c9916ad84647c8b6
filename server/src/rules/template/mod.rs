//! Go-template-style expansion of alert labels and annotations, as
//! Prometheus' `template` package does it (text/template semantics, no HTML
//! escaping).
//!
//! Each template runs with `.` = `{Labels, ExternalLabels, ExternalURL,
//! Value}` and the variables `$labels`, `$externalLabels`, `$externalURL`,
//! `$value` preset. Functions: see [`funcs`]. `query` needs a
//! [`TemplateQuerier`]; it is synchronous because templates are expanded on
//! a blocking thread.
//!
//! ```
//! use server::rules::template::{Template, TemplateData, Env};
//! let t = Template::parse("x", "{{ $labels.job }} is at {{ humanize $value }}").unwrap();
//! let data = TemplateData::new([("job".to_string(), "api".to_string())].into(), Default::default(), "", 1234.0);
//! assert_eq!(t.execute(&data, &Env::default()).unwrap(), "api is at 1.234k");
//! ```

mod exec;
pub mod funcs;
pub mod gofmt;
mod parse;

use std::collections::BTreeMap;

pub use parse::Node;

/// Errors from parsing or executing a template.
#[derive(Debug, thiserror::Error, Clone, PartialEq)]
pub enum TemplateError {
    /// The source does not parse.
    #[error("{0}")]
    Parse(String),
    /// Execution failed (bad argument, failing query ...).
    #[error("{0}")]
    Exec(String),
}

/// One sample of a `query` result: its labels (with `__name__`) and value.
#[derive(Clone, Debug, PartialEq)]
pub struct QuerySample {
    /// Labels including `__name__`.
    pub labels: BTreeMap<String, String>,
    /// The value.
    pub value: f64,
}

/// A template value (Go's `interface{}` as the template sees it).
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// No value / nil.
    Nil,
    /// bool
    Bool(bool),
    /// int
    Int(i64),
    /// float64
    Float(f64),
    /// string
    Str(String),
    /// map[string]... (labels, `args`, the data)
    Map(BTreeMap<String, Value>),
    /// A list (query results).
    List(Vec<Value>),
    /// One query result sample.
    Sample(QuerySample),
}

impl Value {
    /// How Go's `fmt.Sprint` (`%v`) prints the value.
    pub fn to_go_string(&self) -> String {
        match self {
            Value::Nil => "<nil>".into(),
            Value::Bool(b) => b.to_string(),
            Value::Int(i) => i.to_string(),
            Value::Float(f) => gofmt::format_g(*f, None),
            Value::Str(s) => s.clone(),
            Value::Map(m) => {
                let parts: Vec<String> = m
                    .iter()
                    .map(|(k, v)| format!("{k}:{}", v.to_go_string()))
                    .collect();
                format!("map[{}]", parts.join(" "))
            }
            Value::List(l) => {
                let parts: Vec<String> = l.iter().map(|v| v.to_go_string()).collect();
                format!("[{}]", parts.join(" "))
            }
            Value::Sample(s) => {
                let parts: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}:{v}")).collect();
                format!(
                    "&{{map[{}] {}}}",
                    parts.join(" "),
                    gofmt::format_g(s.value, None)
                )
            }
        }
    }

    /// Go template truthiness: false, 0, nil and empty things are false.
    pub fn truthy(&self) -> bool {
        match self {
            Value::Nil => false,
            Value::Bool(b) => *b,
            Value::Int(i) => *i != 0,
            Value::Float(f) => *f != 0.0,
            Value::Str(s) => !s.is_empty(),
            Value::Map(m) => !m.is_empty(),
            Value::List(l) => !l.is_empty(),
            Value::Sample(_) => true,
        }
    }

    fn string_map(m: &BTreeMap<String, String>) -> Value {
        Value::Map(
            m.iter()
                .map(|(k, v)| (k.clone(), Value::Str(v.clone())))
                .collect(),
        )
    }
}

/// Runs PromQL for the `query` template function.
pub trait TemplateQuerier: Sync {
    /// Evaluates `query` at `t_ms`; a scalar comes back as one sample with
    /// no labels.
    fn query(&self, query: &str, t_ms: i64) -> Result<Vec<QuerySample>, String>;
}

/// What a template can reach besides its data.
#[derive(Clone, Copy, Default)]
pub struct Env<'a> {
    /// For `query`; `None` makes `query` fail.
    pub querier: Option<&'a dyn TemplateQuerier>,
    /// The evaluation time (`query` runs at it).
    pub ts_ms: i64,
    /// `externalURL` / `pathPrefix`.
    pub external_url: &'a str,
}

/// The data of an alert template.
#[derive(Clone, Debug)]
pub struct TemplateData {
    dot: Value,
    vars: Vec<(String, Value)>,
}

impl TemplateData {
    /// Data for an alert's labels, the external labels and URL, and value.
    pub fn new(
        labels: BTreeMap<String, String>,
        external_labels: BTreeMap<String, String>,
        external_url: &str,
        value: f64,
    ) -> Self {
        let l = Value::string_map(&labels);
        let el = Value::string_map(&external_labels);
        let url = Value::Str(external_url.to_string());
        let v = Value::Float(value);
        let dot = Value::Map(
            [
                ("Labels".to_string(), l.clone()),
                ("ExternalLabels".to_string(), el.clone()),
                ("ExternalURL".to_string(), url.clone()),
                ("Value".to_string(), v.clone()),
            ]
            .into(),
        );
        let vars = vec![
            ("$".to_string(), dot.clone()),
            ("$labels".to_string(), l),
            ("$externalLabels".to_string(), el),
            ("$externalURL".to_string(), url),
            ("$value".to_string(), v),
        ];
        TemplateData { dot, vars }
    }
}

/// A parsed template.
#[derive(Clone, Debug)]
pub struct Template {
    name: String,
    nodes: Vec<Node>,
}

impl Template {
    /// Parses `src`; unknown functions and undefined variables are parse
    /// errors, as in Go.
    pub fn parse(name: &str, src: &str) -> Result<Template, TemplateError> {
        let nodes = parse::parse(name, src)?;
        let mut vars: Vec<String> = ["$", "$labels", "$externalLabels", "$externalURL", "$value"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        exec::check(name, &nodes, &mut vars)?;
        Ok(Template {
            name: name.to_string(),
            nodes,
        })
    }

    /// True when the template calls `query` (it then needs a querier).
    pub fn uses_query(&self) -> bool {
        exec::uses_function(&self.nodes, "query")
    }

    /// Expands the template.
    pub fn execute(&self, data: &TemplateData, env: &Env<'_>) -> Result<String, TemplateError> {
        exec::run(
            &self.name,
            &self.nodes,
            data.dot.clone(),
            data.vars.clone(),
            env,
        )
    }
}

/// Expands `src` the way a Prometheus alert does: on any error the result is
/// `<error expanding template: ...>` and the error is returned beside it for
/// logging.
pub fn expand(
    name: &str,
    src: &str,
    data: &TemplateData,
    env: &Env<'_>,
) -> (String, Option<TemplateError>) {
    if !src.contains("{{") {
        return (src.to_string(), None);
    }
    match Template::parse(name, src).and_then(|t| t.execute(data, env)) {
        Ok(s) => (s, None),
        Err(e) => (format!("<error expanding template: {e}>"), Some(e)),
    }
}

#[cfg(test)]
mod tests;
