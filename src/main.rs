//! The `checkflow` binary: a thin shell over `checkflow_cli::main`.

// Loading a package allocates many small strings and maps; mimalloc makes
// that (and freeing them) markedly cheaper than the system allocator (see
// BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    let code = checkflow_cli::main();
    // What checkflow writes goes through buffers it flushes itself; these
    // are the standard streams' own.
    use std::io::Write;
    let _ = std::io::stdout().flush();
    let _ = std::io::stderr().flush();
    #[cfg(unix)]
    // SAFETY: `_exit` ends the process at once. It skips the C exit
    // handlers, which is the point: mimalloc's would walk and free every page
    // of a process that is ending (a millisecond or more after a large run).
    // Nothing of checkflow's is left to run: its files are written and
    // synced where durability is claimed, its locks are removed by their
    // owners, and the output is flushed above.
    unsafe {
        libc::_exit(code)
    }
    #[cfg(not(unix))]
    std::process::exit(code);
}
