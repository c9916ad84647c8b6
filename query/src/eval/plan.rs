//! Before evaluation: the time range every selector of a query needs, so the
//! engine can fetch each once (Prometheus' `getTimeRangesForSelector`).

use std::borrow::Cow;

use crate::ast::{AtModifier, Call, Expr, VectorSelector};
use crate::model::Matcher;

/// A selection to fetch: its key in the fetched data (see
/// [`super::sel_key`] / [`super::info::info_key`]), matchers and inclusive
/// time range.
pub(crate) struct Fetch<'e> {
    pub key: usize,
    pub matchers: Cow<'e, [Matcher]>,
    pub min_t: i64,
    pub max_t: i64,
}

impl<'e> Fetch<'e> {
    fn selector(sel: &'e VectorSelector, min_t: i64, max_t: i64) -> Self {
        Fetch {
            key: super::sel_key(sel),
            matchers: Cow::Borrowed(&sel.matchers),
            min_t,
            max_t,
        }
    }
}

/// Query-wide parameters of the plan.
pub(crate) struct PlanCtx {
    /// Query start (first step), also `@ start()`.
    pub start: i64,
    /// Last step of the query.
    pub end: i64,
    /// The query's `end` parameter, for `@ end()`: after the last step when
    /// `end - start` is not a multiple of the step.
    pub at_end: i64,
    pub lookback: i64,
}

impl PlanCtx {
    fn at(&self, at: &Option<AtModifier>) -> Option<i64> {
        at.map(|a| match a {
            AtModifier::Timestamp(t) => t,
            AtModifier::Start => self.start,
            AtModifier::End => self.at_end,
        })
    }
}

/// Lists every selector of `expr` with its time range.
pub(crate) fn selectors<'e>(expr: &'e Expr, ctx: &PlanCtx) -> Vec<Fetch<'e>> {
    let mut out = Vec::new();
    walk(expr, ctx, ctx.start, ctx.end, &mut out);
    out
}

fn selector_range(
    vs: &VectorSelector,
    ctx: &PlanCtx,
    start: i64,
    end: i64,
    range: Option<i64>,
) -> (i64, i64) {
    let (s, e) = match ctx.at(&vs.at) {
        Some(t) => (t, t),
        None => (start, end),
    };
    let back = range.unwrap_or(ctx.lookback);
    (s - vs.offset - back + 1, e - vs.offset)
}

fn walk<'e>(expr: &'e Expr, ctx: &PlanCtx, start: i64, end: i64, out: &mut Vec<Fetch<'e>>) {
    match expr {
        Expr::Number(_) | Expr::String(_) => {}
        Expr::VectorSelector(vs) => {
            let (min_t, max_t) = selector_range(vs, ctx, start, end, None);
            out.push(Fetch::selector(vs, min_t, max_t));
        }
        Expr::MatrixSelector(ms) => {
            let (min_t, max_t) = selector_range(&ms.vs, ctx, start, end, Some(ms.range));
            out.push(Fetch::selector(&ms.vs, min_t, max_t));
        }
        Expr::Subquery(sq) => {
            let (s, e) = match ctx.at(&sq.at) {
                Some(t) => (t, t),
                None => (start, end),
            };
            walk(&sq.expr, ctx, s - sq.offset - sq.range, e - sq.offset, out);
        }
        Expr::Paren(e) | Expr::Unary(_, e) => walk(e, ctx, start, end, out),
        Expr::Binary(b) => {
            walk(&b.lhs, ctx, start, end, out);
            walk(&b.rhs, ctx, start, end, out);
        }
        Expr::Aggregate(a) => {
            if let Some(p) = &a.param {
                walk(p, ctx, start, end, out);
            }
            walk(&a.expr, ctx, start, end, out);
        }
        Expr::Call(c) if c.func == "info" => {
            if let Some(first) = c.args.first() {
                walk(first, ctx, start, end, out);
            }
            out.push(info_fetch(c, ctx, start, end));
        }
        Expr::Call(c) => {
            for a in &c.args {
                walk(a, ctx, start, end, out);
            }
        }
    }
}

/// `info(v, {selector})`: the info series are fetched with the static part
/// of upstream's selection (name and data-label matchers) over the range of
/// the first selector in `v`; identifying labels are matched in memory.
fn info_fetch<'e>(c: &'e Call, ctx: &PlanCtx, start: i64, end: i64) -> Fetch<'e> {
    let (at, offset) = c
        .args
        .first()
        .map(super::info::first_selector_time)
        .unwrap_or((None, 0));
    let (s, e) = match ctx.at(&at) {
        Some(t) => (t, t),
        None => (start, end),
    };
    Fetch {
        key: super::info::info_key(c),
        matchers: Cow::Owned(super::info::fetch_matchers(c)),
        min_t: s - ctx.lookback + 1 - offset,
        max_t: e - offset,
    }
}
