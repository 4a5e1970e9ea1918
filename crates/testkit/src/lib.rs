//! Test support shared by the unit tests of the crates and the end-to-end
//! tests: one home, so no test copies a helper.
//!
//! - [`servers`]: a small HTTP/1.1 file server on 127.0.0.1 (byte ranges,
//!   ETags, injected faults) and a launcher for a real FTP server
//!   (pyftpdlib).
//! - [`pg`]: a fresh PostgreSQL database per test on the test cluster.

pub mod pg;
pub mod servers;
