//! The executable lifecycle: one table of states and the moves between them.
//!
//! ```text
//! Pending -> Queued -> Running -> Done | Waiting(retry) | Cancelled
//! Pending -> Active (containers) -> Done | Cancelled
//! Pending -> Restored | NotRun | Disabled
//! Waiting -> Running | Done
//! any terminal state -> Pending (a loop starts its next iteration)
//! ```

use crate::event::{Outcome, Status};

/// Where an executable is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum State {
    /// Not started.
    #[default]
    Pending,
    /// Ready, waiting for a free slot (max_concurrent).
    Queued,
    /// A task is running.
    Running,
    /// A failed task waits to retry.
    Waiting,
    /// A container is running its children.
    Active,
    /// Finished with a result.
    Done(Outcome),
    /// Restored from the checkpoint.
    Restored(Outcome),
    /// Its constraints can no longer hold.
    NotRun,
    /// Disabled.
    Disabled,
    /// Stopped before finishing.
    Cancelled,
}

impl State {
    /// Finished one way or another.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            State::Done(_)
                | State::Restored(_)
                | State::NotRun
                | State::Disabled
                | State::Cancelled
        )
    }

    /// Started and not finished.
    pub fn is_busy(self) -> bool {
        matches!(
            self,
            State::Queued | State::Running | State::Waiting | State::Active
        )
    }

    /// The line it gets in the summary.
    pub fn status(self) -> Status {
        match self {
            State::Pending | State::Queued | State::NotRun => Status::NotRun,
            State::Running | State::Waiting | State::Active | State::Cancelled => Status::Cancelled,
            State::Done(Outcome::Success) => Status::Succeeded,
            State::Done(Outcome::Failure) => Status::Failed,
            State::Done(Outcome::Completion) => Status::Completed,
            State::Restored(_) => Status::Restored,
            State::Disabled => Status::Disabled,
        }
    }

    /// Whether the lifecycle allows moving from `self` to `to`.
    pub fn can_move_to(self, to: State) -> bool {
        use State::*;
        match (self, to) {
            (Pending, Queued | Running | Active | Restored(_) | NotRun | Disabled) => true,
            (Queued, Running | Pending) => true,
            (Running, Done(_) | Waiting | Cancelled) => true,
            (Waiting, Running | Done(_) | Cancelled) => true,
            (Active, Done(_) | Cancelled) => true,
            (s, Pending) if s.is_terminal() => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [State; 12] = [
        State::Pending,
        State::Queued,
        State::Running,
        State::Waiting,
        State::Active,
        State::Done(Outcome::Success),
        State::Done(Outcome::Failure),
        State::Done(Outcome::Completion),
        State::Restored(Outcome::Success),
        State::NotRun,
        State::Disabled,
        State::Cancelled,
    ];

    #[test]
    fn every_edge_of_the_lifecycle() {
        let allowed = |a: State, b: State| a.can_move_to(b);
        // Every state can be left, and only terminal states go back to Pending.
        for a in ALL {
            assert!(ALL.iter().any(|b| allowed(a, *b)), "{a:?} is a dead end");
            assert_eq!(
                allowed(a, State::Pending),
                a.is_terminal() || a == State::Queued,
                "{a:?} -> Pending"
            );
        }
        // Nothing finishes without having started, except the three ways to skip.
        for b in ALL.iter().filter(|b| b.is_terminal()) {
            let from_pending = allowed(State::Pending, *b);
            let skip = matches!(b, State::Restored(_) | State::NotRun | State::Disabled);
            assert_eq!(from_pending, skip, "Pending -> {b:?}");
        }
        assert!(allowed(State::Running, State::Waiting));
        assert!(allowed(State::Waiting, State::Running));
        assert!(!allowed(State::Active, State::Waiting));
        assert!(!allowed(State::Done(Outcome::Success), State::Running));
    }

    #[test]
    fn summary_status_of_each_state() {
        assert_eq!(State::Pending.status(), Status::NotRun);
        assert_eq!(State::Done(Outcome::Failure).status(), Status::Failed);
        assert_eq!(State::Restored(Outcome::Failure).status(), Status::Restored);
        assert_eq!(State::Disabled.status(), Status::Disabled);
    }
}
