//! The package cache (README "Package cache"): a large package whose bytes
//! have not changed is read from the cache instead of being parsed again;
//! the cache never changes what a run does, and a damaged or stale entry is
//! never used.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::support::*;

/// A package keeping `big.ckpt` of `n` Expression tasks that count in `N`
/// (over the 64 KiB the cache starts at), then `last` (YAML list items, or
/// nothing).
fn big_package(n: usize, last: &str) -> String {
    cacheable_package(
        &(checkpoint_at("big.ckpt") + "variables:\n  N: { type: int32, value: 0 }\n"),
        n,
        "@[User::N] = @[User::N] + 1",
        last,
    )
}

/// The cache's entries.
fn entries(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = fs::read_dir(dir)
        .map(|rd| rd.flatten().map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.extension().is_some_and(|x| x == "json"));
    v.sort();
    v
}

fn mtime(p: &Path) -> SystemTime {
    fs::metadata(p).expect("stat").modified().expect("mtime")
}

fn set_mtime(p: &Path, t: SystemTime) {
    fs::File::options()
        .append(true)
        .open(p)
        .expect("open")
        .set_modified(t)
        .expect("set mtime");
}

fn run_json(sb: &Sandbox, cache: &Path) -> Output {
    sb.run()
        .arg("--log")
        .arg("json")
        .env("CHECKFLOW_CACHE_DIR", cache.to_str().expect("utf-8"))
        .output()
}

#[test]
fn an_unchanged_package_is_read_from_the_cache_and_a_changed_one_is_parsed() {
    let sb = Sandbox::with_package(&big_package(1000, ""));
    let cache = sb.join("cache");

    let first = run_json(&sb, &cache).exit(0);
    assert_eq!(status_of(&first.summary(), "T1000"), "succeeded");
    let kept = entries(&cache);
    assert_eq!(kept.len(), 1, "one entry for one package text");
    let bytes = fs::read(&kept[0]).expect("read the entry");
    assert!(
        bytes.starts_with(b"checkflow-package-cache-4 "),
        "a header line"
    );

    // A hit marks the entry as used (the cache drops the least recently used).
    let an_hour_ago = SystemTime::now() - Duration::from_secs(3600);
    set_mtime(&kept[0], an_hour_ago);
    let second = run_json(&sb, &cache).exit(0);
    assert_eq!(status_of(&second.summary(), "T1000"), "succeeded");
    assert!(
        mtime(&kept[0]) > an_hour_ago + Duration::from_secs(60),
        "the entry was used"
    );
    assert_eq!(
        fs::read(&kept[0]).expect("read"),
        bytes,
        "and not rewritten"
    );

    // One more task: other bytes, another entry, and the new task runs.
    sb.write(
        "package.yaml",
        &big_package(
            1000,
            "  - { name: Added, type: expression, expr: '@[User::N] = 0' }\n",
        ),
    );
    fs::remove_file(sb.join("big.ckpt")).ok();
    let third = run_json(&sb, &cache).exit(0);
    assert_eq!(status_of(&third.summary(), "Added"), "succeeded");
    assert_eq!(entries(&cache).len(), 2);
}

#[test]
fn a_damaged_entry_is_not_used_and_is_written_again() {
    let sb = Sandbox::with_package(&big_package(1000, ""));
    let cache = sb.join("cache");
    run_json(&sb, &cache).exit(0);
    let entry = entries(&cache).pop().expect("an entry");
    let good = fs::read(&entry).expect("read");

    // Rename task T500 inside the entry: its checksum no longer matches, so
    // the run parses the package and T500 keeps its name.
    let at = good
        .windows(6)
        .position(|w| w == b"\"T500\"")
        .expect("T500 in the entry");
    let mut damaged = good.clone();
    damaged[at + 1] = b'X';
    fs::write(&entry, &damaged).expect("write");

    let out = run_json(&sb, &cache).exit(0);
    assert_eq!(status_of(&out.summary(), "T500"), "succeeded");
    assert!(!out.all().contains("X500"), "{out:?}");
    assert_eq!(
        fs::read(&entry).expect("read"),
        good,
        "the entry is whole again"
    );

    // A truncated entry (a crash while it was written, were it not renamed
    // into place) is not used either.
    fs::write(&entry, &good[..good.len() / 2]).expect("write");
    let out = run_json(&sb, &cache).exit(0);
    assert_eq!(status_of(&out.summary(), "T1000"), "succeeded");
}

#[test]
fn problems_are_reported_at_the_same_line_and_column_from_the_cache() {
    let bad = "  - { name: Bad, type: expression, expr: '@[User::Missing] + 1' }\n";
    let yaml = big_package(1000, bad);
    let line = yaml.lines().count();
    let sb = Sandbox::with_package(&yaml);
    let cache = sb.join("cache");

    let parsed = sb
        .run()
        .env("CHECKFLOW_CACHE_DIR", cache.to_str().expect("utf-8"))
        .output()
        .exit(5)
        .says(&format!(
            "package.yaml:{line}:42: task \"Bad\": bad expression"
        ));
    assert_eq!(entries(&cache).len(), 1, "the YAML parsed, so it is kept");
    let cached = sb
        .run()
        .env("CHECKFLOW_CACHE_DIR", cache.to_str().expect("utf-8"))
        .output()
        .exit(5);
    assert_eq!(cached.all(), parsed.all());
}

#[test]
fn a_restart_through_the_cache_restores_what_was_recorded() {
    let last = "  - { name: Last, type: process, command: 'test -f fixed', fail_package_on_failure: true }\n";
    let sb = Sandbox::with_package(&big_package(1000, last));
    let cache = sb.join("cache");

    run_json(&sb, &cache).exit(1);
    assert_eq!(entries(&cache).len(), 1);
    sb.touch("fixed");
    let out = run_json(&sb, &cache).exit(0);
    let events = out.json_lines();
    let restored = events.iter().filter(|e| e["event"] == "restored").count();
    let started: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "started")
        .filter_map(|e| e["path"].as_str())
        .collect();
    assert_eq!(restored, 1000);
    assert_eq!(started, vec!["Last"]);
    assert!(!sb.exists("big.ckpt"), "deleted after the successful run");
}

#[test]
fn the_cache_lives_in_the_users_cache_folder_unless_turned_off() {
    let sb = Sandbox::with_package(&big_package(1000, ""));
    let home = sb.join("home");
    fs::create_dir(&home).expect("home");
    let home_s = home.to_str().expect("utf-8");

    sb.run()
        .env("CHECKFLOW_CACHE_DIR", "off")
        .env("HOME", home_s)
        .env_remove("XDG_CACHE_HOME")
        .output()
        .exit(0);
    assert!(!home.join(".cache").exists(), "off: nothing written");

    fs::remove_file(sb.join("big.ckpt")).ok();
    sb.run()
        .env_remove("CHECKFLOW_CACHE_DIR")
        .env_remove("XDG_CACHE_HOME")
        .env("HOME", home_s)
        .output()
        .exit(0);
    let dir = home.join(".cache/checkflow/packages");
    assert_eq!(entries(&dir).len(), 1, "the default folder");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs::metadata(&dir).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o700, "private to the user");
    }

    // XDG_CACHE_HOME, when set, is where it goes.
    let xdg = sb.join("xdg");
    sb.run()
        .env_remove("CHECKFLOW_CACHE_DIR")
        .env("XDG_CACHE_HOME", xdg.to_str().expect("utf-8"))
        .output()
        .exit(0);
    assert_eq!(entries(&xdg.join("checkflow/packages")).len(), 1);
}
