//! Parser for the Go `text/template` subset that Prometheus rule templates
//! use: text, `{{ pipeline }}` actions with `{{-`/`-}}` trim markers,
//! comments, variables (`$x := ...`, `$x = ...`), fields (`.A.b`,
//! `$labels.job`), pipes, parenthesised pipelines, string/raw/number/bool/nil
//! literals, `if`/`else if`/`else`, `range` (with `$i, $e :=`), `with`, `end`.

use super::TemplateError;

/// One operand of a command.
#[derive(Clone, Debug, PartialEq)]
pub enum Operand {
    /// `.` (the data) followed by field names (`.A.b` = `Field(["A","b"])`).
    Field(Vec<String>),
    /// `$name` followed by field names.
    Var(String, Vec<String>),
    /// A function name.
    Ident(String),
    /// A string literal (already unescaped).
    Str(String),
    /// An integer literal.
    Int(i64),
    /// A float literal.
    Float(f64),
    /// `true` / `false`.
    Bool(bool),
    /// `nil`.
    Nil,
    /// `( pipeline )` followed by field names.
    Paren(Box<Pipeline>, Vec<String>),
}

/// `op op op`: a function call or a single value.
#[derive(Clone, Debug, PartialEq)]
pub struct Command {
    /// The operands; a call when the first is an [`Operand::Ident`].
    pub args: Vec<Operand>,
}

/// `$x := cmd | cmd | cmd`.
#[derive(Clone, Debug, PartialEq)]
pub struct Pipeline {
    /// Declared or assigned variables.
    pub vars: Vec<String>,
    /// True for `=` (assign to an existing variable), false for `:=`.
    pub assign: bool,
    /// The commands; each one's result is the last argument of the next.
    pub cmds: Vec<Command>,
}

/// A node of the template tree.
#[derive(Clone, Debug, PartialEq)]
pub enum Node {
    /// Literal text.
    Text(String),
    /// `{{ pipeline }}`.
    Action(Pipeline),
    /// `{{if}} .. {{else}} .. {{end}}`.
    If(Pipeline, Vec<Node>, Vec<Node>),
    /// `{{range}} .. {{else}} .. {{end}}`.
    Range(Pipeline, Vec<Node>, Vec<Node>),
    /// `{{with}} .. {{else}} .. {{end}}`.
    With(Pipeline, Vec<Node>, Vec<Node>),
}

#[derive(Clone, Debug, PartialEq)]
enum Tok {
    Word(String),
    Field(String),
    Dot,
    Var(String),
    Str(String),
    Num(String),
    LParen,
    RParen,
    Pipe,
    Declare,
    Assign,
    Comma,
}

enum Segment {
    Text(String),
    Action(Vec<Tok>, usize),
}

fn err(name: &str, line: usize, msg: impl std::fmt::Display) -> TemplateError {
    TemplateError::Parse(format!("template: {name}:{line}: {msg}"))
}

/// Splits the source into text and tokenized actions, applying trim markers
/// and dropping comments.
fn segments(name: &str, src: &str) -> Result<Vec<Segment>, TemplateError> {
    let mut out = Vec::new();
    let mut rest = src;
    let mut line = 1;
    let mut trim_next = false;
    while !rest.is_empty() {
        let Some(open) = rest.find("{{") else {
            let mut t = rest.to_string();
            if trim_next {
                t = t.trim_start().to_string();
            }
            out.push(Segment::Text(t));
            break;
        };
        let mut text = rest[..open].to_string();
        line += text.matches('\n').count();
        let mut body = &rest[open + 2..];
        if trim_next {
            text = text.trim_start().to_string();
        }
        if body.starts_with("- ") || body.starts_with("-\t") || body.starts_with("-\n") {
            text = text.trim_end().to_string();
            body = &body[1..];
        }
        if !text.is_empty() {
            out.push(Segment::Text(text));
        }
        let close = find_close(body).ok_or_else(|| err(name, line, "unclosed action"))?;
        let mut inner = &body[..close];
        trim_next = false;
        if inner.ends_with(" -") || inner.ends_with("\t-") || inner.ends_with("\n-") {
            trim_next = true;
            inner = &inner[..inner.len() - 1];
        }
        let t = inner.trim();
        if t.starts_with("/*") {
            if !t.ends_with("*/") {
                return Err(err(name, line, "unclosed comment"));
            }
        } else {
            out.push(Segment::Action(lex(name, line, inner)?, line));
        }
        line += inner.matches('\n').count();
        rest = &body[close + 2..];
    }
    Ok(out)
}

/// Position of the `}}` closing an action, skipping string literals.
fn find_close(s: &str) -> Option<usize> {
    let b = s.as_bytes();
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'"' | b'`' | b'\'' => {
                let q = b[i];
                i += 1;
                while i < b.len() && b[i] != q {
                    if b[i] == b'\\' && q != b'`' {
                        i += 1;
                    }
                    i += 1;
                }
            }
            b'}' if b.get(i + 1) == Some(&b'}') => return Some(i),
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn lex(name: &str, line: usize, s: &str) -> Result<Vec<Tok>, TemplateError> {
    let mut toks = Vec::new();
    let cs: Vec<char> = s.chars().collect();
    let mut i = 0;
    let word_end = |mut j: usize| {
        while j < cs.len() && is_word(cs[j]) {
            j += 1;
        }
        j
    };
    while i < cs.len() {
        let c = cs[i];
        match c {
            c if c.is_whitespace() => i += 1,
            '(' => {
                toks.push(Tok::LParen);
                i += 1
            }
            ')' => {
                toks.push(Tok::RParen);
                i += 1
            }
            '|' => {
                toks.push(Tok::Pipe);
                i += 1
            }
            ',' => {
                toks.push(Tok::Comma);
                i += 1
            }
            ':' if cs.get(i + 1) == Some(&'=') => {
                toks.push(Tok::Declare);
                i += 2
            }
            '=' => {
                toks.push(Tok::Assign);
                i += 1
            }
            '.' if cs.get(i + 1).is_some_and(|c| c.is_ascii_digit()) => {
                let j = num_end(&cs, i);
                toks.push(Tok::Num(cs[i..j].iter().collect()));
                i = j;
            }
            '.' => {
                let j = word_end(i + 1);
                if j == i + 1 {
                    toks.push(Tok::Dot);
                } else {
                    toks.push(Tok::Field(cs[i + 1..j].iter().collect()));
                }
                i = j;
            }
            '$' => {
                let j = word_end(i + 1);
                toks.push(Tok::Var(cs[i..j].iter().collect()));
                i = j;
            }
            '"' | '\'' => {
                let (v, j) =
                    unquote(&cs, i).ok_or_else(|| err(name, line, "unterminated quoted string"))?;
                toks.push(Tok::Str(v));
                i = j;
            }
            '`' => {
                let end = cs[i + 1..]
                    .iter()
                    .position(|&c| c == '`')
                    .ok_or_else(|| err(name, line, "unterminated raw quoted string"))?;
                toks.push(Tok::Str(cs[i + 1..i + 1 + end].iter().collect()));
                i += end + 2;
            }
            c if c.is_ascii_digit()
                || ((c == '-' || c == '+')
                    && cs
                        .get(i + 1)
                        .is_some_and(|c| c.is_ascii_digit() || *c == '.')) =>
            {
                let j = num_end(&cs, i + 1);
                toks.push(Tok::Num(cs[i..j].iter().collect()));
                i = j;
            }
            c if is_word(c) => {
                let j = word_end(i);
                toks.push(Tok::Word(cs[i..j].iter().collect()));
                i = j;
            }
            c => return Err(err(name, line, format!("unexpected {c:?} in command"))),
        }
    }
    Ok(toks)
}

fn num_end(cs: &[char], mut j: usize) -> usize {
    while j < cs.len() {
        let c = cs[j];
        let exp_sign = (c == '-' || c == '+')
            && j > 0
            && matches!(cs[j - 1], 'e' | 'E')
            && !cs[..j].iter().any(|c| *c == 'x' || *c == 'X');
        if c.is_ascii_alphanumeric() || c == '.' || c == '_' || exp_sign {
            j += 1;
        } else {
            break;
        }
    }
    j
}

fn unquote(cs: &[char], start: usize) -> Option<(String, usize)> {
    let q = cs[start];
    let mut out = String::new();
    let mut i = start + 1;
    while i < cs.len() {
        let c = cs[i];
        if c == q {
            return Some((out, i + 1));
        }
        if c == '\\' {
            i += 1;
            let e = *cs.get(i)?;
            match e {
                'n' => out.push('\n'),
                't' => out.push('\t'),
                'r' => out.push('\r'),
                '\\' => out.push('\\'),
                '"' => out.push('"'),
                '\'' => out.push('\''),
                'a' => out.push('\u{7}'),
                'b' => out.push('\u{8}'),
                'f' => out.push('\u{c}'),
                'v' => out.push('\u{b}'),
                'x' | 'u' | 'U' => {
                    let n = match e {
                        'x' => 2,
                        'u' => 4,
                        _ => 8,
                    };
                    let hex: String = cs.get(i + 1..i + 1 + n)?.iter().collect();
                    out.push(char::from_u32(u32::from_str_radix(&hex, 16).ok()?)?);
                    i += n;
                }
                _ => return None,
            }
        } else {
            out.push(c);
        }
        i += 1;
    }
    None
}

struct Parser<'a> {
    name: &'a str,
    segs: std::vec::IntoIter<Segment>,
}

enum Stop {
    Eof,
    End,
    Else(Vec<Tok>, usize),
}

/// Parses a template source into its node list.
pub fn parse(name: &str, src: &str) -> Result<Vec<Node>, TemplateError> {
    let mut p = Parser {
        name,
        segs: segments(name, src)?.into_iter(),
    };
    let (nodes, stop) = p.list()?;
    match stop {
        Stop::Eof => Ok(nodes),
        Stop::End => Err(err(name, 0, "unexpected {{end}}")),
        Stop::Else(_, l) => Err(err(name, l, "unexpected {{else}}")),
    }
}

impl Parser<'_> {
    fn list(&mut self) -> Result<(Vec<Node>, Stop), TemplateError> {
        let mut nodes = Vec::new();
        while let Some(seg) = self.segs.next() {
            let (toks, line) = match seg {
                Segment::Text(t) => {
                    nodes.push(Node::Text(t));
                    continue;
                }
                Segment::Action(t, l) => (t, l),
            };
            match toks.first() {
                Some(Tok::Word(w)) if w == "end" => {
                    if toks.len() > 1 {
                        return Err(err(self.name, line, "unexpected tokens after end"));
                    }
                    return Ok((nodes, Stop::End));
                }
                Some(Tok::Word(w)) if w == "else" => {
                    return Ok((nodes, Stop::Else(toks[1..].to_vec(), line)))
                }
                Some(Tok::Word(w)) if w == "if" || w == "range" || w == "with" => {
                    let kw = w.clone();
                    nodes.push(self.block(&kw, toks[1..].to_vec(), line)?);
                }
                Some(Tok::Word(w))
                    if matches!(
                        w.as_str(),
                        "define" | "template" | "block" | "break" | "continue"
                    ) =>
                {
                    return Err(err(
                        self.name,
                        line,
                        format!("{{{{{w}}}}} is not supported in rule templates"),
                    ));
                }
                None => return Err(err(self.name, line, "missing value for command")),
                _ => nodes.push(Node::Action(self.pipeline(&toks, line, true)?)),
            }
        }
        Ok((nodes, Stop::Eof))
    }

    fn block(&mut self, kw: &str, toks: Vec<Tok>, line: usize) -> Result<Node, TemplateError> {
        let pipe = self.pipeline(&toks, line, true)?;
        let (body, stop) = self.list()?;
        let else_ = match stop {
            Stop::Eof => return Err(err(self.name, line, format!("unexpected EOF in {kw}"))),
            Stop::End => Vec::new(),
            Stop::Else(rest, l) if rest.is_empty() => {
                let (e, stop) = self.list()?;
                match stop {
                    Stop::End => e,
                    _ => {
                        return Err(err(
                            self.name,
                            l,
                            format!("expected end after else in {kw}"),
                        ))
                    }
                }
            }
            Stop::Else(rest, l) => {
                // `else if ...` / `else with ...` chain: a nested block that
                // consumes the shared `end`.
                match rest.first() {
                    Some(Tok::Word(w)) if w == "if" || w == "with" => {
                        let w = w.clone();
                        vec![self.block(&w, rest[1..].to_vec(), l)?]
                    }
                    _ => return Err(err(self.name, l, "unexpected tokens after else")),
                }
            }
        };
        Ok(match kw {
            "if" => Node::If(pipe, body, else_),
            "range" => Node::Range(pipe, body, else_),
            _ => Node::With(pipe, body, else_),
        })
    }

    fn pipeline(
        &self,
        toks: &[Tok],
        line: usize,
        allow_decl: bool,
    ) -> Result<Pipeline, TemplateError> {
        let mut vars = Vec::new();
        let mut assign = false;
        let mut rest = toks;
        if allow_decl {
            if let Some(pos) = toks
                .iter()
                .position(|t| matches!(t, Tok::Declare | Tok::Assign))
            {
                let lhs = &toks[..pos];
                let ok = lhs.iter().enumerate().all(|(i, t)| {
                    if i % 2 == 0 {
                        matches!(t, Tok::Var(_))
                    } else {
                        *t == Tok::Comma
                    }
                });
                if ok && !lhs.is_empty() && lhs.len() <= 3 {
                    for t in lhs {
                        if let Tok::Var(v) = t {
                            vars.push(v.clone());
                        }
                    }
                    assign = toks[pos] == Tok::Assign;
                    rest = &toks[pos + 1..];
                }
            }
        }
        let mut cmds = Vec::new();
        let mut i = 0;
        let mut args = Vec::new();
        while i < rest.len() {
            match &rest[i] {
                Tok::Pipe => {
                    if args.is_empty() {
                        return Err(err(self.name, line, "missing command"));
                    }
                    cmds.push(Command {
                        args: std::mem::take(&mut args),
                    });
                    i += 1;
                }
                _ => {
                    let (op, n) = self.operand(&rest[i..], line)?;
                    args.push(op);
                    i += n;
                }
            }
        }
        if args.is_empty() {
            return Err(err(self.name, line, "missing value for command"));
        }
        cmds.push(Command { args });
        Ok(Pipeline { vars, assign, cmds })
    }

    /// One operand and how many tokens it used.
    fn operand(&self, toks: &[Tok], line: usize) -> Result<(Operand, usize), TemplateError> {
        let fields = |from: usize| {
            let mut f = Vec::new();
            let mut j = from;
            while let Some(Tok::Field(n)) = toks.get(j) {
                f.push(n.clone());
                j += 1;
            }
            (f, j)
        };
        Ok(match &toks[0] {
            Tok::Dot => (Operand::Field(Vec::new()), 1),
            Tok::Field(_) => {
                let (f, j) = fields(0);
                (Operand::Field(f), j)
            }
            Tok::Var(v) => {
                let (f, j) = fields(1);
                (Operand::Var(v.clone(), f), j)
            }
            Tok::Str(s) => (Operand::Str(s.clone()), 1),
            Tok::Num(n) => (
                parse_num(n)
                    .ok_or_else(|| err(self.name, line, format!("bad number syntax: {n:?}")))?,
                1,
            ),
            Tok::Word(w) => (
                match w.as_str() {
                    "true" => Operand::Bool(true),
                    "false" => Operand::Bool(false),
                    "nil" => Operand::Nil,
                    _ => Operand::Ident(w.clone()),
                },
                1,
            ),
            Tok::LParen => {
                let mut depth = 0;
                let mut close = None;
                for (j, t) in toks.iter().enumerate() {
                    match t {
                        Tok::LParen => depth += 1,
                        Tok::RParen => {
                            depth -= 1;
                            if depth == 0 {
                                close = Some(j);
                                break;
                            }
                        }
                        _ => {}
                    }
                }
                let close = close.ok_or_else(|| err(self.name, line, "unclosed left paren"))?;
                let inner = self.pipeline(&toks[1..close], line, false)?;
                let (f, j) = fields(close + 1);
                (Operand::Paren(Box::new(inner), f), j)
            }
            t => return Err(err(self.name, line, format!("unexpected {t:?} in operand"))),
        })
    }
}

fn parse_num(n: &str) -> Option<Operand> {
    let clean = n.replace('_', "");
    let (neg, body) = match clean.strip_prefix('-') {
        Some(b) => (true, b.to_string()),
        None => (false, clean.trim_start_matches('+').to_string()),
    };
    let int = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i64::from_str_radix(h, 16).ok()
    } else if let Some(o) = body.strip_prefix("0o") {
        i64::from_str_radix(o, 8).ok()
    } else {
        body.parse::<i64>().ok()
    };
    if let Some(i) = int {
        return Some(Operand::Int(if neg { -i } else { i }));
    }
    let f: f64 = body.parse().ok()?;
    Some(Operand::Float(if neg { -f } else { f }))
}
