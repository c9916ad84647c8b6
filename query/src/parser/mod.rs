//! PromQL parser: query text to [`Expr`], with Prometheus' grammar, type
//! checking and error wording.
//!
//! Modules:
//! - `lexer` turns the text into tokens, context-sensitively as Prometheus'
//!   lexer does (nom scanners for identifiers and whitespace; Prometheus'
//!   rules for numbers and durations); `strings` unquotes Go string literals;
//! - `expr` parses the tokens by recursive descent with precedence climbing
//!   for binary operators (no backtracking: one token of lookahead, linear
//!   time); `check` builds each node with Prometheus' `checkAST` type rules,
//!   so every error has the byte position of its node;
//! - `duration` handles duration expressions (`foo[1h / 2]`, `offset
//!   (5m + 1s)`), `extended` the experimental `fill()` and
//!   `anchored`/`smoothed` modifiers, both gated by [`ParseOptions`] where
//!   Prometheus gates them;
//! - `matchers` caches compiled regex matchers;
//! - [`functions`] is the table of function signatures.
//!
//! Nesting is limited to [`MAX_DEPTH`] levels so that hostile input cannot
//! overflow the stack of the parser, the printer or the evaluator.
//!
//! ```
//! use query::parser::parse;
//! let e = parse("sum by (job) (rate(http_requests_total[5m]))").unwrap();
//! assert_eq!(e.to_string(), "sum by (job) (rate(http_requests_total[5m]))");
//! assert!(parse("rate(x)").is_err());
//! ```

mod check;
mod duration;
mod expr;
mod extended;
pub mod functions;
mod lexer;
mod matchers;
mod strings;

#[cfg(test)]
mod testdata;
#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_hostile;
#[cfg(test)]
mod tests_prop;

use crate::ast::{Expr, ValueType};
use crate::model::Matcher;

pub use functions::{function_sig, FunctionSig};

/// The deepest nesting of expressions the parser accepts (parentheses,
/// function calls, aggregations, unary operators and operands of binary
/// operators all count). Deeper input fails with a [`ParseError`].
///
/// Parsing uses up to ~2.5 KiB of stack per level in the dev profile, so
/// 256 levels stay well inside a 2 MiB thread stack (tested on 1 MiB).
pub const MAX_DEPTH: usize = 256;

/// A parse or type error, with the byte offset where it was found.
///
/// `Display` prints it as Prometheus does: `1:5: parse error: <msg>` (line and
/// column, 1-based; the column counts bytes).
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{line}:{col}: parse error: {msg}")]
pub struct ParseError {
    /// Byte offset into the query.
    pub pos: usize,
    /// What went wrong, in Prometheus' words where it has them.
    pub msg: String,
    line: usize,
    col: usize,
}

impl ParseError {
    pub(crate) fn new(pos: usize, msg: impl Into<String>) -> Self {
        ParseError {
            pos,
            msg: msg.into(),
            line: 1,
            col: pos + 1,
        }
    }

    /// Computes line and column of `pos` in `src`.
    fn locate(mut self, src: &str) -> Self {
        let pos = self.pos.min(src.len());
        let before = src.as_bytes().get(..pos).unwrap_or_default();
        self.line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        self.col = match before.iter().rposition(|&b| b == b'\n') {
            Some(nl) => pos - nl,
            None => pos + 1,
        };
        self
    }

    /// 1-based line of the error.
    pub fn line(&self) -> usize {
        self.line
    }

    /// 1-based column (in bytes) of the error.
    pub fn col(&self) -> usize {
        self.col
    }
}

/// The `--enable-feature` name (Prometheus') that switches on the
/// experimental functions and the `limitk` / `limit_ratio` aggregations.
pub const EXPERIMENTAL_FUNCTIONS_FEATURE: &str = "promql-experimental-functions";

/// Parser switches for experimental Prometheus syntax.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ParseOptions {
    /// Accept the functions Prometheus marks experimental
    /// ([`FunctionSig::experimental`](functions::FunctionSig): `sort_by_label`,
    /// `double_exponential_smoothing`, `info`, `mad_over_time`, `ts_of_*`,
    /// `start()`/`end()`/`range()`/`step()`, ...) and the `limitk` /
    /// `limit_ratio` aggregations (Prometheus'
    /// `--enable-feature=promql-experimental-functions`). Without it they are
    /// parse errors that say how to enable them.
    pub experimental_functions: bool,
    /// Accept `step()` and `range()` in duration expressions
    /// (`foo[step() * 2]`, `foo offset -range()`). They are kept as scalar
    /// expressions in the AST's `*_expr` fields, which the evaluator must
    /// compute per query. Constant duration expressions (`foo[1h / 2]`) are
    /// always accepted and folded.
    pub duration_expr_functions: bool,
    /// Accept the binary-operator fill modifiers `fill(v)`, `fill_left(v)`,
    /// `fill_right(v)` (Prometheus' `promql-binop-fill-modifiers`), kept in
    /// [`BinaryExpr::fill_lhs`](crate::ast::BinaryExpr) / `fill_rhs`.
    pub fill_modifiers: bool,
    /// Accept the `anchored` / `smoothed` range selector modifiers
    /// (Prometheus' `promql-extended-range-selectors`), kept in
    /// [`VectorSelector::anchored`](crate::ast::VectorSelector) / `smoothed`.
    pub extended_range_selectors: bool,
}

impl ParseOptions {
    /// Prometheus' defaults: no experimental syntax (same as `default()`,
    /// usable in `const` struct updates: `ParseOptions { x: true, ..NONE }`).
    pub const NONE: ParseOptions = ParseOptions {
        experimental_functions: false,
        duration_expr_functions: false,
        fill_modifiers: false,
        extended_range_selectors: false,
    };
    /// Every experimental syntax this parser knows.
    pub const ALL: ParseOptions = ParseOptions {
        experimental_functions: true,
        duration_expr_functions: true,
        fill_modifiers: true,
        extended_range_selectors: true,
    };
}

/// Parses and type-checks a PromQL expression.
pub fn parse(input: &str) -> Result<Expr, ParseError> {
    parse_with(input, ParseOptions::default())
}

/// [`parse`] with experimental syntax switched on or off.
pub fn parse_with(input: &str, opts: ParseOptions) -> Result<Expr, ParseError> {
    expr::parse_expr(input, opts).map_err(|e| e.locate(input))
}

/// Parses a series selector such as `foo{a="b"}` or `{a="b"}` (the `match[]`
/// parameter of the HTTP API, and series in test files) into its matchers.
/// The metric name, if written, becomes a `__name__` matcher (last).
pub fn parse_metric_selector(input: &str) -> Result<Vec<Matcher>, ParseError> {
    expr::parse_selector_only(input).map_err(|e| e.locate(input))
}

/// Parses a PromQL duration (`1h30m`, `5m`, `500ms`, `1y2w3d`, `0`) into
/// milliseconds. Units must appear in decreasing order, each at most once.
pub fn parse_duration(input: &str) -> Result<i64, ParseError> {
    parse_duration_at(input, 0).map_err(|e| e.locate(input))
}

/// Same as [`parse_duration`] with errors at `pos`.
pub(crate) fn parse_duration_at(input: &str, pos: usize) -> Result<i64, ParseError> {
    ::model::duration::parse_duration_ms(input).map_err(|e| ParseError::new(pos, e.to_string()))
}

impl Expr {
    /// The type of the expression's value, as the type checker sees it.
    pub fn value_type(&self) -> ValueType {
        match self {
            Expr::Number(_) => ValueType::Scalar,
            Expr::String(_) => ValueType::String,
            Expr::VectorSelector(_) | Expr::Aggregate(_) => ValueType::Vector,
            Expr::MatrixSelector(_) | Expr::Subquery(_) => ValueType::Matrix,
            Expr::Paren(e) | Expr::Unary(_, e) => e.value_type(),
            Expr::Binary(b) => {
                if b.lhs.value_type() == ValueType::Scalar
                    && b.rhs.value_type() == ValueType::Scalar
                {
                    ValueType::Scalar
                } else {
                    ValueType::Vector
                }
            }
            Expr::Call(c) => function_sig(&c.func).map_or(ValueType::Vector, |f| f.return_type),
        }
    }
}
