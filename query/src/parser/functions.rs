//! The PromQL function table: name, argument types, arity and return type of
//! every function Prometheus 3.x knows (the facts of its documentation).

use crate::ast::ValueType;

/// The signature of a PromQL function.
#[derive(Debug, PartialEq, Eq)]
pub struct FunctionSig {
    /// Function name.
    pub name: &'static str,
    /// Argument types. With `variadic != 0` the last type repeats.
    pub arg_types: &'static [ValueType],
    /// 0: exactly `arg_types.len()` arguments; n > 0: the last argument is
    /// optional and may repeat up to n times in all; -1: it repeats without
    /// limit (at least `arg_types.len() - 1` arguments).
    pub variadic: i32,
    /// The type of the result.
    pub return_type: ValueType,
    /// Prometheus gates the function behind
    /// `--enable-feature=promql-experimental-functions`.
    pub experimental: bool,
}

const V: ValueType = ValueType::Vector;
const S: ValueType = ValueType::Scalar;
const M: ValueType = ValueType::Matrix;
const STR: ValueType = ValueType::String;

const fn sig(
    name: &'static str,
    arg_types: &'static [ValueType],
    variadic: i32,
    return_type: ValueType,
    experimental: bool,
) -> FunctionSig {
    FunctionSig {
        name,
        arg_types,
        variadic,
        return_type,
        experimental,
    }
}

/// Every function, sorted by name (looked up by binary search).
static FUNCTIONS: &[FunctionSig] = &[
    sig("abs", &[V], 0, V, false),
    sig("absent", &[V], 0, V, false),
    sig("absent_over_time", &[M], 0, V, false),
    sig("acos", &[V], 0, V, false),
    sig("acosh", &[V], 0, V, false),
    sig("asin", &[V], 0, V, false),
    sig("asinh", &[V], 0, V, false),
    sig("atan", &[V], 0, V, false),
    sig("atanh", &[V], 0, V, false),
    sig("avg_over_time", &[M], 0, V, false),
    sig("ceil", &[V], 0, V, false),
    sig("changes", &[M], 0, V, false),
    sig("clamp", &[V, S, S], 0, V, false),
    sig("clamp_max", &[V, S], 0, V, false),
    sig("clamp_min", &[V, S], 0, V, false),
    sig("cos", &[V], 0, V, false),
    sig("cosh", &[V], 0, V, false),
    sig("count_over_time", &[M], 0, V, false),
    sig("day_of_month", &[V], 1, V, false),
    sig("day_of_week", &[V], 1, V, false),
    sig("day_of_year", &[V], 1, V, false),
    sig("days_in_month", &[V], 1, V, false),
    sig("deg", &[V], 0, V, false),
    sig("delta", &[M], 0, V, false),
    sig("deriv", &[M], 0, V, false),
    sig("double_exponential_smoothing", &[M, S, S], 0, V, true),
    sig("end", &[], 0, S, true),
    sig("exp", &[V], 0, V, false),
    sig("first_over_time", &[M], 0, V, false),
    sig("floor", &[V], 0, V, false),
    sig("histogram_avg", &[V], 0, V, false),
    sig("histogram_count", &[V], 0, V, false),
    sig("histogram_fraction", &[S, S, V], 0, V, false),
    sig("histogram_quantile", &[S, V], 0, V, false),
    sig("histogram_quantiles", &[V, STR, S, S], 9, V, true),
    sig("histogram_stddev", &[V], 0, V, false),
    sig("histogram_stdvar", &[V], 0, V, false),
    sig("histogram_sum", &[V], 0, V, false),
    sig("hour", &[V], 1, V, false),
    sig("idelta", &[M], 0, V, false),
    sig("increase", &[M], 0, V, false),
    sig("info", &[V, V], 1, V, true),
    sig("irate", &[M], 0, V, false),
    sig("label_join", &[V, STR, STR, STR], -1, V, false),
    sig("label_replace", &[V, STR, STR, STR, STR], 0, V, false),
    sig("last_over_time", &[M], 0, V, false),
    sig("ln", &[V], 0, V, false),
    sig("log10", &[V], 0, V, false),
    sig("log2", &[V], 0, V, false),
    sig("mad_over_time", &[M], 0, V, true),
    sig("max_of", &[S, S], 0, S, true),
    sig("max_over_time", &[M], 0, V, false),
    sig("min_of", &[S, S], 0, S, true),
    sig("min_over_time", &[M], 0, V, false),
    sig("minute", &[V], 1, V, false),
    sig("month", &[V], 1, V, false),
    sig("pi", &[], 0, S, false),
    sig("predict_linear", &[M, S], 0, V, false),
    sig("present_over_time", &[M], 0, V, false),
    sig("quantile_over_time", &[S, M], 0, V, false),
    sig("rad", &[V], 0, V, false),
    sig("range", &[], 0, S, true),
    sig("rate", &[M], 0, V, false),
    sig("resets", &[M], 0, V, false),
    sig("round", &[V, S], 1, V, false),
    sig("scalar", &[V], 0, S, false),
    sig("sgn", &[V], 0, V, false),
    sig("sin", &[V], 0, V, false),
    sig("sinh", &[V], 0, V, false),
    sig("sort", &[V], 0, V, false),
    sig("sort_by_label", &[V, STR], -1, V, true),
    sig("sort_by_label_desc", &[V, STR], -1, V, true),
    sig("sort_desc", &[V], 0, V, false),
    sig("sqrt", &[V], 0, V, false),
    sig("start", &[], 0, S, true),
    sig("start_timestamp", &[V], 0, V, true),
    sig("stddev_over_time", &[M], 0, V, false),
    sig("stdvar_over_time", &[M], 0, V, false),
    sig("step", &[], 0, S, true),
    sig("sum_over_time", &[M], 0, V, false),
    sig("tan", &[V], 0, V, false),
    sig("tanh", &[V], 0, V, false),
    sig("time", &[], 0, S, false),
    sig("timestamp", &[V], 0, V, false),
    sig("ts_of_first_over_time", &[M], 0, V, true),
    sig("ts_of_last_over_time", &[M], 0, V, true),
    sig("ts_of_max_over_time", &[M], 0, V, true),
    sig("ts_of_min_over_time", &[M], 0, V, true),
    sig("vector", &[S], 0, V, false),
    sig("year", &[V], 1, V, false),
];

/// The signature of function `name`, if PromQL has such a function.
pub fn function_sig(name: &str) -> Option<&'static FunctionSig> {
    FUNCTIONS
        .binary_search_by(|f| f.name.cmp(name))
        .ok()
        .map(|i| &FUNCTIONS[i])
}

/// All functions, sorted by name.
pub fn functions() -> &'static [FunctionSig] {
    FUNCTIONS
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_sorted_and_lookup_works() {
        assert!(FUNCTIONS.windows(2).all(|w| w[0].name < w[1].name));
        let f = |name: &str, want: Option<(usize, i32, ValueType)>| {
            let got = function_sig(name).map(|s| (s.arg_types.len(), s.variadic, s.return_type));
            assert_eq!(got, want, "{name}");
        };
        f("rate", Some((1, 0, V)));
        f("label_join", Some((4, -1, V)));
        f("round", Some((2, 1, V)));
        f("time", Some((0, 0, S)));
        f("scalar", Some((1, 0, S)));
        f("nope", None);
        assert!(function_sig("sort_by_label").is_some_and(|s| s.experimental));
    }
}
