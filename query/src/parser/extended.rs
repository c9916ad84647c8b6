//! Experimental Prometheus syntax behind [`ParseOptions`] switches:
//! binary-operator fill modifiers (`a + fill(0) b`, `fill_left(1)`,
//! `fill_right(2)`) and the `anchored` / `smoothed` range-selector
//! modifiers. Without the switch each is rejected with Prometheus' "is
//! experimental and not enabled" message.

use crate::ast::Expr;

use super::expr::{parse_number, Node, Parser};
use super::lexer::{Kw, Tok};
use super::{parse_duration_at, ParseError};

type PResult<T> = Result<T, ParseError>;

/// Fill values for missing series on the left and right of a binary
/// operator.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub(crate) struct Fill {
    pub lhs: Option<f64>,
    pub rhs: Option<f64>,
}

impl Fill {
    pub(crate) fn is_set(&self) -> bool {
        self.lhs.is_some() || self.rhs.is_some()
    }
}

impl Parser<'_> {
    /// `fill(v)`, `fill_left(v)`, `fill_right(v)`, or `fill_left(v)
    /// fill_right(w)` in either order, after the grouping modifiers.
    pub(crate) fn fill_modifiers(&mut self) -> PResult<Fill> {
        let mut fill = Fill::default();
        let t = *self.peek();
        let Tok::Ident {
            kw: Some(first @ (Kw::Fill | Kw::FillLeft | Kw::FillRight)),
        } = t.tok
        else {
            return Ok(fill);
        };
        if !self.opts.fill_modifiers {
            return Err(ParseError::new(
                t.start,
                "binop fill modifiers are experimental and not enabled",
            ));
        }
        self.bump();
        let v = self.fill_value()?;
        match first {
            Kw::Fill => {
                return Ok(Fill {
                    lhs: Some(v),
                    rhs: Some(v),
                })
            }
            Kw::FillLeft => fill.lhs = Some(v),
            _ => fill.rhs = Some(v),
        }
        let second = if first == Kw::FillLeft {
            Kw::FillRight
        } else {
            Kw::FillLeft
        };
        if matches!(self.peek().tok, Tok::Ident { kw: Some(k) } if k == second) {
            self.bump();
            let w = self.fill_value()?;
            if second == Kw::FillRight {
                fill.rhs = Some(w);
            } else {
                fill.lhs = Some(w);
            }
        }
        Ok(fill)
    }

    /// `(number)` or `(-number)`.
    fn fill_value(&mut self) -> PResult<f64> {
        self.expect(Tok::LParen, "fill modifier", "\"(\"")?;
        let mut neg = false;
        if matches!(self.peek().tok, Tok::Add | Tok::Sub) {
            neg = self.bump().tok == Tok::Sub;
        }
        let t = self.bump();
        let v = match t.tok {
            Tok::Number => parse_number(t.text(self.src), t.start)?,
            Tok::Duration => parse_duration_at(t.text(self.src), t.start)? as f64 / 1000.0,
            _ => return Err(self.unexpected(&t, "fill modifier", "number")),
        };
        self.expect(Tok::RParen, "fill modifier", "\")\"")?;
        Ok(if neg { -v } else { v })
    }

    /// `x anchored` / `x smoothed` on a vector or range selector.
    pub(crate) fn extended_selector(&mut self, mut node: Node, anchored: bool) -> PResult<Node> {
        let t = self.bump();
        let (name, other) = if anchored {
            ("anchored", "smoothed")
        } else {
            ("smoothed", "anchored")
        };
        if !self.opts.extended_range_selectors {
            return Err(ParseError::new(
                t.start,
                format!("{name} modifier is experimental and not enabled"),
            ));
        }
        let vs = match &mut node.expr {
            Expr::VectorSelector(vs) => vs,
            Expr::MatrixSelector(ms) => &mut ms.vs,
            Expr::Subquery(_) => {
                return Err(ParseError::new(
                    node.span.start,
                    format!("{name} modifier is not supported for subqueries"),
                ))
            }
            _ => {
                return Err(ParseError::new(
                    node.span.start,
                    format!("{name} modifier not implemented"),
                ))
            }
        };
        let (this, that) = if anchored {
            (&mut vs.anchored, vs.smoothed)
        } else {
            (&mut vs.smoothed, vs.anchored)
        };
        *this = true;
        if that {
            return Err(ParseError::new(
                node.span.start,
                format!("{other} and {name} modifiers cannot be used together")
                    .replace("smoothed and anchored", "anchored and smoothed"),
            ));
        }
        node.span.end = t.end;
        Ok(node)
    }
}

/// All experimental syntax switched on (tests, round trips).
#[cfg(test)]
pub(crate) fn all_options() -> super::ParseOptions {
    super::ParseOptions::ALL
}
