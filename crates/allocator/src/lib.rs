//! The allocator renkei's binaries run on, and its settings. mimalloc rather than the
//! system allocator: a request allocates many small JSON values, and glibc's malloc was
//! a fifth of the CPU time under load. Its version 2 (the crate's `v2` feature) rather
//! than 3, which held 144 MiB resident with a million entities stored against 112 MiB
//! for version 2 at the same speed (the memory target is 150 MB).
//!
//! The binaries declare [`Allocator`] as their `#[global_allocator]` and call
//! [`configure`] first thing in `main`. This is the workspace's one crate allowed
//! `unsafe`, for the two foreign calls that set and read an option of mimalloc's.

pub use mimalloc::MiMalloc as Allocator;
use std::os::raw::c_long;

/// How long freed memory stays mapped before mimalloc returns it to the kernel, in
/// milliseconds. Version 2's default is 10: under batch writes, the memory a request
/// decodes its entities into is freed by the writer thread soon after, given back,
/// and faulted in again by the next request, and those page faults were a twentieth
/// of the CPU time of a batch upsert. A quarter of a second spans several requests;
/// with a million entities stored it kept 108.4 MiB resident against 105.7 MiB.
pub const PURGE_DELAY_MS: c_long = 250;

/// `mi_option_purge_delay` of mimalloc version 2's `mimalloc.h` (after
/// `mi_option_eager_commit_delay`, 14), which `libmimalloc-sys` does not name.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

/// Applies renkei's allocator settings: the purge delay above, and no transparent
/// huge pages. Call it before anything is allocated in earnest (before the runtime
/// starts); it may be called again.
pub fn configure() {
    set_purge_delay(PURGE_DELAY_MS);
    without_transparent_huge_pages();
}

/// The purge delay in force, in milliseconds.
pub fn purge_delay_ms() -> c_long {
    #[allow(unsafe_code)]
    // SAFETY: reading an option takes no pointer and is safe from any thread.
    unsafe {
        libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY)
    }
}

fn set_purge_delay(milliseconds: c_long) {
    #[allow(unsafe_code)]
    // SAFETY: setting an option takes no pointer; mimalloc reads this one on every
    // purge decision, from any thread, so a change takes effect at once.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, milliseconds)
    };
}

/// Opts the process out of transparent huge pages. mimalloc asks for them by default,
/// and where the kernel grants them every touched 2 MiB region of the heap becomes
/// resident whole: 12 MiB more at start-up, and 145 MiB instead of 130 MiB with a
/// million entities stored. The same as running with `MIMALLOC_ALLOW_THP=0`, but not
/// left to the operator to remember.
fn without_transparent_huge_pages() {
    #[cfg(target_os = "linux")]
    if let Err(e) = nix::sys::prctl::set_thp_disable(true) {
        // Only memory is at stake: say so and go on.
        eprintln!("renkei: could not opt out of transparent huge pages: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn configure_sets_the_purge_delay_and_turns_huge_pages_off() {
        // Version 2's default for the purge delay (and for no option next to it):
        // the option number is the one meant.
        assert_eq!(purge_delay_ms(), 10);
        configure();
        assert_eq!(purge_delay_ms(), PURGE_DELAY_MS);
        #[cfg(target_os = "linux")]
        assert_eq!(nix::sys::prctl::get_thp_disable().ok(), Some(true));
    }
}
