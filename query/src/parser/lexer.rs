//! PromQL tokenizer.
//!
//! The lexer is context-sensitive the way Prometheus' is: inside `{...}`
//! identifiers never contain `:` and keywords are plain identifiers; inside
//! `[...]` only numbers, durations, `:` and the duration-expression operators
//! may appear. Small scanners (identifiers, whitespace, duration tails) are
//! nom combinators; the number scanner follows Prometheus' rules by hand.

use nom::bytes::complete::take_while;
use nom::IResult;

use super::strings::lex_string;
use super::ParseError;

/// Keywords (matched case-insensitively, as Prometheus does).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kw {
    And,
    Or,
    Unless,
    Atan2,
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Topk,
    Bottomk,
    CountValues,
    Quantile,
    Limitk,
    LimitRatio,
    Offset,
    By,
    Without,
    On,
    Ignoring,
    GroupLeft,
    GroupRight,
    Bool,
    Start,
    End,
    Step,
    Range,
    Anchored,
    Smoothed,
    Fill,
    FillLeft,
    FillRight,
    MaxOf,
    MinOf,
}

impl Kw {
    fn lookup(word: &str) -> Option<Kw> {
        use Kw::*;
        // Keywords are at most 12 bytes: lowercase on the stack.
        let mut buf = [0u8; 12];
        let lower = buf.get_mut(..word.len())?;
        lower.copy_from_slice(word.as_bytes());
        lower.make_ascii_lowercase();
        Some(match &*lower {
            b"and" => And,
            b"or" => Or,
            b"unless" => Unless,
            b"atan2" => Atan2,
            b"sum" => Sum,
            b"avg" => Avg,
            b"count" => Count,
            b"min" => Min,
            b"max" => Max,
            b"group" => Group,
            b"stddev" => Stddev,
            b"stdvar" => Stdvar,
            b"topk" => Topk,
            b"bottomk" => Bottomk,
            b"count_values" => CountValues,
            b"quantile" => Quantile,
            b"limitk" => Limitk,
            b"limit_ratio" => LimitRatio,
            b"offset" => Offset,
            b"by" => By,
            b"without" => Without,
            b"on" => On,
            b"ignoring" => Ignoring,
            b"group_left" => GroupLeft,
            b"group_right" => GroupRight,
            b"bool" => Bool,
            b"start" => Start,
            b"end" => End,
            b"step" => Step,
            b"range" => Range,
            b"anchored" => Anchored,
            b"smoothed" => Smoothed,
            b"fill" => Fill,
            b"fill_left" => FillLeft,
            b"fill_right" => FillRight,
            b"max_of" => MaxOf,
            b"min_of" => MinOf,
            _ => return None,
        })
    }

    /// Keywords Prometheus accepts as a metric name (`metric_identifier`).
    pub(crate) fn is_metric_identifier(self) -> bool {
        use Kw::*;
        !matches!(self, Atan2 | On | Ignoring | GroupLeft | GroupRight | Bool)
    }
}

/// Token kinds.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Tok {
    /// Identifier; `kw` is set when it spells a keyword (outside braces).
    Ident {
        kw: Option<Kw>,
    },
    /// A number literal (text in the span), including `Inf`/`NaN`.
    Number,
    /// A duration literal such as `5m` or `1h30m`.
    Duration,
    /// A string literal; its unquoted value is `strings[n]` of the lexer's
    /// output.
    Str(usize),
    LParen,
    RParen,
    LBrace,
    RBrace,
    LBracket,
    RBracket,
    Comma,
    Colon,
    At,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Pow,
    /// `==`
    Eqlc,
    /// `=` (matchers)
    Eql,
    Neq,
    Lss,
    Gtr,
    Lte,
    Gte,
    EqlRegex,
    NeqRegex,
    Eof,
}

/// A token with its byte range in the input.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub start: usize,
    pub end: usize,
}

impl Token {
    /// The token's text.
    pub(crate) fn text<'a>(&self, src: &'a str) -> &'a str {
        &src[self.start..self.end]
    }

    /// Description used in "unexpected ..." errors, as Prometheus words it.
    pub(crate) fn desc(&self, src: &str) -> String {
        let text = self.text(src);
        match &self.tok {
            Tok::Eof => "end of input".to_string(),
            Tok::Ident { kw: Some(kw) } => match kw.class() {
                KwClass::Operator => format!("<op:{text}>"),
                KwClass::Aggregator => format!("<aggr:{text}>"),
                KwClass::Keyword => format!("<{text}>"),
                KwClass::Preprocessor => short_quote(text),
            },
            Tok::Ident { kw: None } if text.contains(':') => format!("metric identifier {text:?}"),
            Tok::Ident { kw: None } => format!("identifier {text:?}"),
            Tok::Number => format!("number {}", short_quote(text)),
            Tok::Duration => format!("duration {}", short_quote(text)),
            Tok::Str(_) => format!("string {}", short_quote(text)),
            Tok::Add
            | Tok::Sub
            | Tok::Mul
            | Tok::Div
            | Tok::Mod
            | Tok::Pow
            | Tok::Eqlc
            | Tok::Neq
            | Tok::Lss
            | Tok::Gtr
            | Tok::Lte
            | Tok::Gte
            | Tok::EqlRegex
            | Tok::NeqRegex
            | Tok::At => format!("<op:{text}>"),
            _ => format!("{text:?}"),
        }
    }
}

/// How Prometheus classifies a keyword token in messages.
pub(crate) enum KwClass {
    Operator,
    Aggregator,
    Keyword,
    Preprocessor,
}

impl Kw {
    pub(crate) fn class(self) -> KwClass {
        use Kw::*;
        match self {
            And | Or | Unless | Atan2 => KwClass::Operator,
            Sum | Avg | Count | Min | Max | Group | Stddev | Stdvar | Topk | Bottomk
            | CountValues | Quantile | Limitk | LimitRatio => KwClass::Aggregator,
            Start | End | Step | Range | MaxOf | MinOf => KwClass::Preprocessor,
            _ => KwClass::Keyword,
        }
    }
}

/// Go's `%.10q...` for long values, `%q` otherwise.
fn short_quote(s: &str) -> String {
    if s.len() > 10 {
        let head: String = s.chars().take(10).collect();
        format!("{head:?}...")
    } else {
        format!("{s:?}")
    }
}

fn is_alpha(c: char) -> bool {
    c == '_' || c.is_ascii_alphabetic()
}

fn is_alnum(c: char) -> bool {
    is_alpha(c) || c.is_ascii_digit()
}

fn is_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// `[A-Za-z0-9_:]*` (metric identifiers, outside braces).
fn metric_ident_tail(i: &str) -> IResult<&str, &str> {
    take_while(|c: char| is_alnum(c) || c == ':')(i)
}

/// `[A-Za-z0-9_]*` (label names inside braces).
fn label_ident_tail(i: &str) -> IResult<&str, &str> {
    take_while(is_alnum)(i)
}

fn spaces(i: &str) -> IResult<&str, &str> {
    take_while(is_space)(i)
}

/// The lexer state.
struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    brace_open: bool,
    bracket_open: bool,
    got_colon: bool,
    paren_depth: i64,
    out: Vec<Token>,
    strings: Vec<String>,
}

/// Tokens, and the unquoted values of the string tokens.
pub(crate) type Lexed = (Vec<Token>, Vec<String>);

/// Tokenizes a whole query. Comments and whitespace are dropped.
pub(crate) fn lex(src: &str) -> Result<Lexed, ParseError> {
    let mut l = Lexer {
        src,
        pos: 0,
        brace_open: false,
        bracket_open: false,
        got_colon: false,
        paren_depth: 0,
        out: Vec::with_capacity(src.len() / 3 + 2),
        strings: Vec::new(),
    };
    loop {
        l.skip_space_and_comments();
        if l.pos >= src.len() {
            if l.brace_open {
                return Err(l.err(l.pos, "unexpected end of input inside braces"));
            }
            if l.paren_depth > 0 {
                return Err(l.err(l.pos, "unclosed left parenthesis"));
            }
            if l.bracket_open {
                let msg = if l.out.last().is_some_and(|t| t.tok == Tok::LBracket) {
                    "unexpected end of input in duration expression"
                } else {
                    "unclosed left bracket"
                };
                return Err(l.err(l.pos, msg));
            }
            l.push(Tok::Eof, l.pos, l.pos);
            return Ok((l.out, l.strings));
        }
        if l.brace_open {
            l.lex_inside_braces()?;
        } else {
            l.lex_statement()?;
        }
    }
}

impl<'a> Lexer<'a> {
    fn err(&self, pos: usize, msg: impl Into<String>) -> ParseError {
        ParseError::new(pos, msg)
    }

    fn rest(&self) -> &'a str {
        &self.src[self.pos..]
    }

    fn peek(&self) -> Option<char> {
        self.rest().chars().next()
    }

    fn peek2(&self) -> Option<char> {
        let mut it = self.rest().chars();
        it.next();
        it.next()
    }

    fn push(&mut self, tok: Tok, start: usize, end: usize) {
        self.out.push(Token { tok, start, end });
        self.pos = end;
    }

    fn skip_space_and_comments(&mut self) {
        loop {
            let rest = self.rest();
            let after = spaces(rest).map(|(r, _)| r).unwrap_or(rest);
            self.pos += rest.len() - after.len();
            if after.starts_with('#') && !self.bracket_open {
                let line_len = after.find('\n').unwrap_or(after.len());
                self.pos += line_len;
            } else {
                return;
            }
        }
    }

    fn lex_statement(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let Some(c) = self.peek() else {
            return Ok(());
        };
        if self.bracket_open && matches!(c, '"' | '\'' | '`' | '{') {
            return Err(self.err(
                start,
                format!("unexpected character in duration expression: {c:?}"),
            ));
        }
        let (tok, end) = match self.operator(c, start)? {
            Some(t) => t,
            None => match self.bracket(c, start)? {
                Some(t) => t,
                None => self.literal_or_word(c, start)?,
            },
        };
        self.push(tok, start, end);
        Ok(())
    }

    /// Operators: `, * / % + - ^ @ = == != < <= > >=`.
    fn operator(&self, c: char, start: usize) -> Result<Option<(Tok, usize)>, ParseError> {
        let next = self.peek2();
        let tok = match (c, next) {
            (',', _) => Tok::Comma,
            ('*', _) => Tok::Mul,
            ('/', _) => Tok::Div,
            ('%', _) => Tok::Mod,
            ('+', _) => Tok::Add,
            ('-', _) => Tok::Sub,
            ('^', _) => Tok::Pow,
            ('@', _) => Tok::At,
            ('=', Some('=')) => return Ok(Some((Tok::Eqlc, start + 2))),
            ('=', Some('~')) => {
                return Err(self.err(start, "unexpected character after '=': '~'"));
            }
            ('=', _) => Tok::Eql,
            ('!', Some('=')) => return Ok(Some((Tok::Neq, start + 2))),
            ('!', other) => {
                let shown = other.map(|c| format!("{c:?}")).unwrap_or("EOF".into());
                return Err(self.err(start, format!("unexpected character after '!': {shown}")));
            }
            ('<' | '>', Some('/')) => {
                let op = &self.src[start..start + 2];
                return Err(self.err(
                    start,
                    format!("the native histogram trim operator \"{op}\" is not supported"),
                ));
            }
            ('<', Some('=')) => return Ok(Some((Tok::Lte, start + 2))),
            ('<', _) => Tok::Lss,
            ('>', Some('=')) => return Ok(Some((Tok::Gte, start + 2))),
            ('>', _) => Tok::Gtr,
            _ => return Ok(None),
        };
        Ok(Some((tok, start + 1)))
    }

    /// `( ) { } [ ]` and `:` inside brackets, tracking nesting.
    fn bracket(&mut self, c: char, start: usize) -> Result<Option<(Tok, usize)>, ParseError> {
        let tok = match c {
            '(' => {
                self.paren_depth += 1;
                Tok::LParen
            }
            ')' => {
                self.paren_depth -= 1;
                if self.paren_depth < 0 {
                    return Err(self.err(start, "unexpected right parenthesis ')'"));
                }
                Tok::RParen
            }
            '{' => {
                self.brace_open = true;
                Tok::LBrace
            }
            '}' => return Err(self.err(start, "unexpected character: '}'")),
            '[' if self.bracket_open => {
                return Err(self.err(start, "unexpected left bracket '['"));
            }
            '[' => {
                self.bracket_open = true;
                self.got_colon = false;
                Tok::LBracket
            }
            ']' if !self.bracket_open => {
                return Err(self.err(start, "unexpected right bracket ']'"));
            }
            ']' => {
                self.bracket_open = false;
                Tok::RBracket
            }
            ':' if self.bracket_open && self.got_colon => {
                return Err(self.err(start, "unexpected colon ':'"));
            }
            ':' if self.bracket_open => {
                self.got_colon = true;
                Tok::Colon
            }
            _ => return Ok(None),
        };
        Ok(Some((tok, start + 1)))
    }

    /// Strings, numbers, durations, identifiers and keywords.
    fn literal_or_word(&mut self, c: char, start: usize) -> Result<(Tok, usize), ParseError> {
        match c {
            '"' | '\'' | '`' => {
                let (value, end) = lex_string(self.src, start)?;
                self.strings.push(value);
                Ok((Tok::Str(self.strings.len() - 1), end))
            }
            c if c.is_ascii_digit()
                || (c == '.' && self.peek2().is_some_and(|d| d.is_ascii_digit())) =>
            {
                self.lex_number_or_duration()
            }
            c if (is_alpha(c) || c == ':') && self.bracket_open => self.lex_bracket_word(),
            c if is_alpha(c) || c == ':' => {
                let (rest, _) = metric_ident_tail(self.rest())
                    .map_err(|_| self.err(start, "cannot scan identifier"))?;
                let end = self.src.len() - rest.len();
                let word = &self.src[start..end];
                if word.eq_ignore_ascii_case("inf") || word.eq_ignore_ascii_case("nan") {
                    return Ok((Tok::Number, end));
                }
                let mut kw = Kw::lookup(word);
                // fill/fill_left/fill_right are keywords only before '('.
                if matches!(kw, Some(Kw::Fill | Kw::FillLeft | Kw::FillRight))
                    && !self.src[end..].trim_start().starts_with('(')
                {
                    kw = None;
                }
                Ok((Tok::Ident { kw }, end))
            }
            other => Err(self.err(start, format!("unexpected character: {other:?}"))),
        }
    }

    /// A word inside `[...]`: only duration-expression keywords are valid.
    fn lex_bracket_word(&mut self) -> Result<(Tok, usize), ParseError> {
        let start = self.pos;
        let (rest, _) =
            label_ident_tail(self.rest()).map_err(|_| self.err(start, "cannot scan identifier"))?;
        let end = self.src.len() - rest.len();
        let word = &self.src[start..end];
        match Kw::lookup(word) {
            Some(kw @ (Kw::Step | Kw::Range | Kw::MaxOf | Kw::MinOf)) => {
                Ok((Tok::Ident { kw: Some(kw) }, end))
            }
            _ => {
                let c = word.chars().next().unwrap_or(' ');
                Err(self.err(start, format!("unexpected character: {c:?}, expected ':'")))
            }
        }
    }

    fn lex_inside_braces(&mut self) -> Result<(), ParseError> {
        let start = self.pos;
        let c = match self.peek() {
            Some(c) => c,
            None => return Err(self.err(start, "unexpected end of input inside braces")),
        };
        let (tok, end) = match c {
            ',' => (Tok::Comma, start + 1),
            '"' | '\'' | '`' => {
                let (value, end) = lex_string(self.src, start)?;
                self.strings.push(value);
                (Tok::Str(self.strings.len() - 1), end)
            }
            '=' if self.peek2() == Some('~') => (Tok::EqlRegex, start + 2),
            '=' => (Tok::Eql, start + 1),
            '!' => match self.peek2() {
                Some('~') => (Tok::NeqRegex, start + 2),
                Some('=') => (Tok::Neq, start + 2),
                other => {
                    let shown = other.map(|c| format!("{c:?}")).unwrap_or("EOF".into());
                    return Err(self.err(
                        start,
                        format!("unexpected character after '!' inside braces: {shown}"),
                    ));
                }
            },
            '{' => return Err(self.err(start, "unexpected left brace '{'")),
            '}' => {
                self.brace_open = false;
                (Tok::RBrace, start + 1)
            }
            c if is_alpha(c) => {
                let (rest, _) = label_ident_tail(self.rest())
                    .map_err(|_| self.err(start, "cannot scan identifier"))?;
                (Tok::Ident { kw: None }, self.src.len() - rest.len())
            }
            other => {
                return Err(self.err(
                    start,
                    format!("unexpected character inside braces: {other:?}"),
                ));
            }
        };
        self.push(tok, start, end);
        Ok(())
    }

    fn lex_number_or_duration(&mut self) -> Result<(Tok, usize), ParseError> {
        let start = self.pos;
        let stopped = match scan_number(self.src, start) {
            Ok(end) => return Ok((Tok::Number, end)),
            Err(stopped) => stopped,
        };
        match scan_duration_tail(self.src, stopped) {
            Ok(end) => Ok((Tok::Duration, end)),
            Err(stopped) => Err(self.err(
                start,
                format!(
                    "bad number or duration syntax: {:?}",
                    &self.src[start..stopped.min(self.src.len())]
                ),
            )),
        }
    }
}

/// Scans a number per Prometheus' rules (`[.][digits][digits . _ eE]*`, hex
/// with `0x`), returning its end offset, or on failure the offset where the
/// scan stopped (a duration scan continues from there, as in Prometheus).
/// The text may still be an invalid number; the parser reports that.
pub(crate) fn scan_number(src: &str, start: usize) -> Result<usize, usize> {
    let b = src.as_bytes();
    let at = |p: usize| b.get(p).copied();
    let mut p = start;
    let mut hex = false;
    if at(p) == Some(b'0') {
        p += 1;
        if matches!(at(p), Some(b'x' | b'X')) {
            p += 1;
            hex = true;
            if at(p) == Some(b'_') {
                p += 1;
            }
        }
    }
    let is_digit = |c: u8| {
        if hex {
            c.is_ascii_hexdigit()
        } else {
            c.is_ascii_digit()
        }
    };
    if at(p) == Some(b'.') {
        p += 1;
    }
    if at(p).is_some_and(is_digit) {
        p += 1;
    }
    let is_exp = |c: Option<u8>| matches!(c, Some(b'e' | b'E'));
    let anti = |c: Option<u8>| matches!(c, Some(b'.' | b'_' | b'e' | b'E'));
    let (mut dot, mut exp) = (false, false);
    while let Some(c) = at(p) {
        if !(is_digit(c) || c == b'.' || c == b'_' || is_exp(Some(c))) {
            break;
        }
        if (c == b'.' && dot) || (is_exp(Some(c)) && exp) {
            return Err(p + 1);
        }
        if c == b'.' {
            dot = true;
            p += 1;
            if matches!(at(p), Some(b'_' | b'.')) {
                return Err(p + 1);
            }
            if hex {
                return Err(p);
            }
        } else if is_exp(Some(c)) {
            exp = true;
            p += 1;
            if matches!(at(p), Some(b'+' | b'-')) {
                p += 1;
            }
            if anti(at(p)) {
                return Err(p + 1);
            }
            if at(p).is_none() {
                return Err(p);
            }
        } else if c == b'_' {
            p += 1;
            if anti(at(p)) {
                return Err(p + 1);
            }
            if at(p).is_none() {
                return Err(p);
            }
        } else {
            while at(p).is_some_and(is_digit) {
                p += 1;
            }
        }
    }
    if p == start {
        return Err(p);
    }
    match src[p..].chars().next() {
        Some(c) if is_alnum(c) => Err(p),
        _ => Ok(p),
    }
}

/// Continues a failed number scan as a duration (`5m`, `1h30m`, `500ms`):
/// a unit, then more digit-unit pairs, then a non-alphanumeric. Unit order
/// and validity are checked by `parse_duration`.
fn scan_duration_tail(src: &str, from: usize) -> Result<usize, usize> {
    let b = src.as_bytes();
    let mut p = from;
    let accept = |p: &mut usize, set: &[u8]| {
        if b.get(*p).is_some_and(|c| set.contains(c)) {
            *p += 1;
            true
        } else {
            false
        }
    };
    if !accept(&mut p, b"smhdwy") {
        return Err(p);
    }
    accept(&mut p, b"s");
    while accept(&mut p, b"0123456789") {
        while accept(&mut p, b"0123456789") {}
        if !accept(&mut p, b"smhdw") {
            return Err(p);
        }
        accept(&mut p, b"s");
    }
    match src[p..].chars().next() {
        Some(c) if is_alnum(c) => Err(p + c.len_utf8()),
        _ => Ok(p),
    }
}
