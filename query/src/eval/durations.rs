//! Duration expressions that use `step()` / `range()` (experimental
//! `promql-duration-expr`): computed once per query, before planning, into
//! the numeric `offset` / `range` / `step` fields of the AST.

use crate::ast::{BinaryOp, Expr, UnaryOp};

/// Whether any selector or subquery of `e` carries a duration expression.
pub(crate) fn has_duration_exprs(e: &Expr) -> bool {
    match e {
        Expr::Number(_) | Expr::String(_) => false,
        Expr::VectorSelector(vs) => vs.offset_expr.is_some(),
        Expr::MatrixSelector(ms) => ms.range_expr.is_some() || ms.vs.offset_expr.is_some(),
        Expr::Subquery(sq) => {
            sq.range_expr.is_some()
                || sq.step_expr.is_some()
                || sq.offset_expr.is_some()
                || has_duration_exprs(&sq.expr)
        }
        Expr::Paren(x) | Expr::Unary(_, x) => has_duration_exprs(x),
        Expr::Binary(b) => has_duration_exprs(&b.lhs) || has_duration_exprs(&b.rhs),
        Expr::Aggregate(a) => {
            has_duration_exprs(&a.expr) || a.param.as_deref().is_some_and(has_duration_exprs)
        }
        Expr::Call(c) => c.args.iter().any(has_duration_exprs),
    }
}

/// Query context for `step()` (0 for instant queries) and `range()`.
pub(crate) struct DurationCtx {
    pub step_ms: i64,
    pub range_ms: i64,
}

fn value(e: &Expr, ctx: &DurationCtx) -> Result<f64, String> {
    Ok(match e {
        Expr::Number(v) => *v,
        Expr::Paren(x) => value(x, ctx)?,
        Expr::Unary(UnaryOp::Neg, x) => -value(x, ctx)?,
        Expr::Unary(UnaryOp::Pos, x) => value(x, ctx)?,
        Expr::Call(c) => match c.func.as_str() {
            "step" => ctx.step_ms as f64 / 1000.0,
            "range" => ctx.range_ms as f64 / 1000.0,
            "min_of" | "max_of" if c.args.len() == 2 => {
                let (a, b) = (value(&c.args[0], ctx)?, value(&c.args[1], ctx)?);
                if c.func == "min_of" {
                    super::gomath::go_min(a, b)
                } else {
                    super::gomath::go_max(a, b)
                }
            }
            f => return Err(format!("unexpected function {f:?} in duration expression")),
        },
        Expr::Binary(b) => {
            let (l, r) = (value(&b.lhs, ctx)?, value(&b.rhs, ctx)?);
            match b.op {
                BinaryOp::Add => l + r,
                BinaryOp::Sub => l - r,
                BinaryOp::Mul => l * r,
                BinaryOp::Div if r == 0.0 => return Err("division by zero".into()),
                BinaryOp::Div => l / r,
                BinaryOp::Mod if r == 0.0 => return Err("modulo by zero".into()),
                BinaryOp::Mod => l % r,
                BinaryOp::Pow => l.powf(r),
                op => {
                    return Err(format!(
                        "unexpected duration expression operator {:?}",
                        op.as_str()
                    ))
                }
            }
        }
        _ => return Err("unexpected duration expression".into()),
    })
}

/// A duration in ms from a duration expression (seconds), as upstream's
/// `calculateDuration`.
fn duration(e: &Expr, ctx: &DurationCtx, allow_negative: bool) -> Result<i64, String> {
    let d = value(e, ctx)?;
    if d.is_nan() || d.is_infinite() {
        return Err("duration is NaN or infinite".into());
    }
    if d <= 0.0 && !allow_negative {
        return Err("duration must be greater than 0".into());
    }
    if d.abs() > 9_223_372_036.854_775 {
        return Err("duration is out of range".into());
    }
    Ok((d * 1000.0) as i64)
}

/// Replaces every duration expression in `e` by its value.
pub(crate) fn resolve(e: &mut Expr, ctx: &DurationCtx) -> Result<(), String> {
    match e {
        Expr::Number(_) | Expr::String(_) => Ok(()),
        Expr::VectorSelector(vs) => {
            if let Some(x) = vs.offset_expr.take() {
                vs.offset = duration(&x, ctx, true)?;
            }
            Ok(())
        }
        Expr::MatrixSelector(ms) => {
            if let Some(x) = ms.range_expr.take() {
                ms.range = duration(&x, ctx, false)?;
            }
            if let Some(x) = ms.vs.offset_expr.take() {
                ms.vs.offset = duration(&x, ctx, true)?;
            }
            Ok(())
        }
        Expr::Subquery(sq) => {
            if let Some(x) = sq.offset_expr.take() {
                sq.offset = duration(&x, ctx, true)?;
            }
            if let Some(x) = sq.step_expr.take() {
                sq.step = Some(duration(&x, ctx, false)?);
            }
            if let Some(x) = sq.range_expr.take() {
                sq.range = duration(&x, ctx, false)?;
            }
            resolve(&mut sq.expr, ctx)
        }
        Expr::Paren(x) | Expr::Unary(_, x) => resolve(x, ctx),
        Expr::Binary(b) => {
            resolve(&mut b.lhs, ctx)?;
            resolve(&mut b.rhs, ctx)
        }
        Expr::Aggregate(a) => {
            if let Some(p) = a.param.as_deref_mut() {
                resolve(p, ctx)?;
            }
            resolve(&mut a.expr, ctx)
        }
        Expr::Call(c) => c.args.iter_mut().try_for_each(|a| resolve(a, ctx)),
    }
}
