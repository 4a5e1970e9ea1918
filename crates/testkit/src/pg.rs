//! A fresh PostgreSQL database per test on the throwaway cluster that
//! `scripts/test.sh` starts and names in `CHECKFLOW_TEST_PG_URL`.
//!
//! When the variable is set, a test that cannot reach the cluster fails. When
//! it is not (`cargo test` by hand, without the script), PostgreSQL tests
//! print why and skip.

use std::process::Command;
use std::sync::atomic::{AtomicU32, Ordering};

/// The variable naming the test cluster's admin URL.
pub const URL_VAR: &str = "CHECKFLOW_TEST_PG_URL";

/// The URL of a new, empty database, or `None` (after saying why) when no
/// test cluster is configured.
pub fn fresh_db(test: &str) -> Option<String> {
    static N: AtomicU32 = AtomicU32::new(0);
    let Ok(admin) = std::env::var(URL_VAR) else {
        eprintln!(
            "skipping the PostgreSQL part of {test}: {URL_VAR} is not set (scripts/test.sh starts a cluster and sets it)"
        );
        return None;
    };
    let name = format!(
        "cf_{}_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst),
        test.chars()
            .filter(char::is_ascii_alphanumeric)
            .take(30)
            .collect::<String>()
            .to_lowercase()
    );
    let out = Command::new(psql())
        .args([admin.as_str(), "-v", "ON_ERROR_STOP=1", "-qc"])
        .arg(format!("CREATE DATABASE {name}"))
        .output()
        .unwrap_or_else(|e| panic!("{URL_VAR} is set but psql cannot run: {e}"));
    assert!(
        out.status.success(),
        "{URL_VAR} is set but CREATE DATABASE failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Some(with_db_name(&admin, &name))
}

/// `psql` on the PATH, or the newest server's.
fn psql() -> String {
    if Command::new("psql").arg("--version").output().is_ok() {
        return "psql".into();
    }
    let mut bins: Vec<_> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path().join("bin/psql"))
                .collect()
        })
        .unwrap_or_default();
    bins.sort();
    bins.pop()
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| "psql".into())
}

/// `url` with its database replaced by `db`.
pub fn with_db_name(url: &str, db: &str) -> String {
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
