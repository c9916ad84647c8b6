//! The PromQL syntax tree as `/api/v1/parse_query` returns it, in the shape
//! of Prometheus' `translateAST` (`type`, `op`, `lhs`/`rhs`, `matchers`,
//! durations in milliseconds, numbers as strings).

use query::ast::{AtModifier, Cardinality, Expr, UnaryOp, ValueType, VectorSelector};
use serde_json::{json, Value};

fn value_type(t: ValueType) -> &'static str {
    match t {
        ValueType::Scalar => "scalar",
        ValueType::Vector => "vector",
        ValueType::Matrix => "matrix",
        ValueType::String => "string",
    }
}

fn at(a: &Option<AtModifier>) -> (Value, Value) {
    match a {
        None => (Value::Null, Value::Null),
        Some(AtModifier::Timestamp(t)) => (json!(t), Value::Null),
        Some(AtModifier::Start) => (Value::Null, json!("start")),
        Some(AtModifier::End) => (Value::Null, json!("end")),
    }
}

fn matchers(vs: &VectorSelector) -> Value {
    vs.matchers
        .iter()
        .map(|m| json!({"type": m.op.as_str(), "name": m.name, "value": m.value}))
        .collect()
}

fn selector(kind: &str, vs: &VectorSelector) -> Value {
    let (ts, soe) = at(&vs.at);
    json!({
        "type": kind,
        "name": vs.name.clone().unwrap_or_default(),
        "offset": vs.offset,
        "matchers": matchers(vs),
        "timestamp": ts,
        "startOrEnd": soe,
    })
}

/// Translates an expression.
pub fn to_json(e: &Expr) -> Value {
    match e {
        Expr::Number(v) => json!({"type": "numberLiteral", "val": super::json::format_value(*v)}),
        Expr::String(s) => json!({"type": "stringLiteral", "val": s}),
        Expr::VectorSelector(vs) => selector("vectorSelector", vs),
        Expr::MatrixSelector(ms) => {
            let mut v = selector("matrixSelector", &ms.vs);
            v["range"] = json!(ms.range);
            v
        }
        Expr::Subquery(sq) => {
            let (ts, soe) = at(&sq.at);
            json!({
                "type": "subquery",
                "expr": to_json(&sq.expr),
                "range": sq.range,
                "offset": sq.offset,
                "step": sq.step.unwrap_or(0),
                "timestamp": ts,
                "startOrEnd": soe,
            })
        }
        Expr::Paren(inner) => json!({"type": "parenExpr", "expr": to_json(inner)}),
        Expr::Unary(op, inner) => json!({
            "type": "unaryExpr",
            "op": match op { UnaryOp::Neg => "-", UnaryOp::Pos => "+" },
            "expr": to_json(inner),
        }),
        Expr::Binary(b) => {
            let matching = b.matching.as_ref().map_or(Value::Null, |m| {
                json!({
                    "card": match m.card {
                        Cardinality::OneToOne => "one-to-one",
                        Cardinality::ManyToOne => "many-to-one",
                        Cardinality::OneToMany => "one-to-many",
                        Cardinality::ManyToMany => "many-to-many",
                    },
                    "labels": m.labels,
                    "on": m.on,
                    "include": m.include,
                })
            });
            json!({
                "type": "binaryExpr",
                "op": b.op.as_str(),
                "lhs": to_json(&b.lhs),
                "rhs": to_json(&b.rhs),
                "matching": matching,
                "bool": b.return_bool,
            })
        }
        Expr::Aggregate(a) => json!({
            "type": "aggregation",
            "op": a.op.as_str(),
            "expr": to_json(&a.expr),
            "param": a.param.as_deref().map_or(Value::Null, to_json),
            "grouping": a.grouping,
            "without": a.without,
        }),
        Expr::Call(c) => {
            let func = match query::parser::function_sig(&c.func) {
                Some(sig) => json!({
                    "name": sig.name,
                    "argTypes": sig.arg_types.iter().map(|t| value_type(*t)).collect::<Vec<_>>(),
                    "variadic": sig.variadic,
                    "returnType": value_type(sig.return_type),
                }),
                None => json!({"name": c.func}),
            };
            json!({
                "type": "call",
                "func": func,
                "args": c.args.iter().map(to_json).collect::<Vec<_>>(),
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let e = query::parser::parse("sum by (job) (rate(up{job=\"a\"}[5m])) > bool 1").unwrap();
        let v = to_json(&e);
        assert_eq!(v["type"], "binaryExpr");
        assert_eq!(v["op"], ">");
        assert_eq!(v["bool"], true);
        assert_eq!(v["rhs"], json!({"type": "numberLiteral", "val": "1"}));
        let agg = &v["lhs"];
        assert_eq!(agg["type"], "aggregation");
        assert_eq!(agg["grouping"], json!(["job"]));
        let call = &agg["expr"];
        assert_eq!(call["func"]["name"], "rate");
        assert_eq!(call["func"]["returnType"], "vector");
        let ms = &call["args"][0];
        assert_eq!(ms["type"], "matrixSelector");
        assert_eq!(ms["range"], 300_000);
        assert_eq!(ms["name"], "up");
    }
}
