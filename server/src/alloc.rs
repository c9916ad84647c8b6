//! Handing memory freed by a query back to the operating system.
//!
//! The binary's global allocator is mimalloc (`main.rs`). mimalloc keeps
//! pages freed by a thread cached in that thread's heap and returns them
//! to the OS only after a delay, checked when the thread next allocates.
//! A query thread of the blocking pool may then sit idle holding the
//! gigabyte its last query freed (issue 13 measured 1.9 GiB kept after
//! `count_values` over 11,000 steps). After a query, its thread asks
//! mimalloc to collect at once.

// Links mimalloc's C library even where the global allocator is not
// mimalloc (the library's own tests): `mi_collect` is then a no-op over
// mimalloc's empty heaps.
use mimalloc as _;

extern "C" {
    /// mimalloc's `void mi_collect(bool force)`, from `mimalloc.h`
    /// (libmimalloc-sys, which the `mimalloc` crate links, exports it).
    fn mi_collect(force: bool);
}

/// Returns the memory the calling thread's mimalloc heap holds free, and
/// any abandoned by exited threads, to the OS (`mi_collect(true)`).
pub fn release_free_memory() {
    // SAFETY: `mi_collect` takes a plain `bool` (C `bool`, the same ABI as
    // Rust's `bool`) and no pointers; mimalloc documents it as callable at
    // any time from any thread ("Eagerly free memory ... If force is true,
    // aggressively return memory to the OS"), and it only releases memory
    // that no live allocation uses, so no Rust value is affected.
    unsafe { mi_collect(true) }
}
