//! Duration expressions (Prometheus' experimental `promql-duration-expr`):
//! `foo[5m + 30s]`, `foo[1h:step() * 2]`, `foo offset (1h / 2)`,
//! `foo offset -min_of(step(), 1m)`.
//!
//! Values are seconds (`5m` is 300). Constant expressions are folded at parse
//! time into the millisecond fields of the AST, with Prometheus' rules
//! (`duration must be greater than 0`, division by zero ...). Expressions
//! using `step()` or `range()` depend on the query and are kept as scalar
//! expressions in the `*_expr` fields, only when
//! [`ParseOptions::duration_expr_functions`](super::ParseOptions) is set.

use crate::ast::{BinaryExpr, BinaryOp, Call, Expr, UnaryOp};

use super::expr::{parse_number, Parser};
use super::lexer::{Kw, Tok};
use super::{parse_duration_at, ParseError};

type PResult<T> = Result<T, ParseError>;

/// A parsed duration expression.
pub(crate) struct Dur {
    /// The expression (numbers in seconds).
    pub expr: Expr,
    /// Its value in seconds when it does not depend on the query.
    pub value: Option<f64>,
    /// A plain (possibly signed) literal: Prometheus rounds these to the
    /// nanosecond and truncates computed values to the millisecond.
    pub literal: bool,
    /// Where it starts.
    pub start: usize,
}

/// A duration resolved for the AST: milliseconds, or an expression.
pub(crate) enum Resolved {
    Ms(i64),
    Expr(Box<Expr>),
}

const EXPECTED: &str = "number, duration, step(), or range()";

fn dur_op(t: &Tok) -> Option<BinaryOp> {
    Some(match t {
        Tok::Add => BinaryOp::Add,
        Tok::Sub => BinaryOp::Sub,
        Tok::Mul => BinaryOp::Mul,
        Tok::Div => BinaryOp::Div,
        Tok::Mod => BinaryOp::Mod,
        Tok::Pow => BinaryOp::Pow,
        _ => return None,
    })
}

impl Parser<'_> {
    /// A full duration expression (inside `[...]`).
    pub(crate) fn dur_expr(&mut self, min_prec: u8, context: &str) -> PResult<Dur> {
        let start = self.peek().start;
        self.enter(start)?;
        let mut lhs = self.dur_unary(context)?;
        while let Some(op) = dur_op(&self.peek().tok) {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            let op_pos = self.bump().start;
            let next = if op.is_right_assoc() { prec } else { prec + 1 };
            let rhs = self.dur_expr(next, context)?;
            lhs = combine(op, op_pos, lhs, rhs)?;
        }
        self.leave();
        Ok(lhs)
    }

    /// `-d` / `+d`, binding like `*` (so `-2^2` is `-(2^2)`).
    fn dur_unary(&mut self, context: &str) -> PResult<Dur> {
        let t = *self.peek();
        let neg = match t.tok {
            Tok::Sub => true,
            Tok::Add => false,
            _ => return self.dur_primary(context),
        };
        self.bump();
        let inner = self.dur_expr(BinaryOp::Pow.precedence(), context)?;
        Ok(negate(inner, neg, t.start))
    }

    fn dur_primary(&mut self, context: &str) -> PResult<Dur> {
        let t = self.bump();
        let text = t.text(self.src);
        let number = |secs: f64| Dur {
            expr: Expr::Number(secs),
            value: Some(secs),
            literal: true,
            start: t.start,
        };
        match t.tok {
            Tok::Number => Ok(number(parse_number(text, t.start)?)),
            Tok::Duration => Ok(number(parse_duration_at(text, t.start)? as f64 / 1000.0)),
            Tok::LParen => {
                let inner = self.dur_expr(0, context)?;
                self.expect(Tok::RParen, "duration expression", "\")\"")?;
                Ok(Dur {
                    expr: Expr::Paren(Box::new(inner.expr)),
                    value: inner.value,
                    literal: false,
                    start: t.start,
                })
            }
            Tok::Ident {
                kw: Some(kw @ (Kw::Step | Kw::Range)),
            } => {
                self.expect(Tok::LParen, "duration expression", "\"(\"")?;
                self.expect(Tok::RParen, "duration expression", "\")\"")?;
                let func = if kw == Kw::Step { "step" } else { "range" };
                Ok(Dur {
                    expr: Expr::Call(Call {
                        func: func.to_string(),
                        args: Vec::new(),
                    }),
                    value: None,
                    literal: false,
                    start: t.start,
                })
            }
            Tok::Ident {
                kw: Some(kw @ (Kw::MinOf | Kw::MaxOf)),
            } => self.min_max_of(kw == Kw::MinOf, t.start, context),
            _ => Err(self.unexpected(&t, context, EXPECTED)),
        }
    }

    fn min_max_of(&mut self, min: bool, start: usize, context: &str) -> PResult<Dur> {
        self.expect(Tok::LParen, "duration expression", "\"(\"")?;
        let a = self.dur_expr(0, context)?;
        self.expect(Tok::Comma, "duration expression", "\",\"")?;
        let b = self.dur_expr(0, context)?;
        self.expect(Tok::RParen, "duration expression", "\")\"")?;
        let value = match (a.value, b.value) {
            (Some(x), Some(y)) if min => Some(x.min(y)),
            (Some(x), Some(y)) => Some(x.max(y)),
            _ => None,
        };
        Ok(Dur {
            expr: Expr::Call(Call {
                func: if min { "min_of" } else { "max_of" }.to_string(),
                args: vec![a.expr, b.expr],
            }),
            value,
            literal: false,
            start,
        })
    }

    /// The value after `offset`: a signed literal, `step()`, `range()`,
    /// `min_of(..)`/`max_of(..)` or a parenthesised expression; operators
    /// after it belong to the enclosing expression (`x offset 1m + 2`).
    pub(crate) fn offset_value(&mut self) -> PResult<Resolved> {
        let start = self.peek().start;
        let neg = match self.peek().tok {
            Tok::Sub => {
                self.bump();
                true
            }
            Tok::Add => {
                self.bump();
                false
            }
            _ => false,
        };
        let d = self.dur_primary("offset")?;
        let d = if start == d.start {
            d
        } else {
            negate(d, neg, start)
        };
        self.resolve(d, true)
    }

    /// A range or step inside brackets, which must be positive.
    pub(crate) fn bracket_duration(&mut self, context: &str) -> PResult<Resolved> {
        let d = self.dur_expr(0, context)?;
        self.resolve(d, false)
    }

    /// Folds a constant to milliseconds with Prometheus' checks, or keeps
    /// an expression that needs `step()`/`range()` when that is enabled.
    fn resolve(&self, d: Dur, allow_negative: bool) -> PResult<Resolved> {
        let Some(v) = d.value else {
            if !self.opts.duration_expr_functions {
                return Err(ParseError::new(
                    d.start,
                    "step() and range() in duration expressions are not enabled",
                ));
            }
            return Ok(Resolved::Expr(Box::new(d.expr)));
        };
        let out_of_range =
            v.is_nan() || v > (1u64 << 63) as f64 / 1e9 || v < -((1u64 << 63) as f64) / 1e9;
        if d.literal && out_of_range {
            return Err(ParseError::new(d.start, "duration out of range"));
        }
        if !v.is_finite() {
            return Err(ParseError::new(d.start, "duration is NaN or infinite"));
        }
        if !allow_negative && v <= 0.0 {
            return Err(ParseError::new(d.start, "duration must be greater than 0"));
        }
        if out_of_range {
            return Err(ParseError::new(d.start, "duration is out of range"));
        }
        let ms = if d.literal {
            (v * 1000.0).round()
        } else {
            (v * 1000.0).trunc()
        };
        Ok(Resolved::Ms(ms as i64))
    }
}

/// Applies a unary sign; literals absorb it.
fn negate(d: Dur, neg: bool, start: usize) -> Dur {
    if !neg {
        return Dur { start, ..d };
    }
    let value = d.value.map(|v| -v);
    let expr = match d.expr {
        Expr::Number(v) if d.literal => Expr::Number(-v),
        e => Expr::Unary(UnaryOp::Neg, Box::new(e)),
    };
    Dur {
        expr,
        value,
        literal: d.literal,
        start,
    }
}

fn combine(op: BinaryOp, op_pos: usize, lhs: Dur, rhs: Dur) -> PResult<Dur> {
    let value = match (lhs.value, rhs.value) {
        (Some(a), Some(b)) => Some(match op {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div if b == 0.0 => return Err(ParseError::new(op_pos, "division by zero")),
            BinaryOp::Div => a / b,
            BinaryOp::Mod if b == 0.0 => return Err(ParseError::new(op_pos, "modulo by zero")),
            BinaryOp::Mod => a % b,
            _ => a.powf(b),
        }),
        _ if rhs.literal && rhs.value == Some(0.0) && op == BinaryOp::Div => {
            return Err(ParseError::new(op_pos, "division by zero"))
        }
        _ if rhs.literal && rhs.value == Some(0.0) && op == BinaryOp::Mod => {
            return Err(ParseError::new(op_pos, "modulo by zero"))
        }
        _ => None,
    };
    Ok(Dur {
        start: lhs.start,
        expr: Expr::Binary(BinaryExpr {
            op,
            lhs: Box::new(lhs.expr),
            rhs: Box::new(rhs.expr),
            return_bool: false,
            matching: None,
            fill_lhs: None,
            fill_rhs: None,
        }),
        value,
        literal: false,
    })
}
