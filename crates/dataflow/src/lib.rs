//! The Data Flow task (`type: data_flow`): rows stream from sources through
//! transforms into destinations, as Arrow record batches.
//!
//! 1. [`spec::validate`] reads each component from its YAML map, resolves
//!    inputs (`input: NAME` or `NAME.OUTPUT`), orders the graph, rejects
//!    cycles, and works out the columns (with SSIS types, [`types`]) of
//!    every path, so that a bad flow fails validation with its lines.
//! 2. [`flow::run`] starts one thread per component, joined by bounded
//!    channels ([`runtime`]); the row-holding components (sort, aggregate,
//!    union all, merge join) are DataFusion plans over those channels
//!    ([`ops`]), under a memory pool that spills to disk.
//! 3. Derived columns and conditional splits evaluate SSIS expressions a
//!    batch at a time ([`vexpr`]).
//! 4. Destinations commit together when every component has finished:
//!    database destinations in one transaction per connection (or the
//!    container's transaction), files written aside and renamed into place.

mod derive;
mod flow;
pub mod ops;
pub mod resume;
pub mod runtime;
pub mod sinks;
pub mod sources;
pub mod spec;
mod tables;
pub mod text;
pub mod transforms;
pub mod types;
pub mod vexpr;

use checkflow_expr::DataType;
use checkflow_model::{SourcePos, TaskDef};
use checkflow_plan::{Action, BuildCx, RunCx, TaskError, TaskType};
use checkflow_tasks::db::Connection;
use std::sync::Arc;

/// The `data_flow` task type.
pub struct DataFlowType;

struct Rep<'a, 'b> {
    cx: &'a mut BuildCx<'b>,
}

impl spec::Report for Rep<'_, '_> {
    fn error_at(&mut self, pos: SourcePos, msg: String) {
        self.cx.error_at(pos, msg);
    }

    fn writable_var(&mut self, name: &str, pos: SourcePos) -> Option<(u32, DataType)> {
        self.cx.writable_var(name, pos)
    }

    fn readable_var(&mut self, name: &str, pos: SourcePos) -> Option<(u32, DataType)> {
        self.cx.readable_var(name, pos)
    }

    fn variables(&self) -> &dyn checkflow_expr::Scope {
        self.cx.vars()
    }

    fn db_connection(&mut self, name: &str, pos: SourcePos) -> Option<Connection> {
        let def = self.cx.connection(name, &["sqlite", "postgres"])?;
        match Connection::from_def(name, &def, self.cx.package_dir()) {
            Ok(c) => Some(c),
            Err(e) => {
                self.cx.error_at(pos, e);
                None
            }
        }
    }
}

impl TaskType for DataFlowType {
    fn name(&self) -> &'static str {
        "data_flow"
    }

    fn fields(&self) -> &'static [&'static str] {
        &["components", "memory_limit", "resume", "commit_rows"]
    }

    fn build(&self, def: &TaskDef, cx: &mut BuildCx<'_>) -> Option<Arc<dyn Action>> {
        let fd = def.flow_def();
        let Some(components) = &fd.components else {
            cx.missing("components", "data_flow");
            return None;
        };
        let spec = spec::validate(components, fd.memory_limit.as_ref(), &mut Rep { cx });
        let resume = def.data().resume.unwrap_or(false);
        let mut ok = true;
        let mut every = None;
        if let Some(c) = &fd.commit_rows {
            if !resume {
                cx.error_at(
                    checkflow_model::pos_of(c),
                    "`commit_rows` needs `resume: true`",
                );
                ok = false;
            } else if c.value == 0 {
                cx.error_at(
                    checkflow_model::pos_of(c),
                    "`commit_rows` must be 1 or more",
                );
                ok = false;
            }
        }
        if resume {
            every = Some(
                fd.commit_rows
                    .as_ref()
                    .map_or(resume::DEFAULT_COMMIT_ROWS, |c| c.value),
            );
            if let Some(Err(why)) = spec.as_ref().map(resume::check) {
                cx.error(why);
                ok = false;
            }
        }
        let mut spec = spec?;
        spec.resume = every;
        ok.then(|| {
            Arc::new(DataFlowAction {
                spec: Arc::new(spec),
            }) as Arc<dyn Action>
        })
    }
}

struct DataFlowAction {
    spec: Arc<spec::FlowSpec>,
}

impl Action for DataFlowAction {
    fn run(&self, cx: &mut dyn RunCx) -> Result<(), TaskError> {
        flow::run(&self.spec, cx)
    }
}
