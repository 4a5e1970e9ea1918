//! Links the `checkflow` binary as a fixed-address executable (not PIE) on
//! Linux with glibc. A position-independent binary of this size carries about
//! 35,000 relative relocations, which the loader applies at every start by
//! writing to some 170 pages of its own; on the virtual machines we measured,
//! those page faults were about a millisecond of each start (a restart must
//! reach its place in tens of milliseconds, see BENCHMARKS.md). Address
//! randomization still applies to the stack, the heap and the libraries.
fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let var = |k: &str| std::env::var(k).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") == "linux" && var("CARGO_CFG_TARGET_ENV") == "gnu" {
        println!("cargo:rustc-link-arg-bins=-no-pie");
    }
}
