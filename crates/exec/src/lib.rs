//! The executor: [`run`] walks a [`Plan`](checkflow_plan::Plan) and emits events.
//!
//! 1. [`resume`] decides, from what a checkpoint recorded, what is restored and what runs.
//! 2. [`run`] starts executables as their precedence constraints allow, bounded by
//!    `max_concurrent`, counts errors up the tree, and stops starting new work when
//!    the package fails or is interrupted.
//! 3. Every completion that may be recorded goes to the [`Recorder`] and is durable
//!    before anything that depends on it starts; every step goes to the [`Reporter`].
//!
//! It never touches files: the journal and the console are the caller's.

mod dispatcher;
mod enumerate;
mod event;
mod resume;
mod state;
mod vars;

pub use dispatcher::{RunOptions, humantime, now_civil, run};
pub use enumerate::{Item, enumerate, rows_of, split_finished};
pub use event::*;
pub use resume::{ChangedPolicy, Decision, Reason, Recorded, Resume, ResumeError, resume};
pub use state::State;
pub use vars::{TaskEnv, VarStore, eval_and_assign};

#[cfg(test)]
mod tests;
