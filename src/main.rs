//! The `chatvault` command: the allocator's setup, then [`chatvault::cli`], which parses
//! the arguments, runs the command and maps errors to exit codes.

use std::process::ExitCode;

// Readers allocate messages on one thread and the writer frees them on another; glibc's
// allocator serializes that on an arena lock, mimalloc's thread-local heaps do not.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc's `mi_option_e` values (mimalloc.h v3, pinned with the crate in Cargo.toml).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;

fn main() -> ExitCode {
    // Return freed memory to the system at once and commit arena memory only as it is used.
    // With this (and without transparent huge pages, see Cargo.toml) peak RSS of a WeChat
    // export is 20 MB at 1M, 21 MB at 4M and 22 MB at 8M messages; with mimalloc's
    // defaults it crept from 35 MB to 43 MB.
    // SAFETY: plain integer options, set before any thread is started.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
    }
    ExitCode::from(chatvault::cli::main())
}
