//! `checkflow plan`: what a run would do now, and why. Changes nothing.

use super::emit;
use crate::args::RunOpts;
use crate::exit;
use crate::session::{self, Fail};
use serde_json::json;

pub fn plan(opts: &RunOpts, as_json: bool) -> Result<i32, Fail> {
    let s = session::open(opts, false)?;
    let plan = &s.plan;
    let ck = &s.checkpoint;
    let usage = match ck.usage {
        checkflow_model::Usage::Never => "never",
        checkflow_model::Usage::IfExists => "if_exists",
        checkflow_model::Usage::Always => "always",
    };
    let mut o = String::new();
    if as_json {
        let execs: Vec<_> = s
            .resume
            .decisions
            .iter()
            .map(|d| {
                let n = plan.node(d.node);
                let mut v = json!({"path": n.path, "type": n.kind.type_name(), "action": if d.restore {"restore"} else {"run"}, "reason": d.reason.to_string()});
                if d.skipped_iterations > 0 {
                    v["skipped_iterations"] = json!(d.skipped_iterations);
                }
                v
            })
            .collect();
        let v = json!({
            "package": plan.package.name,
            "package_id": plan.package.id,
            "checkpoint": {"file": ck.path.as_ref().map(|p| p.display().to_string()), "usage": usage, "save": ck.save,
                           "exists": ck.path.as_ref().is_some_and(|p| p.exists()), "restart": s.state.is_some()},
            "warnings": s.warnings,
            "executables": execs,
        });
        outln!(
            o,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
        emit(&o)?;
        return Ok(exit::SUCCESS);
    }
    match (&ck.path, &s.state) {
        (Some(p), Some(_)) => {
            outln!(o, "restart from checkpoint {} (usage {usage})", p.display())
        }
        (Some(p), None) => outln!(
            o,
            "run from the beginning (checkpoint {}: usage {usage}, save {})",
            p.display(),
            ck.save
        ),
        (None, _) => outln!(o, "run from the beginning (no checkpoint)"),
    }
    for w in &s.warnings {
        outln!(o, "warning: {w}");
    }
    for d in &s.resume.decisions {
        let n = plan.node(d.node);
        let depth = n.path.matches('/').count();
        let skipped = if d.skipped_iterations > 0 {
            format!("; skips {} finished item(s)", d.skipped_iterations)
        } else {
            String::new()
        };
        outln!(
            o,
            "  {:<8}{}{}  ({}{skipped})",
            if d.restore { "restore" } else { "run" },
            "  ".repeat(depth),
            n.name,
            d.reason
        );
    }
    emit(&o)?;
    Ok(exit::SUCCESS)
}
