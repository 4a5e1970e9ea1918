//! `checkflow checkpoint show`: what a checkpoint holds (sensitive values masked).

use super::emit;
use crate::exit;
use crate::session::Fail;
use checkflow_journal as journal;
use serde_json::json;
use std::path::Path;

fn shown(v: &journal::Restored) -> serde_json::Value {
    match v {
        journal::Restored::Value(j) => j.clone(),
        journal::Restored::Sealed => json!("********"),
        journal::Restored::Omitted => json!("(left out: sensitive)"),
    }
}

/// Reads a checkpoint kept in a store under `key` (no lease: reading
/// changes nothing), without the key: sensitive values show masked.
fn read_stored(url: &str, key: &str) -> Result<journal::ResumeState, Fail> {
    let t = crate::checkpoint::store::StoreTarget {
        url: url.to_string(),
        key: key.to_string(),
        lease: checkflow_store::DEFAULT_LEASE,
    };
    let mut s = crate::checkpoint::store::connect(&t)?;
    let stored = checkflow_store::read(&mut s, key)
        .map_err(|e| Fail::chain(exit::FAILURE, &e))?
        .ok_or_else(|| Fail::new(exit::FAILURE, format!("no checkpoint {}", t.shown())))?;
    journal::read_bytes(Path::new(&t.shown()), &stored.bytes, None)
        .map_err(|e| Fail::chain(exit::FAILURE, &e))
}

pub fn show(path: &Path, store: Option<&str>, as_json: bool) -> Result<i32, Fail> {
    let st = match store {
        Some(url) => read_stored(url, &path.to_string_lossy())?,
        None => {
            // Exit 4 is for package files (as dtexec's); a missing checkpoint is an
            // ordinary failure. A link to nothing is not "missing": reading it says so.
            if std::fs::symlink_metadata(path).is_err() {
                return Err(Fail::new(
                    exit::FAILURE,
                    format!("no checkpoint at {}", path.display()),
                ));
            }
            // Read without the key: sensitive values stay sealed, so they show masked.
            journal::read(path, None).map_err(|e| Fail::chain(exit::FAILURE, &e))?
        }
    };
    let written = st
        .last_written_at
        .clone()
        .unwrap_or_else(|| st.header.created_at.clone());
    let mut o = String::new();
    if as_json {
        let completed: Vec<_> = st
            .completed_order
            .iter()
            .filter_map(|p| st.completed.get(p).map(|c| (p, c)))
            .map(|(p, c)| json!({"path": p, "result": c.outcome.to_string(), "fingerprint": c.fingerprint, "duration_ms": c.duration_ms, "at": c.at}))
            .collect();
        let vars: serde_json::Map<String, serde_json::Value> =
            st.vars.iter().map(|(k, v)| (k.clone(), shown(v))).collect();
        let config: serde_json::Map<String, serde_json::Value> = st
            .header
            .config
            .iter()
            .map(|(k, v)| (k.clone(), shown(v)))
            .collect();
        let v = json!({
            "package_id": st.header.package_id,
            "package_name": st.header.package_name,
            "package_path": st.header.package_path,
            "format_version": st.header.format_version,
            "created_at": st.header.created_at,
            "written_at": written,
            "runs": st.runs,
            "completed": completed,
            "iterations": st.iterations,
            "variables": vars,
            "configuration": config,
            "torn_tail_bytes": st.torn_tail_bytes,
        });
        outln!(
            o,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
        emit(&o)?;
        return Ok(exit::SUCCESS);
    }
    outln!(o, "checkpoint {}", path.display());
    outln!(
        o,
        "  package     {} ({})",
        st.header.package_name,
        st.header.package_id
    );
    outln!(
        o,
        "  written     {written} (created {}, {} run(s), format v{})",
        st.header.created_at,
        st.runs,
        st.header.format_version
    );
    if st.torn_tail_bytes > 0 {
        outln!(
            o,
            "  note        {} bytes of a record torn by a crash at the end will be dropped",
            st.torn_tail_bytes
        );
    }
    outln!(o, "  completed   {}", st.completed.len());
    for p in &st.completed_order {
        if let Some(c) = st.completed.get(p) {
            outln!(o, "    {:<10} {p}", c.outcome.to_string());
        }
    }
    for (l, keys) in &st.iterations {
        outln!(o, "  iterations done in {l}: {}", keys.join(", "));
    }
    if !st.vars.is_empty() {
        outln!(o, "  variables");
        for (k, v) in &st.vars {
            outln!(o, "    {k} = {}", shown(v));
        }
    }
    if !st.header.config.is_empty() {
        outln!(o, "  configuration (used by every restart)");
        for (k, v) in &st.header.config {
            outln!(o, "    {k} = {}", shown(v));
        }
    }
    emit(&o)?;
    Ok(exit::SUCCESS)
}
