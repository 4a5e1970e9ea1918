//! Unit tests of validation (filled in below).
