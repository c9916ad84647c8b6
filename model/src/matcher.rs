//! Label matchers with Prometheus' semantics.

use std::fmt;

use regex::Regex;

use crate::Labels;

/// The four matcher operators of a PromQL selector.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum MatchOp {
    /// `=`
    Equal,
    /// `!=`
    NotEqual,
    /// `=~` (fully anchored regex)
    RegexMatch,
    /// `!~` (fully anchored regex)
    RegexNoMatch,
}

impl MatchOp {
    /// The operator as written in PromQL.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchOp::Equal => "=",
            MatchOp::NotEqual => "!=",
            MatchOp::RegexMatch => "=~",
            MatchOp::RegexNoMatch => "!~",
        }
    }
}

/// A label matcher, `name op "value"`, with Prometheus semantics: regexes are
/// fully anchored, and a missing label has the value `""`.
#[derive(Clone, Debug)]
pub struct Matcher {
    /// Label name.
    pub name: String,
    /// Operator.
    pub op: MatchOp,
    /// Literal value or regex source.
    pub value: String,
    re: Option<Regex>,
}

impl PartialEq for Matcher {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name && self.op == other.op && self.value == other.value
    }
}

impl Eq for Matcher {}

impl std::hash::Hash for Matcher {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.name.hash(state);
        self.op.hash(state);
        self.value.hash(state);
    }
}

impl Matcher {
    /// Builds a matcher, compiling the regex (anchored as `^(?s:value)$`) for
    /// `=~` and `!~`.
    pub fn new(
        op: MatchOp,
        name: impl Into<String>,
        value: impl Into<String>,
    ) -> Result<Self, regex::Error> {
        let value = value.into();
        let re = match op {
            MatchOp::RegexMatch | MatchOp::RegexNoMatch => {
                Some(Regex::new(&format!("^(?s:{value})$"))?)
            }
            _ => None,
        };
        Ok(Matcher {
            name: name.into(),
            op,
            value,
            re,
        })
    }

    /// An `=` matcher (never fails).
    pub fn equal(name: impl Into<String>, value: impl Into<String>) -> Self {
        Matcher {
            name: name.into(),
            op: MatchOp::Equal,
            value: value.into(),
            re: None,
        }
    }

    /// Whether a label value (`""` when the label is missing) matches.
    #[inline]
    pub fn matches(&self, v: &str) -> bool {
        match self.op {
            MatchOp::Equal => self.value == v,
            MatchOp::NotEqual => self.value != v,
            MatchOp::RegexMatch => self.re.as_ref().is_some_and(|r| r.is_match(v)),
            MatchOp::RegexNoMatch => !self.re.as_ref().is_some_and(|r| r.is_match(v)),
        }
    }

    /// Whether the matcher accepts a series lacking the label.
    pub fn matches_empty(&self) -> bool {
        self.matches("")
    }

    /// Whether a whole label set matches.
    pub fn matches_labels(&self, labels: &Labels) -> bool {
        self.matches(labels.get(&self.name).unwrap_or(""))
    }
}

impl fmt::Display for Matcher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}{:?}", self.name, self.op.as_str(), self.value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matcher_semantics() {
        let f = |op, val: &str, input: &str, want: bool| {
            let m = Matcher::new(op, "l", val).unwrap();
            assert_eq!(m.matches(input), want, "{m} on {input:?}");
        };
        f(MatchOp::Equal, "a", "a", true);
        f(MatchOp::Equal, "", "", true);
        f(MatchOp::NotEqual, "", "x", true);
        f(MatchOp::NotEqual, "", "", false);
        f(MatchOp::RegexMatch, "a.*", "abc", true);
        f(MatchOp::RegexMatch, "b", "abc", false); // anchored
        f(MatchOp::RegexMatch, "a|b", "b", true);
        f(MatchOp::RegexMatch, ".*", "", true);
        f(MatchOp::RegexMatch, "a.c", "a\nc", true); // dot matches newline
        f(MatchOp::RegexNoMatch, "a.*", "abc", false);
        f(MatchOp::RegexNoMatch, "a.*", "", true);
    }
}
