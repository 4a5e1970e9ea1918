//! One module per command; each is `args -> Result<exit code, Fail>`.

pub mod eval;
pub mod graph;
pub mod plan;
pub mod run;
pub mod show;
pub mod validate;
