//! Test support: a fresh PostgreSQL database per test on the throwaway
//! cluster that `scripts/test.sh` starts and names in `CHECKFLOW_TEST_PG_URL`.
//!
//! When the variable is set, a test that cannot reach the cluster fails. When
//! it is not (`cargo test` by hand, without the script), PostgreSQL tests
//! print why and skip.

use std::sync::atomic::{AtomicU32, Ordering};

/// The variable naming the test cluster's admin URL.
pub(crate) const URL_VAR: &str = "CHECKFLOW_TEST_PG_URL";

/// The URL of a new, empty database, or `None` (after saying why) when no
/// test cluster is configured.
pub(crate) fn fresh_db(test: &str) -> Option<String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let Ok(admin) = std::env::var(URL_VAR) else {
        eprintln!(
            "skipping {test}: {URL_VAR} is not set (scripts/test.sh starts a PostgreSQL cluster and sets it)"
        );
        return None;
    };
    let name = format!(
        "cf_u_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        test.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(30)
            .collect::<String>()
            .to_lowercase()
    );
    let mut c = postgres::Client::connect(&admin, postgres::NoTls)
        .unwrap_or_else(|e| panic!("{URL_VAR} is set but the cluster is unreachable: {e}"));
    c.batch_execute(&format!("CREATE DATABASE {name}"))
        .unwrap_or_else(|e| panic!("cannot create test database {name}: {e}"));
    Some(with_db_name(&admin, &name))
}

/// `url` with its database replaced by `db`.
pub(crate) fn with_db_name(url: &str, db: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, format!("?{q}")),
        None => (url, String::new()),
    };
    let scheme_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[scheme_end..].find('/') {
        Some(i) => &base[..scheme_end + i],
        None => base,
    };
    format!("{base}/{db}{query}")
}
