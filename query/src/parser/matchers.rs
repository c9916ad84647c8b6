//! Label matcher construction with a process-wide cache of compiled
//! regex matchers. Compiling `job=~"api|web"` costs tens of microseconds,
//! several times the cost of parsing a whole dashboard query, and dashboards
//! send the same selectors on every refresh.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use crate::model::{MatchOp, Matcher};

/// When the cached regex sources exceed this many bytes in all, the cache
/// is emptied (cheap, and a working set of dashboards refills it quickly).
const CAPACITY_BYTES: usize = 256 << 10;

/// Only regexes whose compiled form stays close to their length are
/// cached: at most 1 KiB, without counted repetition (`a{1000}`),
/// character classes or escapes (`\w` is a large Unicode class). Literal
/// alternations, the usual Grafana `$var` expansion, qualify. So the
/// cache's memory stays small whatever queries arrive.
fn cacheable(value: &str) -> bool {
    value.len() <= 1024 && !value.contains(['{', '[', '\\'])
}

type Key = (MatchOp, String, String);

#[derive(Default)]
struct Cache {
    map: HashMap<Key, Matcher>,
    bytes: usize,
}

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(Cache::default()))
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
    if let Some(m) = cache().lock().ok().and_then(|c| c.map.get(&key).cloned()) {
        return Ok(m);
    }
    let m = Matcher::new(op, key.1.clone(), key.2.clone())?;
    if let Ok(mut c) = cache().lock() {
        let size = key.1.len() + key.2.len();
        if c.bytes + size > CAPACITY_BYTES {
            c.map.clear();
            c.bytes = 0;
        }
        c.bytes += size;
        c.map.insert(key, m.clone());
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
        assert!(cacheable("host1:9100|host2:9100|db-.*"));
        assert!(!cacheable("a{1000}") && !cacheable("[a-z]+") && !cacheable("\\w+"));
        assert!(!cacheable(&"a".repeat(2000)));
    }
}
