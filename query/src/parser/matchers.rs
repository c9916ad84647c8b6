//! Label matcher construction with a process-wide cache of compiled
//! regex matchers. Compiling `job=~"api|web"` costs tens of microseconds,
//! several times the cost of parsing a whole dashboard query, and dashboards
//! send the same selectors on every refresh.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::model::{MatchOp, Matcher};

/// Cached matchers beyond this count are dropped all at once (cheap, and a
/// working set of dashboards refills it quickly).
const CAPACITY: usize = 2048;

/// Only short regexes without counted repetition are cached, so the cache's
/// memory stays small whatever queries arrive (`a{1000}` compiles to a big
/// program).
fn cacheable(value: &str) -> bool {
    value.len() <= 256 && !value.contains('{')
}

type Key = (MatchOp, String, String);

fn cache() -> &'static Mutex<HashMap<Key, Matcher>> {
    static CACHE: OnceLock<Mutex<HashMap<Key, Matcher>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

/// `Matcher::new`, reusing a compiled regex when the same regex matcher was
/// built before.
pub(crate) fn new_matcher(
    op: MatchOp,
    name: String,
    value: String,
) -> Result<Matcher, regex::Error> {
    if matches!(op, MatchOp::Equal | MatchOp::NotEqual) || !cacheable(&value) {
        return Matcher::new(op, name, value);
    }
    let key = (op, name, value);
    if let Some(m) = cache().lock().ok().and_then(|c| c.get(&key).cloned()) {
        return Ok(m);
    }
    let m = Matcher::new(op, key.1.clone(), key.2.clone())?;
    if let Ok(mut c) = cache().lock() {
        if c.len() >= CAPACITY {
            c.clear();
        }
        c.insert(key, m.clone());
    }
    Ok(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cached_matchers_behave_like_fresh_ones() {
        for _ in 0..2 {
            let m = new_matcher(MatchOp::RegexMatch, "job".into(), "api|web".into())
                .expect("valid regex");
            assert!(m.matches("api") && m.matches("web") && !m.matches("apiweb"));
            let n = new_matcher(MatchOp::RegexNoMatch, "job".into(), "api|web".into())
                .expect("valid regex");
            assert!(!n.matches("api") && n.matches("db"));
        }
        assert!(new_matcher(MatchOp::RegexMatch, "a".into(), "(".into()).is_err());
    }
}
