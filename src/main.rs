//! The `checkflow` binary: a thin shell over `checkflow_cli::main`.

// Loading a package allocates many small strings and maps; mimalloc makes
// that (and freeing them) markedly cheaper than the system allocator (see
// BENCHMARKS.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() {
    std::process::exit(checkflow_cli::main());
}
