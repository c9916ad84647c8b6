//! CPU time and memory of server processes, from `/proc/<pid>/stat` and
//! `/proc/<pid>/status`.

use anyhow::{anyhow, Context, Result};

/// `utime + stime` in clock ticks from the text of `/proc/<pid>/stat`.
pub fn parse_stat_ticks(stat: &str) -> Result<u64> {
    // The command name (field 2) may hold spaces and parentheses; the fields
    // after its closing parenthesis start with state (field 3), so utime
    // (14) and stime (15) are the 12th and 13th of them.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| anyhow!("no ')' in /proc stat line"))?;
    let f: Vec<&str> = rest.split_whitespace().collect();
    let get = |i: usize| -> Result<u64> {
        f.get(i)
            .ok_or_else(|| anyhow!("stat line has only {} fields", f.len()))?
            .parse::<u64>()
            .context("stat field is not a number")
    };
    Ok(get(11)? + get(12)?)
}

/// A `kB` field (e.g. `VmHWM`) of `/proc/<pid>/status`, in bytes.
pub fn parse_status_kb(status: &str, field: &str) -> Result<u64> {
    let line = status
        .lines()
        .find(|l| l.split(':').next() == Some(field))
        .ok_or_else(|| anyhow!("no {field} in /proc status"))?;
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .ok_or_else(|| anyhow!("empty {field} line"))?
        .parse()
        .with_context(|| format!("bad {field} line {line:?}"))?;
    Ok(kb * 1024)
}

/// CPU seconds (user + system) used so far by `pid`.
pub fn cpu_seconds(pid: u32, clk_tck: u64) -> Result<f64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("cannot read /proc/{pid}/stat"))?;
    Ok(parse_stat_ticks(&s)? as f64 / clk_tck.max(1) as f64)
}

/// A memory field of `pid` in bytes (`VmHWM`: peak RSS, `VmRSS`: current).
pub fn memory(pid: u32, field: &str) -> Result<u64> {
    let s = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    parse_status_kb(&s, field)
}

/// Sums `f` over `pids`.
pub fn sum<T: std::iter::Sum<T>>(pids: &[u32], f: impl Fn(u32) -> Result<T>) -> Result<T> {
    pids.iter().map(|&p| f(p)).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_and_status() {
        let stat = "1234 (odd) name)) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 8 0 99 1000 200";
        assert_eq!(parse_stat_ticks(stat).expect("stat"), 325);
        assert!(parse_stat_ticks("1 (x) S 1").is_err());
        let status = "Name:\tx\nVmPeak:\t  9000 kB\nVmHWM:\t    2048 kB\nVmRSS:\t  1024 kB\n";
        assert_eq!(parse_status_kb(status, "VmHWM").expect("hwm"), 2048 * 1024);
        assert_eq!(parse_status_kb(status, "VmRSS").expect("rss"), 1024 * 1024);
        assert!(parse_status_kb(status, "VmSwap").is_err());
    }

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(cpu_seconds(me, 100).expect("cpu") >= 0.0);
        assert!(memory(me, "VmHWM").expect("hwm") > 0);
    }
}
