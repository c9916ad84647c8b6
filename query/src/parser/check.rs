//! Node construction with Prometheus' type checks (`checkAST` in its
//! parser). Each function takes checked children and returns a checked node
//! or the error Prometheus would report, positioned on the offending node.

use crate::ast::{
    AggregateExpr, AggregateOp, AtModifier, BinaryExpr, BinaryOp, Call, Cardinality, Expr,
    MatrixSelector, Span, SubqueryExpr, UnaryOp, ValueType, VectorMatching, VectorSelector,
};
use crate::model::{Matcher, METRIC_NAME};

use super::duration::Resolved;
use super::expr::{Node, Parser};
use super::extended::Fill;
use super::functions::function_sig;
use super::lexer::Token;
use super::ParseError;
use super::EXPERIMENTAL_FUNCTIONS_FEATURE;

type PResult<T> = Result<T, ParseError>;

/// Modifiers written after a binary operator.
#[derive(Default)]
pub(crate) struct BinMods {
    /// Position of `bool`, if written.
    pub bool_pos: Option<usize>,
    /// `on` (true) / `ignoring` (false) and its labels.
    pub matching: Option<(bool, Vec<String>)>,
    /// `group_left` / `group_right` and its labels.
    pub group: Option<(Cardinality, Vec<String>)>,
    /// `fill(..)`, `fill_left(..)`, `fill_right(..)`.
    pub fill: Fill,
}

/// Go's `ValueType` string (used by a few Prometheus messages).
fn go_type(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::Vector => "vector",
        ValueType::Matrix => "matrix",
        ValueType::String => "string",
    }
}

fn err(pos: usize, msg: impl Into<String>) -> ParseError {
    ParseError::new(pos, msg)
}

/// `lhs op rhs`.
#[inline(never)]
pub(crate) fn binary(
    _p: &Parser<'_>,
    lhs: Node,
    op: BinaryOp,
    op_tok: &Token,
    mods: BinMods,
    rhs: Node,
) -> PResult<Node> {
    let (lt, rt) = (lhs.ty, rhs.ty);
    let opos = op_tok.start;
    let return_bool = mods.bool_pos.is_some();
    if return_bool && !op.is_comparison() {
        return Err(err(
            opos,
            "bool modifier can only be used on comparison operators",
        ));
    }
    if op.is_comparison() && !return_bool && lt == ValueType::Scalar && rt == ValueType::Scalar {
        return Err(err(
            opos,
            "comparisons between scalars must use BOOL modifier",
        ));
    }
    let (on, labels) = mods.matching.unwrap_or((false, Vec::new()));
    let (mut card, include) = mods.group.unwrap_or((Cardinality::OneToOne, Vec::new()));
    if on {
        if let Some(l) = labels.iter().find(|l| include.contains(l)) {
            return Err(err(
                opos,
                format!("label {l:?} must not occur in ON and GROUP clause at once"),
            ));
        }
    }
    for (side, t) in [(&lhs, lt), (&rhs, rt)] {
        if t != ValueType::Scalar && t != ValueType::Vector {
            return Err(err(
                side.span.start,
                "binary expression must contain only scalar and instant vector types",
            ));
        }
    }
    let both_vectors = lt == ValueType::Vector && rt == ValueType::Vector;
    let start = lhs.span.start;
    let matching = if !both_vectors {
        if !labels.is_empty() {
            return Err(err(
                start,
                "vector matching only allowed between instant vectors",
            ));
        }
        if mods.fill.is_set() {
            return Err(err(
                start,
                "filling in missing series only allowed between instant vectors",
            ));
        }
        None
    } else {
        if op.is_set() && mods.fill.is_set() {
            return Err(err(
                start,
                "filling in missing series not allowed for set operators",
            ));
        }
        if op.is_set() {
            if card != Cardinality::OneToOne {
                return Err(err(
                    start,
                    format!("no grouping allowed for {:?} operation", op.as_str()),
                ));
            }
            card = Cardinality::ManyToMany;
        }
        Some(VectorMatching {
            card,
            on,
            labels,
            include,
        })
    };
    if (lt == ValueType::Scalar || rt == ValueType::Scalar) && op.is_set() {
        return Err(err(
            start,
            format!(
                "set operator {:?} not allowed in binary scalar expression",
                op.as_str()
            ),
        ));
    }
    let ty = if lt == ValueType::Scalar && rt == ValueType::Scalar {
        ValueType::Scalar
    } else {
        ValueType::Vector
    };
    let span = Span {
        start,
        end: rhs.span.end,
    };
    Ok(Node {
        expr: Expr::Binary(BinaryExpr {
            op,
            lhs: Box::new(lhs.expr),
            rhs: Box::new(rhs.expr),
            return_bool,
            matching,
            fill_lhs: mods.fill.lhs,
            fill_rhs: mods.fill.rhs,
        }),
        span,
        ty,
    })
}

/// `-x` / `+x`; a number literal operand is folded into the literal.
#[inline(never)]
pub(crate) fn unary(op: UnaryOp, pos: usize, inner: Node) -> PResult<Node> {
    if inner.ty != ValueType::Scalar && inner.ty != ValueType::Vector {
        return Err(err(
            pos,
            format!(
                "unary expression only allowed on expressions of type scalar or instant vector, got {:?}",
                inner.ty.name()
            ),
        ));
    }
    let span = Span {
        start: pos,
        end: inner.span.end,
    };
    let expr = match (op, inner.expr) {
        (UnaryOp::Neg, Expr::Number(v)) => Expr::Number(-v),
        (UnaryOp::Pos, Expr::Number(v)) => Expr::Number(v),
        (op, e) => Expr::Unary(op, Box::new(e)),
    };
    Ok(Node {
        expr,
        span,
        ty: inner.ty,
    })
}

const MODIFIER_TARGETS: &str =
    "must be preceded by an instant vector selector or range vector selector or a subquery";

/// The offset, offset expression and `@` slots of a selector or subquery.
type Slots<'a> = (
    &'a mut i64,
    &'a mut Option<Box<Expr>>,
    &'a mut Option<AtModifier>,
);

fn modifier_slots(expr: &mut Expr) -> Option<Slots<'_>> {
    match expr {
        Expr::VectorSelector(vs) | Expr::MatrixSelector(MatrixSelector { vs, .. }) => {
            Some((&mut vs.offset, &mut vs.offset_expr, &mut vs.at))
        }
        Expr::Subquery(sq) => Some((&mut sq.offset, &mut sq.offset_expr, &mut sq.at)),
        _ => None,
    }
}

/// `x offset d`.
#[inline(never)]
pub(crate) fn set_offset(mut node: Node, offset: Resolved, end: usize) -> PResult<Node> {
    let start = node.span.start;
    let Some((slot, expr_slot, _)) = modifier_slots(&mut node.expr) else {
        return Err(err(start, format!("offset modifier {MODIFIER_TARGETS}")));
    };
    if *slot != 0 || expr_slot.is_some() {
        return Err(err(start, "offset may not be set multiple times"));
    }
    match offset {
        Resolved::Ms(ms) => *slot = ms,
        Resolved::Expr(e) => *expr_slot = Some(e),
    }
    node.span.end = end;
    Ok(node)
}

/// `x @ t`.
#[inline(never)]
pub(crate) fn set_at(mut node: Node, at: AtModifier, end: usize) -> PResult<Node> {
    let start = node.span.start;
    let Some((_, _, slot)) = modifier_slots(&mut node.expr) else {
        return Err(err(start, format!("@ modifier {MODIFIER_TARGETS}")));
    };
    if slot.is_some() {
        return Err(err(start, "@ <timestamp> may not be set multiple times"));
    }
    *slot = Some(at);
    node.span.end = end;
    Ok(node)
}

fn split(d: Resolved) -> (i64, Option<Box<Expr>>) {
    match d {
        Resolved::Ms(ms) => (ms, None),
        Resolved::Expr(e) => (0, Some(e)),
    }
}

/// `selector[range]`.
#[inline(never)]
pub(crate) fn matrix(node: Node, range: Resolved, bracket: usize, end: usize) -> PResult<Node> {
    let Expr::VectorSelector(vs) = node.expr else {
        return Err(err(bracket, "ranges only allowed for vector selectors"));
    };
    if vs.offset != 0 || vs.offset_expr.is_some() {
        return Err(err(bracket, "no offset modifiers allowed before range"));
    }
    if vs.at.is_some() {
        return Err(err(bracket, "no @ modifiers allowed before range"));
    }
    let (range, range_expr) = split(range);
    Ok(Node {
        expr: Expr::MatrixSelector(MatrixSelector {
            vs,
            range,
            range_expr,
        }),
        span: Span {
            start: node.span.start,
            end,
        },
        ty: ValueType::Matrix,
    })
}

/// `expr[range:step]`.
#[inline(never)]
pub(crate) fn subquery(
    node: Node,
    range: Resolved,
    step: Option<Resolved>,
    end: usize,
) -> PResult<Node> {
    if node.ty != ValueType::Vector {
        return Err(err(
            node.span.start,
            format!(
                "subquery is only allowed on instant vector, got {} instead",
                go_type(node.ty)
            ),
        ));
    }
    let (range, range_expr) = split(range);
    let (step, step_expr) = match step.map(split) {
        None => (None, None),
        Some((ms, None)) => (Some(ms), None),
        Some((_, e)) => (None, e),
    };
    Ok(Node {
        expr: Expr::Subquery(SubqueryExpr {
            expr: Box::new(node.expr),
            range,
            step,
            offset: 0,
            at: None,
            range_expr,
            step_expr,
            offset_expr: None,
        }),
        span: Span {
            start: node.span.start,
            end,
        },
        ty: ValueType::Matrix,
    })
}

/// `name(args)`: known function, arity, argument types.
#[inline(never)]
pub(crate) fn call(
    name: String,
    args: Vec<Node>,
    span: Span,
    experimental_functions: bool,
) -> PResult<Node> {
    let Some(f) = function_sig(&name) else {
        return Err(err(
            span.start,
            format!("unknown function with name {name:?}"),
        ));
    };
    if f.experimental && !experimental_functions {
        // Prometheus says `function "x" is not enabled`; the rest says how.
        return Err(err(
            span.start,
            format!(
                "function {name:?} is not enabled: it is experimental and must be enabled with --enable-feature={EXPERIMENTAL_FUNCTIONS_FEATURE}"
            ),
        ));
    }
    let nargs = f.arg_types.len();
    if f.variadic == 0 {
        if nargs != args.len() {
            return Err(err(
                span.start,
                format!(
                    "expected {nargs} argument(s) in call to {name:?}, got {}",
                    args.len()
                ),
            ));
        }
    } else {
        let min = nargs - 1;
        if min > args.len() {
            return Err(err(
                span.start,
                format!(
                    "expected at least {min} argument(s) in call to {name:?}, got {}",
                    args.len()
                ),
            ));
        }
        let max = min + f.variadic.max(0) as usize;
        if f.variadic > 0 && max < args.len() {
            return Err(err(
                span.start,
                format!(
                    "expected at most {max} argument(s) in call to {name:?}, got {}",
                    args.len()
                ),
            ));
        }
    }
    for (i, arg) in args.iter().enumerate() {
        let want = match f.arg_types.get(i) {
            Some(t) => *t,
            None if f.variadic == 0 => break,
            None => f.arg_types[nargs - 1],
        };
        if arg.ty != want {
            return Err(err(
                arg.span.start,
                format!(
                    "expected type {} in call to function {name:?}, got {}",
                    want.name(),
                    arg.ty.name()
                ),
            ));
        }
    }
    Ok(Node {
        expr: Expr::Call(Call {
            func: name,
            args: args.into_iter().map(|a| a.expr).collect(),
        }),
        span,
        ty: f.return_type,
    })
}

/// `op by (labels) (param, expr)`.
#[inline(never)]
pub(crate) fn aggregation(
    op: AggregateOp,
    grouping: Option<(bool, Vec<String>)>,
    mut args: Vec<Node>,
    span: Span,
    experimental_functions: bool,
) -> PResult<Node> {
    if args.is_empty() {
        return Err(err(
            span.start,
            "no arguments for aggregate expression provided",
        ));
    }
    if !experimental_functions && matches!(op, AggregateOp::Limitk | AggregateOp::LimitRatio) {
        return Err(err(
            span.start,
            format!(
                "{}() is experimental and must be enabled with --enable-feature={EXPERIMENTAL_FUNCTIONS_FEATURE}",
                op.as_str()
            ),
        ));
    }
    let want = if op.has_param() { 2 } else { 1 };
    if args.len() != want {
        return Err(err(
            span.start,
            format!(
                "wrong number of arguments for aggregate expression provided, expected {want}, got {}",
                args.len()
            ),
        ));
    }
    let expr = args
        .pop()
        .ok_or_else(|| err(span.start, "missing argument"))?;
    if expr.ty != ValueType::Vector {
        return Err(err(
            expr.span.start,
            format!(
                "expected type instant vector in aggregation expression, got {}",
                expr.ty.name()
            ),
        ));
    }
    let param = args.pop();
    if let Some(p) = &param {
        let want = if op == AggregateOp::CountValues {
            ValueType::String
        } else {
            ValueType::Scalar
        };
        if p.ty != want {
            return Err(err(
                p.span.start,
                format!(
                    "expected type {} in aggregation parameter, got {}",
                    want.name(),
                    p.ty.name()
                ),
            ));
        }
    }
    let (without, grouping) = grouping.unwrap_or((false, Vec::new()));
    Ok(Node {
        expr: Expr::Aggregate(AggregateExpr {
            op,
            expr: Box::new(expr.expr),
            param: param.map(|p| Box::new(p.expr)),
            grouping,
            without,
        }),
        span,
        ty: ValueType::Vector,
    })
}

/// `name{matchers}`: adds the name matcher and checks the selector can
/// select something specific.
#[inline(never)]
pub(crate) fn selector(
    name: Option<String>,
    mut matchers: Vec<Matcher>,
    span: Span,
) -> PResult<Node> {
    if let Some(n) = &name {
        if let Some(m) = matchers.iter().find(|m| m.name == METRIC_NAME) {
            return Err(err(
                span.start,
                format!("metric name must not be set twice: {n:?} or {:?}", m.value),
            ));
        }
        matchers.push(Matcher::equal(METRIC_NAME, n.clone()));
    } else if matchers.iter().all(Matcher::matches_empty) {
        return Err(err(
            span.start,
            "vector selector must contain at least one non-empty matcher",
        ));
    }
    Ok(Node {
        expr: Expr::VectorSelector(VectorSelector {
            name,
            matchers,
            offset: 0,
            offset_expr: None,
            at: None,
            anchored: false,
            smoothed: false,
        }),
        span,
        ty: ValueType::Vector,
    })
}

/// The label selector argument of `info()`, exempt from the non-empty
/// matcher rule.
#[inline(never)]
pub(crate) fn info_selector(matchers: Vec<Matcher>, span: Span) -> Node {
    Node {
        expr: Expr::VectorSelector(VectorSelector {
            name: None,
            matchers,
            offset: 0,
            offset_expr: None,
            at: None,
            anchored: false,
            smoothed: false,
        }),
        span,
        ty: ValueType::Vector,
    }
}
