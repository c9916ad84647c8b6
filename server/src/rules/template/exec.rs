//! Template execution and the static check run at parse time.

use super::parse::{Command, Node, Operand, Pipeline};
use super::{funcs, Env, TemplateError, Value};

/// Limit on output size and loop iterations, so a template cannot run away.
const MAX_OUTPUT: usize = 1 << 20;
const MAX_STEPS: usize = 1_000_000;

struct State<'a, 'e> {
    name: &'a str,
    env: &'a Env<'e>,
    vars: Vec<(String, Value)>,
    out: String,
    steps: usize,
}

fn exec_err(name: &str, msg: impl std::fmt::Display) -> TemplateError {
    TemplateError::Exec(format!("template: {name}: executing: {msg}"))
}

pub(super) fn run(
    name: &str,
    nodes: &[Node],
    dot: Value,
    vars: Vec<(String, Value)>,
    env: &Env<'_>,
) -> Result<String, TemplateError> {
    let mut st = State {
        name,
        env,
        vars,
        out: String::new(),
        steps: 0,
    };
    st.list(nodes, &dot)?;
    Ok(st.out)
}

impl State<'_, '_> {
    fn err(&self, msg: impl std::fmt::Display) -> TemplateError {
        exec_err(self.name, msg)
    }

    fn list(&mut self, nodes: &[Node], dot: &Value) -> Result<(), TemplateError> {
        let mark = self.vars.len();
        for n in nodes {
            self.steps += 1;
            if self.steps > MAX_STEPS || self.out.len() > MAX_OUTPUT {
                return Err(self.err("template too expensive (step or output limit)"));
            }
            match n {
                Node::Text(t) => self.out.push_str(t),
                Node::Action(p) => {
                    let v = self.pipeline(p, dot)?;
                    if p.vars.is_empty() {
                        self.print(&v);
                    }
                }
                Node::If(p, then, else_) => {
                    let m = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    let r = if v.truthy() {
                        self.list(then, dot)
                    } else {
                        self.list(else_, dot)
                    };
                    self.vars.truncate(m);
                    r?;
                }
                Node::With(p, body, else_) => {
                    let m = self.vars.len();
                    let v = self.pipeline(p, dot)?;
                    let r = if v.truthy() {
                        self.list(body, &v)
                    } else {
                        self.list(else_, dot)
                    };
                    self.vars.truncate(m);
                    r?;
                }
                Node::Range(p, body, else_) => self.range(p, body, else_, dot)?,
            }
        }
        self.vars.truncate(mark);
        Ok(())
    }

    fn print(&mut self, v: &Value) {
        match v {
            Value::Nil => self.out.push_str("<no value>"),
            v => self.out.push_str(&v.to_go_string()),
        }
    }

    fn range(
        &mut self,
        p: &Pipeline,
        body: &[Node],
        else_: &[Node],
        dot: &Value,
    ) -> Result<(), TemplateError> {
        let m = self.vars.len();
        let decl = Pipeline {
            vars: Vec::new(),
            assign: false,
            cmds: p.cmds.clone(),
        };
        let v = self.pipeline(&decl, dot)?;
        let items: Vec<(Value, Value)> = match v {
            Value::List(l) => l
                .into_iter()
                .enumerate()
                .map(|(i, v)| (Value::Int(i as i64), v))
                .collect(),
            Value::Map(m) => m.into_iter().map(|(k, v)| (Value::Str(k), v)).collect(),
            Value::Int(n) => (0..n.max(0))
                .map(|i| (Value::Int(i), Value::Int(i)))
                .collect(),
            Value::Nil => Vec::new(),
            other => {
                return Err(self.err(format!("range can't iterate over {}", other.to_go_string())))
            }
        };
        if items.is_empty() {
            self.list(else_, dot)?;
        }
        for (k, v) in items {
            let inner = self.vars.len();
            match p.vars.as_slice() {
                [] => {}
                [e] => self.vars.push((e.clone(), v.clone())),
                [i, e, ..] => {
                    self.vars.push((i.clone(), k));
                    self.vars.push((e.clone(), v.clone()));
                }
            }
            self.list(body, &v)?;
            self.vars.truncate(inner);
        }
        self.vars.truncate(m);
        Ok(())
    }

    fn pipeline(&mut self, p: &Pipeline, dot: &Value) -> Result<Value, TemplateError> {
        let mut last: Option<Value> = None;
        for c in &p.cmds {
            last = Some(self.command(c, dot, last)?);
        }
        let v = last.unwrap_or(Value::Nil);
        for name in &p.vars {
            if p.assign {
                match self.vars.iter_mut().rev().find(|(n, _)| n == name) {
                    Some(slot) => slot.1 = v.clone(),
                    None => return Err(self.err(format!("undefined variable: {name}"))),
                }
            } else {
                self.vars.push((name.clone(), v.clone()));
            }
        }
        Ok(v)
    }

    fn command(
        &mut self,
        c: &Command,
        dot: &Value,
        piped: Option<Value>,
    ) -> Result<Value, TemplateError> {
        if let Some(Operand::Ident(f)) = c.args.first() {
            let mut args = Vec::with_capacity(c.args.len());
            for a in &c.args[1..] {
                args.push(self.operand(a, dot)?);
            }
            if let Some(p) = piped {
                args.push(p);
            }
            return funcs::call(f, &args, self.env)
                .map_err(|e| self.err(format!("error calling {f}: {e}")));
        }
        if c.args.len() > 1 || piped.is_some() {
            return Err(self.err("can't give argument to non-function"));
        }
        self.operand(&c.args[0], dot)
    }

    fn operand(&mut self, o: &Operand, dot: &Value) -> Result<Value, TemplateError> {
        Ok(match o {
            Operand::Field(f) => self.fields(dot.clone(), f)?,
            Operand::Var(name, f) => {
                let v = self
                    .vars
                    .iter()
                    .rev()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .ok_or_else(|| self.err(format!("undefined variable: {name}")))?;
                self.fields(v, f)?
            }
            Operand::Ident(f) => funcs::call(f, &[], self.env)
                .map_err(|e| self.err(format!("error calling {f}: {e}")))?,
            Operand::Str(s) => Value::Str(s.clone()),
            Operand::Int(i) => Value::Int(*i),
            Operand::Float(f) => Value::Float(*f),
            Operand::Bool(b) => Value::Bool(*b),
            Operand::Nil => return Err(self.err("nil is not a command")),
            Operand::Paren(p, f) => {
                let m = self.vars.len();
                let v = self.pipeline(p, dot)?;
                self.vars.truncate(m);
                self.fields(v, f)?
            }
        })
    }

    fn fields(&self, mut v: Value, fields: &[String]) -> Result<Value, TemplateError> {
        for f in fields {
            v = match v {
                Value::Map(mut m) => m.remove(f).unwrap_or(Value::Nil),
                Value::Sample(s) if f == "Labels" => Value::Map(
                    s.labels
                        .into_iter()
                        .map(|(k, v)| (k, Value::Str(v)))
                        .collect(),
                ),
                Value::Sample(s) if f == "Value" => Value::Float(s.value),
                Value::Nil => Value::Nil,
                other => {
                    return Err(self.err(format!(
                        "can't evaluate field {f} in type {}",
                        other.to_go_string()
                    )))
                }
            };
        }
        Ok(v)
    }
}

/// Static checks: functions exist, variables are declared before use.
pub(super) fn check(
    name: &str,
    nodes: &[Node],
    vars: &mut Vec<String>,
) -> Result<(), TemplateError> {
    let mark = vars.len();
    for n in nodes {
        match n {
            Node::Text(_) => {}
            Node::Action(p) => check_pipe(name, p, vars)?,
            Node::If(p, a, b) | Node::With(p, a, b) | Node::Range(p, a, b) => {
                let m = vars.len();
                check_pipe(name, p, vars)?;
                check(name, a, vars)?;
                check(name, b, vars)?;
                vars.truncate(m);
            }
        }
    }
    vars.truncate(mark);
    Ok(())
}

fn check_pipe(name: &str, p: &Pipeline, vars: &mut Vec<String>) -> Result<(), TemplateError> {
    for c in &p.cmds {
        for (i, a) in c.args.iter().enumerate() {
            check_operand(name, a, i == 0, vars)?;
        }
    }
    for v in &p.vars {
        if p.assign && !vars.contains(v) {
            return Err(TemplateError::Parse(format!(
                "template: {name}: undefined variable {v:?}"
            )));
        }
        vars.push(v.clone());
    }
    Ok(())
}

fn check_operand(
    name: &str,
    a: &Operand,
    _first: bool,
    vars: &mut Vec<String>,
) -> Result<(), TemplateError> {
    match a {
        Operand::Ident(f) if !funcs::exists(f) => Err(TemplateError::Parse(format!(
            "template: {name}: function {f:?} not defined"
        ))),
        Operand::Var(v, _) if !vars.contains(v) => Err(TemplateError::Parse(format!(
            "template: {name}: undefined variable {v:?}"
        ))),
        Operand::Paren(p, _) => {
            let m = vars.len();
            check_pipe(name, p, vars)?;
            vars.truncate(m);
            Ok(())
        }
        _ => Ok(()),
    }
}

/// Whether any command calls function `f`.
pub(super) fn uses_function(nodes: &[Node], f: &str) -> bool {
    fn pipe(p: &Pipeline, f: &str) -> bool {
        p.cmds.iter().any(|c| {
            c.args.iter().any(|a| match a {
                Operand::Ident(n) => n == f,
                Operand::Paren(p, _) => pipe(p, f),
                _ => false,
            })
        })
    }
    nodes.iter().any(|n| match n {
        Node::Text(_) => false,
        Node::Action(p) => pipe(p, f),
        Node::If(p, a, b) | Node::With(p, a, b) | Node::Range(p, a, b) => {
            pipe(p, f) || uses_function(a, f) || uses_function(b, f)
        }
    })
}
