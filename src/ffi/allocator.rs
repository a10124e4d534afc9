//! The static build's Rust allocator (dlmalloc, see `src/main.rs`) across `fork`.
//!
//! LVM forks to run `thin_check`, and the child may log through our callback
//! (which allocates) before it execs. If another thread held dlmalloc's lock at
//! the fork, the child would wait for it forever; the atfork handlers take the
//! lock around every fork. musl's own allocator does this by itself.

/// Registers dlmalloc's fork handlers; call once, before any thread starts.
#[cfg(target_env = "musl")]
pub fn protect_allocator_across_fork() {
    // SAFETY: called once, from `cli::main` before any thread exists; dlmalloc
    // requires exactly one registration (a second would take its lock twice).
    unsafe { dlmalloc::enable_alloc_after_fork() }
}

/// The glibc build uses glibc's allocator, which is fork-safe on its own.
#[cfg(not(target_env = "musl"))]
pub fn protect_allocator_across_fork() {}
