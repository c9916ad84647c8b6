//! The PromQL abstract syntax tree produced by [`crate::parser`] and walked
//! by the evaluator. Durations and timestamps are milliseconds.
//!
//! `Display` (in `printer.rs`) prints an expression back as canonical PromQL,
//! the way Prometheus' `String()` does.

use crate::model::Matcher;

/// The type of a PromQL value, as the type checker sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ValueType {
    /// A single number.
    Scalar,
    /// An instant vector.
    Vector,
    /// A range vector.
    Matrix,
    /// A string.
    String,
}

impl ValueType {
    /// The name Prometheus uses in error messages.
    pub fn name(self) -> &'static str {
        match self {
            ValueType::Scalar => "scalar",
            ValueType::Vector => "instant vector",
            ValueType::Matrix => "range vector",
            ValueType::String => "string",
        }
    }
}

/// Where a piece of input starts and ends (byte offsets into the query).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Span {
    /// First byte.
    pub start: usize,
    /// One past the last byte.
    pub end: usize,
}

/// `@` modifier.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum AtModifier {
    /// `@ <unix seconds>`, stored as milliseconds.
    Timestamp(i64),
    /// `@ start()`
    Start,
    /// `@ end()`
    End,
}

/// `metric{a="b"} offset 5m @ 123`.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorSelector {
    /// The metric name if written before the braces (also present as an `=`
    /// matcher on `__name__` in `matchers`).
    pub name: Option<String>,
    /// All matchers, including the one on `__name__` for a written name.
    pub matchers: Vec<Matcher>,
    /// `offset` in milliseconds (negative allowed); 0 when absent.
    pub offset: i64,
    /// An offset written as a duration expression that uses `step()` or
    /// `range()` (experimental; only with
    /// [`ParseOptions::duration_expr_functions`](crate::parser::ParseOptions)).
    /// It is a scalar expression in seconds, computed once per query; `offset`
    /// is 0 then. Constant duration expressions are folded into `offset`.
    pub offset_expr: Option<Box<Expr>>,
    /// `@` modifier.
    pub at: Option<AtModifier>,
    /// `anchored` modifier (experimental; only with
    /// [`ParseOptions::extended_range_selectors`](crate::parser::ParseOptions)).
    pub anchored: bool,
    /// `smoothed` modifier (experimental, as `anchored`).
    pub smoothed: bool,
}

/// `selector[5m]`.
#[derive(Clone, Debug, PartialEq)]
pub struct MatrixSelector {
    /// The selector (offset/`@` live on it, even when written after `[..]`).
    pub vs: VectorSelector,
    /// The range in milliseconds.
    pub range: i64,
    /// The range as a duration expression using `step()`/`range()` (see
    /// [`VectorSelector::offset_expr`]); `range` is 0 then.
    pub range_expr: Option<Box<Expr>>,
}

/// `expr[range:step] offset .. @ ..`.
#[derive(Clone, Debug, PartialEq)]
pub struct SubqueryExpr {
    /// The inner expression (instant vector).
    pub expr: Box<Expr>,
    /// Range in milliseconds.
    pub range: i64,
    /// Step in milliseconds; `None` means the default evaluation interval.
    pub step: Option<i64>,
    /// `offset` in milliseconds.
    pub offset: i64,
    /// `@` modifier.
    pub at: Option<AtModifier>,
    /// Range, step and offset written as duration expressions that use
    /// `step()`/`range()` (see [`VectorSelector::offset_expr`]); the numeric
    /// field is 0 / `None` then.
    pub range_expr: Option<Box<Expr>>,
    /// See `range_expr`.
    pub step_expr: Option<Box<Expr>>,
    /// See `range_expr`.
    pub offset_expr: Option<Box<Expr>>,
}

/// Unary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnaryOp {
    /// `-`
    Neg,
    /// `+`
    Pos,
}

/// Binary operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/`
    Div,
    /// `%`
    Mod,
    /// `^`
    Pow,
    /// `atan2`
    Atan2,
    /// `==`
    Eql,
    /// `!=`
    Neq,
    /// `>`
    Gtr,
    /// `<`
    Lss,
    /// `>=`
    Gte,
    /// `<=`
    Lte,
    /// `and`
    And,
    /// `or`
    Or,
    /// `unless`
    Unless,
}

impl BinaryOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        use BinaryOp::*;
        match self {
            Add => "+",
            Sub => "-",
            Mul => "*",
            Div => "/",
            Mod => "%",
            Pow => "^",
            Atan2 => "atan2",
            Eql => "==",
            Neq => "!=",
            Gtr => ">",
            Lss => "<",
            Gte => ">=",
            Lte => "<=",
            And => "and",
            Or => "or",
            Unless => "unless",
        }
    }

    /// Comparison operators (`==`, `!=`, `>`, `<`, `>=`, `<=`).
    pub fn is_comparison(self) -> bool {
        use BinaryOp::*;
        matches!(self, Eql | Neq | Gtr | Lss | Gte | Lte)
    }

    /// Set operators (`and`, `or`, `unless`).
    pub fn is_set(self) -> bool {
        matches!(self, BinaryOp::And | BinaryOp::Or | BinaryOp::Unless)
    }

    /// Precedence, higher binds tighter (Prometheus: `or` 1, `and unless` 2,
    /// comparisons 3, `+ -` 4, `* / % atan2` 5, `^` 6).
    pub fn precedence(self) -> u8 {
        use BinaryOp::*;
        match self {
            Or => 1,
            And | Unless => 2,
            Eql | Neq | Gtr | Lss | Gte | Lte => 3,
            Add | Sub => 4,
            Mul | Div | Mod | Atan2 => 5,
            Pow => 6,
        }
    }

    /// `^` is right-associative; all others are left-associative.
    pub fn is_right_assoc(self) -> bool {
        self == BinaryOp::Pow
    }
}

/// Cardinality of a vector match.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cardinality {
    /// Default for arithmetic and comparisons.
    OneToOne,
    /// `group_left`
    ManyToOne,
    /// `group_right`
    OneToMany,
    /// Set operators.
    ManyToMany,
}

/// How the two sides of a vector/vector binary expression are matched.
#[derive(Clone, Debug, PartialEq)]
pub struct VectorMatching {
    /// Cardinality.
    pub card: Cardinality,
    /// `true` for `on(...)`, `false` for `ignoring(...)` (or no clause).
    pub on: bool,
    /// The labels of `on`/`ignoring`.
    pub labels: Vec<String>,
    /// Extra labels of `group_left(...)`/`group_right(...)`.
    pub include: Vec<String>,
}

/// `lhs op rhs`.
#[derive(Clone, Debug, PartialEq)]
pub struct BinaryExpr {
    /// Operator.
    pub op: BinaryOp,
    /// Left operand.
    pub lhs: Box<Expr>,
    /// Right operand.
    pub rhs: Box<Expr>,
    /// `bool` modifier on a comparison.
    pub return_bool: bool,
    /// Set by the parser when both operands are instant vectors (one-to-one
    /// by default, many-to-many for set operators); `None` otherwise.
    pub matching: Option<VectorMatching>,
    /// `fill(v)` / `fill_left(v)`: the value of a missing left-hand series
    /// (experimental; only with
    /// [`ParseOptions::fill_modifiers`](crate::parser::ParseOptions)).
    pub fill_lhs: Option<f64>,
    /// `fill(v)` / `fill_right(v)`: the value of a missing right-hand series.
    pub fill_rhs: Option<f64>,
}

/// Aggregation operators.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum AggregateOp {
    /// `sum`
    Sum,
    /// `avg`
    Avg,
    /// `count`
    Count,
    /// `min`
    Min,
    /// `max`
    Max,
    /// `group`
    Group,
    /// `stddev`
    Stddev,
    /// `stdvar`
    Stdvar,
    /// `topk`
    Topk,
    /// `bottomk`
    Bottomk,
    /// `count_values`
    CountValues,
    /// `quantile`
    Quantile,
    /// `limitk`
    Limitk,
    /// `limit_ratio`
    LimitRatio,
}

impl AggregateOp {
    /// The operator's name.
    pub fn as_str(self) -> &'static str {
        use AggregateOp::*;
        match self {
            Sum => "sum",
            Avg => "avg",
            Count => "count",
            Min => "min",
            Max => "max",
            Group => "group",
            Stddev => "stddev",
            Stdvar => "stdvar",
            Topk => "topk",
            Bottomk => "bottomk",
            CountValues => "count_values",
            Quantile => "quantile",
            Limitk => "limitk",
            LimitRatio => "limit_ratio",
        }
    }

    /// Whether the operator takes a parameter before the vector.
    pub fn has_param(self) -> bool {
        use AggregateOp::*;
        matches!(
            self,
            Topk | Bottomk | CountValues | Quantile | Limitk | LimitRatio
        )
    }
}

/// `op by (labels) (param, expr)`.
#[derive(Clone, Debug, PartialEq)]
pub struct AggregateExpr {
    /// Operator.
    pub op: AggregateOp,
    /// The vector being aggregated.
    pub expr: Box<Expr>,
    /// Parameter (`k`, `q`, label name ...), for operators that take one.
    pub param: Option<Box<Expr>>,
    /// The `by`/`without` labels.
    pub grouping: Vec<String>,
    /// `true` for `without`.
    pub without: bool,
}

/// `name(args...)`.
#[derive(Clone, Debug, PartialEq)]
pub struct Call {
    /// Function name (checked against the parser's function table).
    pub func: String,
    /// Arguments, type-checked.
    pub args: Vec<Expr>,
}

/// A PromQL expression.
#[derive(Clone, Debug, PartialEq)]
pub enum Expr {
    /// `1.5`, `0x1f`, `Inf`, `NaN`.
    Number(f64),
    /// `"text"`.
    String(String),
    /// Instant vector selector.
    VectorSelector(VectorSelector),
    /// Range vector selector.
    MatrixSelector(MatrixSelector),
    /// Subquery.
    Subquery(SubqueryExpr),
    /// `( expr )`.
    Paren(Box<Expr>),
    /// `-expr` / `+expr`.
    Unary(UnaryOp, Box<Expr>),
    /// Binary operation.
    Binary(BinaryExpr),
    /// Aggregation.
    Aggregate(AggregateExpr),
    /// Function call.
    Call(Call),
}
