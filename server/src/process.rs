//! Process figures from `/proc` (Linux): resident memory, CPU time, open
//! file descriptors and start time. Elsewhere every figure reads 0.

/// One reading.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct ProcessSample {
    /// Resident set size in bytes (`VmRSS`).
    pub rss_bytes: u64,
    /// User + system CPU seconds.
    pub cpu_seconds: f64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// Start time, unix seconds.
    pub start_time_seconds: f64,
}

/// Clock ticks per second of `/proc/<pid>/stat` times: `USER_HZ`, 100 on
/// every Linux architecture the kernel exposes to user space.
const USER_HZ: f64 = 100.0;

/// Reads the current figures.
pub fn sample() -> ProcessSample {
    let mut s = ProcessSample::default();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        s.rss_bytes = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .map_or(0, |kb| kb * 1024);
    }
    if let Ok(stat) = std::fs::read_to_string("/proc/self/stat") {
        // Fields after the parenthesised command name, which may hold spaces.
        if let Some(rest) = stat.rsplit_once(')').map(|(_, r)| r) {
            let f: Vec<&str> = rest.split_whitespace().collect();
            // rest[0] is field 3 (state); utime=14, stime=15, starttime=22.
            let num = |i: usize| {
                f.get(i - 3)
                    .and_then(|v| v.parse::<f64>().ok())
                    .unwrap_or(0.0)
            };
            s.cpu_seconds = (num(14) + num(15)) / USER_HZ;
            if let Some(btime) = boot_time() {
                s.start_time_seconds = btime + num(22) / USER_HZ;
            }
        }
    }
    if let Ok(d) = std::fs::read_dir("/proc/self/fd") {
        s.open_fds = d.count() as u64;
    }
    s
}

fn boot_time() -> Option<f64> {
    std::fs::read_to_string("/proc/stat")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("btime "))
        .and_then(|v| v.trim().parse().ok())
}

#[cfg(test)]
mod tests {
    #[test]
    #[cfg(target_os = "linux")]
    fn reads_this_process() {
        let s = super::sample();
        assert!(s.rss_bytes > 1 << 20, "{s:?}");
        assert!(s.open_fds > 2, "{s:?}");
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs_f64();
        assert!(
            s.start_time_seconds > now - 3600.0 && s.start_time_seconds <= now + 1.0,
            "{s:?}"
        );
    }
}
