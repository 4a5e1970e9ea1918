//! [`Spanned`]: a value and where it was written, and the two ways it is
//! serialized.
//!
//! From YAML it is read through serde-saphyr's own `Spanned` (which knows the
//! parser's positions). Written out, it has two forms, chosen per thread:
//! - **fingerprint form** (the default): the value alone, so that moving a task
//!   to another line does not change its fingerprint; fields that do not
//!   affect what a task does (`name`, `after`, ...) are left out;
//! - **faithful form**, inside [`faithful`]: `[line, column, value]` and every
//!   field, so that the package cache (see `crate::cache`) gives back exactly
//!   what the YAML parser gave, positions included.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::cell::Cell;

/// A value and the position (1-based line and column) it was written at.
#[derive(Clone, Debug, PartialEq)]
pub struct Spanned<T> {
    /// The value.
    pub value: T,
    /// Where it was written.
    pub referenced: Location,
}

/// A 1-based line and column in the package file (0 when unknown).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Location {
    line: u32,
    column: u32,
}

impl Location {
    /// A position.
    pub fn new(line: u32, column: u32) -> Location {
        Location { line, column }
    }

    /// 1-based line.
    pub fn line(&self) -> u32 {
        self.line
    }

    /// 1-based column.
    pub fn column(&self) -> u32 {
        self.column
    }
}

impl<T> Spanned<T> {
    /// A value written at `line`, `column`.
    pub fn new(value: T, line: u32, column: u32) -> Spanned<T> {
        Spanned {
            value,
            referenced: Location::new(line, column),
        }
    }
}

thread_local! {
    static FAITHFUL: Cell<bool> = const { Cell::new(false) };
}

/// Runs `f` with the faithful form on this thread (then restores the form
/// that was in effect, also if `f` panics).
pub(crate) fn faithful<R>(f: impl FnOnce() -> R) -> R {
    struct Restore(bool);
    impl Drop for Restore {
        fn drop(&mut self) {
            FAITHFUL.with(|c| c.set(self.0));
        }
    }
    let _restore = Restore(FAITHFUL.with(|c| c.replace(true)));
    f()
}

fn is_faithful() -> bool {
    FAITHFUL.with(|c| c.get())
}

/// `skip_serializing_if` for fields the fingerprint leaves out: true unless
/// the faithful form is in effect.
pub(crate) fn fingerprinting<T>(_: &T) -> bool {
    !is_faithful()
}

/// The same for optional fields, which are also left out when absent.
pub(crate) fn fingerprinting_or_none<T>(v: &Option<T>) -> bool {
    v.is_none() || !is_faithful()
}

impl<T: Serialize> Serialize for Spanned<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if is_faithful() {
            (self.referenced.line, self.referenced.column, &self.value).serialize(s)
        } else {
            self.value.serialize(s)
        }
    }
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Spanned<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        if is_faithful() {
            let (line, column, value) = <(u32, u32, T)>::deserialize(d)?;
            return Ok(Spanned::new(value, line, column));
        }
        let s = serde_saphyr::Spanned::<T>::deserialize(d)?;
        Ok(Spanned::new(
            s.value,
            s.referenced.line() as u32,
            s.referenced.column() as u32,
        ))
    }
}
