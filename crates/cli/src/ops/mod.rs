//! One module per command; each is `args -> Result<exit code, Fail>`.
//!
//! A command builds its whole output in a `String` (with [`outln!`]) and hands
//! it to [`emit`], which turns a failed write into an error instead of the
//! panic of `println!`.

/// `writeln!` into a `String`, which cannot fail.
macro_rules! outln {
    ($buf:expr, $($arg:tt)*) => {{
        use std::fmt::Write as _;
        let _ = writeln!($buf, $($arg)*);
    }};
}

pub mod eval;
pub mod graph;
pub mod new;
pub mod plan;
pub mod queue;
pub mod run;
pub mod show;
pub mod validate;
pub mod worker;

use crate::exit;
use crate::session::Fail;
use std::io::{ErrorKind, Write};

/// Writes a command's output to standard output. A reader that went away
/// (`checkflow checkpoint show f | head -1`) is not an error: the output was
/// not wanted any more. Any other failure (a full disk behind a redirection)
/// is, with the reason.
pub fn emit(text: &str) -> Result<(), Fail> {
    let mut so = std::io::stdout().lock();
    match so.write_all(text.as_bytes()).and_then(|()| so.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(Fail::new(
            exit::FAILURE,
            format!("cannot write to standard output: {e}"),
        )),
    }
}
