//! Exit codes, as dtexec's.

/// The package ran successfully.
pub const SUCCESS: i32 = 0;
/// The package failed (or could not start: checkpoint problems, locks); also
/// any other command that failed (`checkpoint show` of a missing file, `new`
/// over an existing one).
pub const FAILURE: i32 = 1;
/// The run was cancelled (Ctrl-C, SIGTERM).
pub const CANCELLED: i32 = 3;
/// The package file was not found or could not be read (package files only).
pub const NOT_FOUND: i32 = 4;
/// The package could not be loaded or validated.
pub const INVALID: i32 = 5;
/// The command line was bad, or gave no command (the help is printed then, as
/// dtexec prints its usage when given no options).
pub const BAD_COMMAND_LINE: i32 = 6;

/// The exit code of a run that ended with `outcome`.
pub fn of(outcome: checkflow_exec::PackageOutcome) -> i32 {
    match outcome {
        checkflow_exec::PackageOutcome::Success => SUCCESS,
        checkflow_exec::PackageOutcome::Failure => FAILURE,
        checkflow_exec::PackageOutcome::Cancelled => CANCELLED,
    }
}
