//! End-to-end tests: every scenario of SPEC §4 that the engine supports,
//! and the command line's contract (§3), run through the real binary.

mod bad_inputs;
mod bulk_exactly_once;
mod checkpoint_rules;
mod child_checkpoints;
mod child_packages;
mod cli;
mod crash;
mod crash_matrix;
mod data_tasks;
mod dataflow;
mod disk_errors;
mod downloads;
mod exactly_once;
mod examples;
mod failure_paths;
mod first_hour;
mod kill_at_scale;
mod leftovers;
mod package_cache;
mod pg;
mod restart;
mod restart_options;
mod runtime;
mod soak;
mod support;
mod symlinks;
/// The loopback HTTP and FTP servers of the download tests (std only), shared
/// by `downloads` and `examples`.
#[path = "../../crates/tasks/src/download/test_server.rs"]
mod test_server;
