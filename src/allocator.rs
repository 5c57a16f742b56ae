//! Tuning of the binary's allocator (mimalloc, see main.rs) between the stages of a run.
//!
//! The rules and reports make and free report chunks thousands of times a second. mimalloc
//! hands freed memory back to the system after 10 ms, and the next chunk faults the pages in
//! and zeroes them again (2 MiB huge pages); so from the rules on, freed memory is kept for
//! reuse. Validation's garbage is handed back first, so that what is kept is the rules' own
//! working set: keeping validation's too would raise peak memory for no time saved.
//!
//! Validation reads a file after another, and each file's decoded columns are freed when its
//! rows are checked: handed back after 10 ms, that memory would be faulted in again by the next
//! file's. So during validation freed memory is kept for reuse (fewer faults and less kernel
//! CPU, for a little more memory at validation's peak, which is below the run's), and handed
//! back all at once when it ends.
//!
//! Under another global allocator (the tests) mimalloc's heaps are empty and this does nothing.

/// mimalloc's `mi_option_purge_delay` (its index in `mi_option_t` of mimalloc.h, v3; the Rust
/// bindings name no constant for it).
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Keeps freed memory for reuse until [`keep_freed_memory_from_now`] hands it back (it is
/// scheduled to go back to the system in an hour, which a collection brings forward).
pub(crate) fn reuse_freed_memory_until_collected() {
    // SAFETY: sets one integer option; mimalloc documents changing options at run time.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 3_600_000)
    }
}

/// Hands every thread's freed memory back to the system, then keeps what is freed from now on.
pub(crate) fn keep_freed_memory_from_now() {
    rayon::broadcast(|_| collect());
    collect();
    // SAFETY: sets one integer option; mimalloc documents changing options at run time.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, -1)
    }
}

/// Frees and purges the calling thread's empty pages.
fn collect() {
    // SAFETY: a collection of the calling thread's own heap; no pointer is passed.
    #[allow(unsafe_code)]
    unsafe {
        libmimalloc_sys::mi_collect(true)
    }
}
