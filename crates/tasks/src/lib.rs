//! Task types, one module each. [`registry`] lists them for `plan::validate`.
//!
//! Each type implements `checkflow_plan::TaskType` (which fields it takes, how it
//! is checked) and returns an `Action` (what it does). The executor knows only
//! `Action`, so a new type is one new module and one line in [`registry`].

mod bulk;
pub mod db;
mod download;
mod expression;
mod file;
mod leftovers;
mod package;
mod process;
mod script;
mod sql;
#[cfg(test)]
mod testcx;

use checkflow_plan::Registry;
pub use leftovers::die_with_parent;

/// Every task type this build knows.
pub fn registry() -> Registry {
    let mut r = Registry::new();
    r.add(Box::new(process::ProcessType));
    r.add(Box::new(expression::ExpressionType));
    r.add(Box::new(file::FileType));
    r.add(Box::new(download::DownloadType));
    r.add(Box::new(sql::SqlType));
    r.add(Box::new(bulk::BulkInsertType));
    r.add_probe(Box::new(db::SqliteProbe));
    r.add_probe(Box::new(db::PostgresProbe));
    r.add(Box::new(script::ScriptType));
    r.add(Box::new(package::PackageType));
    r
}
