//! The PromQL grammar over the token stream: recursive descent for terms,
//! precedence climbing for binary operators, postfix loop for `[..]`,
//! `offset` and `@`. Types are checked as nodes are built (Prometheus'
//! `checkAST` rules and messages).

use crate::ast::{AggregateOp, AtModifier, BinaryOp, Cardinality, Expr, Span, UnaryOp, ValueType};
use crate::model::{MatchOp, Matcher, METRIC_NAME};

use super::check;
use super::lexer::{lex, Kw, Tok, Token};
use super::{parse_duration_at, ParseError, ParseOptions, MAX_DEPTH};

/// A parsed node: the expression, where it is in the input, and its type.
pub(crate) struct Node {
    pub expr: Expr,
    pub span: Span,
    pub ty: ValueType,
}

type PResult<T> = Result<T, ParseError>;

pub(crate) struct Parser<'a> {
    pub src: &'a str,
    pub opts: ParseOptions,
    toks: Vec<Token>,
    strings: Vec<String>,
    i: usize,
    depth: usize,
}

/// Parses a whole query.
pub(crate) fn parse_expr(src: &str, opts: ParseOptions) -> PResult<Expr> {
    let mut p = Parser::new(src)?;
    p.opts = opts;
    if p.peek().tok == Tok::Eof {
        return Err(ParseError::new(0, "no expression found in input"));
    }
    let node = p.expr(0)?;
    p.expect_eof()?;
    Ok(node.expr)
}

/// Parses a lone series selector (`foo{a="b"}`, `{a="b"}`) into matchers.
pub(crate) fn parse_selector_only(src: &str) -> PResult<Vec<Matcher>> {
    let mut p = Parser::new(src)?;
    let t = *p.peek();
    let node = match t.tok {
        Tok::LBrace => p.selector(None, t.start)?,
        Tok::Ident { kw } if kw.is_none_or(Kw::is_metric_identifier) => {
            p.bump();
            p.selector(Some(t.text(src).to_string()), t.start)?
        }
        _ => return Err(p.unexpected(&t, "", "")),
    };
    p.expect_eof()?;
    match node.expr {
        Expr::VectorSelector(vs) => Ok(vs.matchers),
        _ => Err(ParseError::new(0, "expected a series selector")),
    }
}

fn binary_op(t: &Token) -> Option<BinaryOp> {
    use BinaryOp::*;
    Some(match &t.tok {
        Tok::Add => Add,
        Tok::Sub => Sub,
        Tok::Mul => Mul,
        Tok::Div => Div,
        Tok::Mod => Mod,
        Tok::Pow => Pow,
        Tok::Eqlc => Eql,
        Tok::Neq => Neq,
        Tok::Gtr => Gtr,
        Tok::Lss => Lss,
        Tok::Gte => Gte,
        Tok::Lte => Lte,
        Tok::Ident { kw: Some(Kw::And) } => And,
        Tok::Ident { kw: Some(Kw::Or) } => Or,
        Tok::Ident {
            kw: Some(Kw::Unless),
        } => Unless,
        Tok::Ident {
            kw: Some(Kw::Atan2),
        } => Atan2,
        _ => return None,
    })
}

fn aggregate_op(kw: Kw) -> Option<AggregateOp> {
    use AggregateOp::*;
    Some(match kw {
        Kw::Sum => Sum,
        Kw::Avg => Avg,
        Kw::Count => Count,
        Kw::Min => Min,
        Kw::Max => Max,
        Kw::Group => Group,
        Kw::Stddev => Stddev,
        Kw::Stdvar => Stdvar,
        Kw::Topk => Topk,
        Kw::Bottomk => Bottomk,
        Kw::CountValues => CountValues,
        Kw::Quantile => Quantile,
        Kw::Limitk => Limitk,
        Kw::LimitRatio => LimitRatio,
        _ => return None,
    })
}

fn span(start: usize, end: usize) -> Span {
    Span { start, end }
}

/// Parses number text as Prometheus does (Go `ParseInt(s, 0, 64)`, then
/// `ParseFloat`): decimal, `0x` hex, leading-zero octal, `_` separators,
/// exponents, `Inf`, `NaN`.
#[inline(never)]
pub(crate) fn parse_number(text: &str, pos: usize) -> PResult<f64> {
    let lower = text.to_ascii_lowercase();
    match lower.as_str() {
        "inf" | "+inf" => return Ok(f64::INFINITY),
        "-inf" => return Ok(f64::NEG_INFINITY),
        "nan" | "+nan" | "-nan" => return Ok(f64::NAN),
        _ => {}
    }
    let fail = |why: &str| {
        ParseError::new(
            pos,
            format!("error parsing number: strconv.ParseFloat: parsing {text:?}: {why}"),
        )
    };
    let clean: String = lower.chars().filter(|&c| c != '_').collect();
    if let Some(hex) = clean.strip_prefix("0x") {
        return match i64::from_str_radix(hex, 16) {
            Ok(v) => Ok(v as f64),
            Err(_) => Err(fail("invalid syntax")),
        };
    }
    if clean.len() > 1 && clean.starts_with('0') && clean.bytes().all(|b| b.is_ascii_digit()) {
        if let Ok(v) = i64::from_str_radix(&clean[1..], 8) {
            return Ok(v as f64);
        }
    }
    match clean.parse::<f64>() {
        Ok(v) if v.is_infinite() => Err(fail("value out of range")),
        Ok(v) => Ok(v),
        Err(_) => Err(fail("invalid syntax")),
    }
}

impl<'a> Parser<'a> {
    fn new(src: &'a str) -> PResult<Self> {
        let (toks, strings) = lex(src)?;
        Ok(Parser {
            src,
            opts: ParseOptions::default(),
            toks,
            strings,
            i: 0,
            depth: 0,
        })
    }

    /// Takes the value of string token `n` (each is consumed once).
    fn take_str(&mut self, n: usize) -> String {
        self.strings
            .get_mut(n)
            .map(std::mem::take)
            .unwrap_or_default()
    }

    pub(crate) fn peek(&self) -> &Token {
        // The token list always ends with Eof and `bump` never passes it.
        &self.toks[self.i.min(self.toks.len() - 1)]
    }

    fn peek_at(&self, n: usize) -> &Token {
        &self.toks[(self.i + n).min(self.toks.len() - 1)]
    }

    pub(crate) fn bump(&mut self) -> Token {
        let t = *self.peek();
        if t.tok != Tok::Eof {
            self.i += 1;
        }
        t
    }

    fn prev_end(&self) -> usize {
        if self.i == 0 {
            0
        } else {
            self.toks[self.i - 1].end
        }
    }

    fn is_kw(&self, kw: Kw) -> bool {
        matches!(self.peek().tok, Tok::Ident { kw: Some(k) } if k == kw)
    }

    #[inline(never)]
    pub(crate) fn unexpected(&self, t: &Token, context: &str, expected: &str) -> ParseError {
        let mut msg = format!("unexpected {}", t.desc(self.src));
        if !context.is_empty() {
            msg.push_str(" in ");
            msg.push_str(context);
        }
        if !expected.is_empty() {
            msg.push_str(", expected ");
            msg.push_str(expected);
        }
        ParseError::new(t.start, msg)
    }

    #[inline(never)]
    pub(crate) fn expect(&mut self, tok: Tok, context: &str, expected: &str) -> PResult<Token> {
        if self.peek().tok == tok {
            Ok(self.bump())
        } else {
            Err(self.unexpected(self.peek(), context, expected))
        }
    }

    #[inline(never)]
    fn expect_eof(&mut self) -> PResult<()> {
        let t = self.peek();
        if t.tok == Tok::Eof {
            Ok(())
        } else {
            Err(self.unexpected(t, "", ""))
        }
    }

    pub(crate) fn enter(&mut self, pos: usize) -> PResult<()> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(too_deep(pos));
        }
        Ok(())
    }

    pub(crate) fn leave(&mut self) {
        self.depth -= 1;
    }

    /// Binary expressions with operators of precedence `>= min_prec`.
    pub(crate) fn expr(&mut self, min_prec: u8) -> PResult<Node> {
        let start = self.peek().start;
        self.enter(start)?;
        let mut lhs = self.unary()?;
        let mut chain = 0;
        while let Some(op) = binary_op(self.peek()) {
            let prec = op.precedence();
            if prec < min_prec {
                break;
            }
            let op_tok = self.bump();
            let mods = self.bin_modifiers()?;
            let next_min = if op.is_right_assoc() { prec } else { prec + 1 };
            let rhs = self.expr(next_min)?;
            chain += 1;
            if self.depth + chain > MAX_DEPTH {
                return Err(too_deep(op_tok.start));
            }
            lhs = check::binary(self, lhs, op, &op_tok, mods, rhs)?;
        }
        self.depth -= 1;
        Ok(lhs)
    }

    /// `bool`, `on(..)`/`ignoring(..)`, `group_left(..)`/`group_right(..)`.
    #[inline(never)]
    fn bin_modifiers(&mut self) -> PResult<check::BinMods> {
        let mut m = check::BinMods::default();
        if self.is_kw(Kw::Bool) {
            m.bool_pos = Some(self.bump().start);
        }
        if self.is_kw(Kw::On) || self.is_kw(Kw::Ignoring) {
            let on = self.is_kw(Kw::On);
            self.bump();
            m.matching = Some((on, self.grouping_labels()?));
            if self.is_kw(Kw::GroupLeft) || self.is_kw(Kw::GroupRight) {
                let card = if self.is_kw(Kw::GroupLeft) {
                    Cardinality::ManyToOne
                } else {
                    Cardinality::OneToMany
                };
                self.bump();
                let include = if self.peek().tok == Tok::LParen {
                    self.grouping_labels()?
                } else {
                    Vec::new()
                };
                m.group = Some((card, include));
            }
        }
        m.fill = self.fill_modifiers()?;
        Ok(m)
    }

    /// `(label, "label", ...)`.
    #[inline(never)]
    fn grouping_labels(&mut self) -> PResult<Vec<String>> {
        self.expect(Tok::LParen, "grouping opts", "\"(\"")?;
        let mut labels = Vec::new();
        loop {
            let t = self.bump();
            match &t.tok {
                Tok::RParen => return Ok(labels),
                Tok::Ident { kw } if *kw != Some(Kw::Without) => {
                    labels.push(t.text(self.src).to_string())
                }
                Tok::Str(n) => {
                    let s = self.take_str(*n);
                    if s.is_empty() {
                        return Err(ParseError::new(
                            t.start,
                            format!("invalid label name for grouping: {s:?}"),
                        ));
                    }
                    labels.push(s)
                }
                _ => return Err(self.unexpected(&t, "grouping opts", "label")),
            }
            let t = self.bump();
            match t.tok {
                Tok::Comma => {}
                Tok::RParen => return Ok(labels),
                _ => return Err(self.unexpected(&t, "grouping opts", "\",\" or \")\"")),
            }
        }
    }

    /// Unary `-`/`+` (binding like `*`, so `-a^b` is `-(a^b)`), then a
    /// postfix expression.
    fn unary(&mut self) -> PResult<Node> {
        let t = *self.peek();
        let op = match t.tok {
            Tok::Sub => UnaryOp::Neg,
            Tok::Add => UnaryOp::Pos,
            _ => return self.postfix(),
        };
        self.bump();
        let inner = self.expr(BinaryOp::Pow.precedence())?;
        check::unary(op, t.start, inner)
    }

    /// A primary expression followed by `[range]`, `[range:step]`, `offset`
    /// and `@` modifiers.
    fn postfix(&mut self) -> PResult<Node> {
        let mut node = self.primary()?;
        loop {
            let t = *self.peek();
            node = match t.tok {
                Tok::LBracket => self.range_or_subquery(node)?,
                Tok::Ident {
                    kw: Some(Kw::Offset),
                } => {
                    self.bump();
                    let off = self.offset_value()?;
                    check::set_offset(node, off, self.prev_end())?
                }
                Tok::At => {
                    self.bump();
                    let at = self.at_value()?;
                    check::set_at(node, at, self.prev_end())?
                }
                Tok::Ident {
                    kw: Some(kw @ (Kw::Anchored | Kw::Smoothed)),
                } => self.extended_selector(node, kw == Kw::Anchored)?,
                _ => return Ok(node),
            };
        }
    }

    #[inline(never)]
    fn range_or_subquery(&mut self, node: Node) -> PResult<Node> {
        let open = self.bump();
        let range = self.bracket_duration("subquery or range selector")?;
        let t = self.bump();
        match t.tok {
            Tok::RBracket => check::matrix(node, range, open.start, t.end),
            Tok::Colon => {
                let step = if self.peek().tok == Tok::RBracket {
                    None
                } else {
                    Some(self.bracket_duration("subquery selector")?)
                };
                let close = self.expect(Tok::RBracket, "subquery selector", "\"]\"")?;
                check::subquery(node, range, step, close.end)
            }
            _ => Err(self.unexpected(&t, "subquery or range", "\":\" or \"]\"")),
        }
    }

    /// The value after `@`: a (signed) number of seconds, `start()`, `end()`.
    #[inline(never)]
    fn at_value(&mut self) -> PResult<AtModifier> {
        let t = *self.peek();
        if let Tok::Ident {
            kw: Some(kw @ (Kw::Start | Kw::End)),
        } = t.tok
        {
            self.bump();
            self.expect(Tok::LParen, "@", "\"(\"")?;
            self.expect(Tok::RParen, "@", "\")\"")?;
            return Ok(if kw == Kw::Start {
                AtModifier::Start
            } else {
                AtModifier::End
            });
        }
        let mut neg = false;
        if matches!(t.tok, Tok::Add | Tok::Sub) {
            neg = self.bump().tok == Tok::Sub;
        }
        let n = self.bump();
        let secs = match n.tok {
            Tok::Number => parse_number(n.text(self.src), n.start)?,
            Tok::Duration => parse_duration_at(n.text(self.src), n.start)? as f64 / 1000.0,
            _ => return Err(self.unexpected(&n, "@", "timestamp")),
        };
        let secs = if neg { -secs } else { secs };
        if !secs.is_finite() || secs.abs() >= i64::MAX as f64 / 1000.0 {
            return Err(ParseError::new(
                t.start,
                format!("timestamp out of bounds for @ modifier: {}", go_f(secs)),
            ));
        }
        Ok(AtModifier::Timestamp((secs * 1000.0).round() as i64))
    }

    fn primary(&mut self) -> PResult<Node> {
        let t = *self.peek();
        let text = t.text(self.src);
        match &t.tok {
            Tok::Number => {
                self.bump();
                let v = parse_number(text, t.start)?;
                Ok(leaf(Expr::Number(v), &t, ValueType::Scalar))
            }
            Tok::Duration => {
                self.bump();
                let ms = parse_duration_at(text, t.start)?;
                Ok(leaf(
                    Expr::Number(ms as f64 / 1000.0),
                    &t,
                    ValueType::Scalar,
                ))
            }
            Tok::Str(n) => {
                self.bump();
                let s = self.take_str(*n);
                Ok(leaf(Expr::String(s), &t, ValueType::String))
            }
            Tok::LParen => {
                self.bump();
                let inner = self.expr(0)?;
                let close = self.expect(Tok::RParen, "paren expression", "\")\"")?;
                Ok(Node {
                    ty: inner.ty,
                    expr: Expr::Paren(Box::new(inner.expr)),
                    span: span(t.start, close.end),
                })
            }
            Tok::LBrace => self.selector(None, t.start),
            Tok::Ident { kw } => self.ident(*kw, &t),
            _ => Err(self.unexpected(&t, "", "")),
        }
    }

    fn ident(&mut self, kw: Option<Kw>, t: &Token) -> PResult<Node> {
        let text = t.text(self.src).to_string();
        let next = self.peek_at(1).tok;
        if let Some(op) = kw.and_then(aggregate_op) {
            if next == Tok::LParen
                || matches!(
                    next,
                    Tok::Ident {
                        kw: Some(Kw::By | Kw::Without)
                    }
                )
            {
                self.bump();
                return self.aggregation(op, t.start);
            }
        }
        let callable = matches!(
            kw,
            None | Some(Kw::Start | Kw::End | Kw::Step | Kw::Range | Kw::MinOf | Kw::MaxOf)
        );
        if next == Tok::LParen && callable {
            self.bump();
            return self.call(text, t.start);
        }
        if kw.is_none_or(Kw::is_metric_identifier) {
            self.bump();
            return self.selector(Some(text), t.start);
        }
        Err(self.unexpected(t, "", ""))
    }

    /// `(arg, arg, ...)` after a function or aggregation name.
    fn call_args(&mut self) -> PResult<(Vec<Node>, usize)> {
        self.expect(Tok::LParen, "function call", "\"(\"")?;
        let mut args = Vec::new();
        if self.peek().tok == Tok::RParen {
            return Ok((args, self.bump().end));
        }
        loop {
            args.push(self.expr(0)?);
            let t = self.bump();
            match t.tok {
                Tok::RParen => return Ok((args, t.end)),
                Tok::Comma if self.peek().tok == Tok::RParen => {
                    return Err(ParseError::new(
                        t.start,
                        "trailing commas not allowed in function call args",
                    ))
                }
                Tok::Comma => {}
                _ => return Err(self.unexpected(&t, "function call", "\",\" or \")\"")),
            }
        }
    }

    /// Arguments of `info(v, {selector})`: the selector may match empty
    /// values and must not name a metric (Prometheus' rules for `info`).
    #[inline(never)]
    fn info_args(&mut self) -> PResult<(Vec<Node>, usize)> {
        self.expect(Tok::LParen, "function call", "\"(\"")?;
        let mut args = vec![self.expr(0)?];
        if self.peek().tok == Tok::Comma {
            self.bump();
            let t = *self.peek();
            let arg = if t.tok == Tok::LBrace {
                let mut matchers = Vec::new();
                self.bump();
                let end = self.matchers(&mut matchers)?;
                if !matches!(self.peek().tok, Tok::Comma | Tok::RParen) {
                    return Err(ParseError::new(t.start, "expected label selectors only"));
                }
                check::info_selector(matchers, span(t.start, end))
            } else {
                let n = self.expr(0)?;
                let msg = if matches!(n.expr, crate::ast::Expr::VectorSelector(_)) {
                    "expected label selectors only, got vector selector instead"
                } else {
                    "expected label selectors only"
                };
                return Err(ParseError::new(n.span.start, msg));
            };
            args.push(arg);
        }
        let close = self.bump();
        match close.tok {
            Tok::RParen => Ok((args, close.end)),
            _ => Err(self.unexpected(&close, "function call", "\",\" or \")\"")),
        }
    }

    #[inline(never)]
    fn call(&mut self, name: String, start: usize) -> PResult<Node> {
        let (args, end) = if name == "info" {
            self.info_args()?
        } else {
            self.call_args()?
        };
        check::call(
            name,
            args,
            span(start, end),
            self.opts.experimental_functions,
        )
    }

    #[inline(never)]
    fn aggregation(&mut self, op: AggregateOp, start: usize) -> PResult<Node> {
        let mut grouping = None;
        if self.is_kw(Kw::By) || self.is_kw(Kw::Without) {
            let without = self.is_kw(Kw::Without);
            self.bump();
            grouping = Some((without, self.grouping_labels()?));
        }
        let (args, mut end) = self.call_args()?;
        if grouping.is_none() && (self.is_kw(Kw::By) || self.is_kw(Kw::Without)) {
            let without = self.is_kw(Kw::Without);
            self.bump();
            grouping = Some((without, self.grouping_labels()?));
            end = self.prev_end();
        }
        check::aggregation(
            op,
            grouping,
            args,
            span(start, end),
            self.opts.experimental_functions,
        )
    }

    /// `name{matchers}`, `name`, `{matchers}`; the current token is the one
    /// after the name (or the `{`).
    #[inline(never)]
    pub(crate) fn selector(&mut self, name: Option<String>, start: usize) -> PResult<Node> {
        let mut matchers = Vec::new();
        let mut end = self.prev_end().max(start);
        if self.peek().tok == Tok::LBrace {
            self.bump();
            end = self.matchers(&mut matchers)?;
        }
        check::selector(name, matchers, span(start, end))
    }

    /// The matcher list after `{`; returns the end offset of the `}`.
    #[inline(never)]
    fn matchers(&mut self, out: &mut Vec<Matcher>) -> PResult<usize> {
        const CTX: &str = "label matching";
        if self.peek().tok == Tok::RBrace {
            return Ok(self.bump().end);
        }
        loop {
            let t = self.bump();
            let label = match &t.tok {
                Tok::Ident { .. } => t.text(self.src).to_string(),
                Tok::Str(n) => self.take_str(*n),
                _ => return Err(self.unexpected(&t, CTX, "identifier or \"}\"")),
            };
            let op = match self.peek().tok {
                Tok::Eql => Some(MatchOp::Equal),
                Tok::Neq => Some(MatchOp::NotEqual),
                Tok::EqlRegex => Some(MatchOp::RegexMatch),
                Tok::NeqRegex => Some(MatchOp::RegexNoMatch),
                _ => None,
            };
            match (op, &t.tok) {
                (Some(op), _) => {
                    self.bump();
                    let v = self.bump();
                    let Tok::Str(n) = v.tok else {
                        return Err(self.unexpected(&v, CTX, "string"));
                    };
                    let value = self.take_str(n);
                    out.push(
                        super::matchers::new_matcher(op, label, value.clone()).map_err(|e| {
                            ParseError::new(
                                t.start,
                                format!("invalid regular expression {value:?}: {}", regex_err(&e)),
                            )
                        })?,
                    );
                }
                (None, Tok::Str(_)) => out.push(Matcher::equal(METRIC_NAME, label)),
                (None, _) => {
                    let n = *self.peek();
                    return Err(self.unexpected(&n, CTX, "label matching operator"));
                }
            }
            let t = self.bump();
            match t.tok {
                Tok::RBrace => return Ok(t.end),
                Tok::Comma if self.peek().tok == Tok::RBrace => return Ok(self.bump().end),
                Tok::Comma => {}
                _ => return Err(self.unexpected(&t, CTX, "\",\" or \"}\"")),
            }
        }
    }
}

fn regex_err(e: &regex::Error) -> String {
    let s = e.to_string();
    let last = s.lines().last().unwrap_or("").trim();
    last.strip_prefix("error: ").unwrap_or(last).to_string()
}

fn leaf(expr: Expr, t: &Token, ty: ValueType) -> Node {
    Node {
        expr,
        span: span(t.start, t.end),
        ty,
    }
}

fn too_deep(pos: usize) -> ParseError {
    ParseError::new(
        pos,
        format!("query is nested too deeply (more than {MAX_DEPTH} levels)"),
    )
}

/// Go's `%f`: six decimals, `+Inf`, `-Inf`, `NaN`.
fn go_f(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.into()
    } else {
        format!("{v:.6}")
    }
}
