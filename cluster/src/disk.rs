//! Free space on the data volume: below `--min-free-disk-bytes` the node
//! refuses writes (503, "disk full") and reports itself not ready, before
//! RocksDB or the Raft log run into `ENOSPC`; it takes writes again by
//! itself once space is freed, as VictoriaMetrics' read-only mode does.
//! Reads keep working throughout.

use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use crate::error::ClusterError;

/// Watches one directory's file system.
#[derive(Debug)]
pub struct DiskGuard {
    dir: PathBuf,
    min_free: u64,
    free: AtomicU64,
    full: AtomicBool,
}

impl DiskGuard {
    /// A guard of `dir` with the threshold `min_free` bytes (0: off).
    pub fn new(dir: PathBuf, min_free: u64) -> Self {
        let g = DiskGuard {
            dir,
            min_free,
            free: AtomicU64::new(u64::MAX),
            full: AtomicBool::new(false),
        };
        g.refresh();
        g
    }

    /// Bytes available to this process on the data volume (as `df` shows
    /// them), or `None` when the file system cannot say.
    fn available(&self) -> Option<u64> {
        let st = rustix::fs::statvfs(&self.dir).ok()?;
        Some(st.f_bavail.saturating_mul(st.f_frsize))
    }

    /// Measures again; logs when the state changes.
    pub fn refresh(&self) {
        if self.min_free == 0 {
            return;
        }
        let Some(free) = self.available() else {
            return;
        };
        self.free.store(free, Ordering::Relaxed);
        let full = free < self.min_free;
        if self.full.swap(full, Ordering::AcqRel) != full {
            if full {
                tracing::error!(
                    free,
                    min_free = self.min_free,
                    dir = %self.dir.display(),
                    "DISK FULL: refusing writes until space is freed"
                );
            } else {
                tracing::warn!(free, dir = %self.dir.display(), "disk space freed: taking writes again");
            }
        }
    }

    /// True while free space is below the threshold.
    pub fn is_full(&self) -> bool {
        self.full.load(Ordering::Acquire)
    }

    /// The error for a write while the disk is full.
    pub fn check(&self) -> Result<(), ClusterError> {
        if !self.is_full() {
            return Ok(());
        }
        Err(ClusterError::Unavailable(format!(
            "disk full: {} bytes free on {}, below --min-free-disk-bytes={}; writes resume once space is freed",
            self.free.load(Ordering::Relaxed),
            self.dir.display(),
            self.min_free
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_below_the_threshold_and_back() {
        let dir = tempfile::tempdir().unwrap();
        let off = DiskGuard::new(dir.path().into(), 0);
        assert!(!off.is_full() && off.check().is_ok());
        let huge = DiskGuard::new(dir.path().into(), u64::MAX);
        assert!(huge.is_full());
        let e = huge.check().unwrap_err();
        assert_eq!(e.kind(), crate::ErrorKind::Unavailable);
        assert!(e.to_string().contains("disk full"), "{e}");
        let small = DiskGuard::new(dir.path().into(), 1);
        assert!(!small.is_full());
    }
}
