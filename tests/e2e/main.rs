//! End-to-end tests: every scenario of docs/semantics.md §8,
//! and the command line's contract (§7), run through the real binary.

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
mod dataflow_exprs;
mod dataflow_resume;
mod disk_errors;
mod downloads;
mod event_handlers;
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
mod store;
mod support;
mod symlinks;
/// The loopback HTTP and FTP servers of the download tests, shared by
/// `downloads` and `examples`.
use checkflow_testkit::servers as test_server;
