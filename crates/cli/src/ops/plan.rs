//! `checkflow plan`: what a run would do now, and why. Changes nothing.

use super::emit;
use crate::args::RunOpts;
use crate::exit;
use crate::session::{self, Fail, Session};
use checkflow_exec::{VarStore, enumerate, split_finished};
use checkflow_model::{Logic, On};
use checkflow_plan::{NodeId, NodeKind, Plan};
use serde_json::json;
use std::sync::Arc;

pub fn plan(opts: &RunOpts, as_json: bool) -> Result<i32, Fail> {
    let s = session::open(opts, false)?;
    let plan = &s.plan;
    let ck = &s.checkpoint;
    let usage = match ck.usage {
        checkflow_model::Usage::Never => "never",
        checkflow_model::Usage::IfExists => "if_exists",
        checkflow_model::Usage::Always => "always",
    };
    let store = VarStore::new(Arc::new(plan.vars.clone()), s.initial.clone());
    let skipped: Vec<usize> = s
        .resume
        .decisions
        .iter()
        .map(|d| skipped_now(&s, &store, d.node))
        .collect();
    let mut o = String::new();
    if as_json {
        let execs: Vec<_> = s
            .resume
            .decisions
            .iter()
            .zip(&skipped)
            .map(|(d, &skipped)| {
                let n = plan.node(d.node);
                let reason = match condition(plan, d.node).filter(|_| !d.restore) {
                    Some(c) => format!("{}; {c}", d.reason),
                    None => d.reason.to_string(),
                };
                let mut v = json!({"path": n.path, "type": n.kind.type_name(), "action": if d.restore {"restore"} else {"run"}, "reason": reason});
                if skipped > 0 {
                    v["skipped_iterations"] = json!(skipped);
                }
                v
            })
            .collect();
        let v = json!({
            "package": plan.package.name,
            "package_id": plan.package.id,
            "checkpoint": {"file": ck.path.as_ref().map(|p| p.display().to_string()), "usage": usage, "save": ck.save,
                           "store": ck.store.as_ref().map(|t| json!({"url": checkflow_model::redact_url(&t.url), "key": t.key})),
                           "exists": ck.path.as_ref().is_some_and(|p| p.exists()) || (ck.store.is_some() && s.state.is_some()),
                           "restart": s.state.is_some()},
            "warnings": s.warnings,
            "executables": execs,
            "handlers": handlers(plan)
                .iter()
                .map(|(of, event, tasks)| json!({"of": of, "event": event, "executables": tasks}))
                .collect::<Vec<_>>(),
        });
        outln!(
            o,
            "{}",
            serde_json::to_string_pretty(&v).unwrap_or_default()
        );
        emit(&o)?;
        return Ok(exit::SUCCESS);
    }
    match (ck.shown(), &s.state) {
        (Some(p), Some(_)) => {
            outln!(o, "restart from checkpoint {p} (usage {usage})")
        }
        (Some(p), None) => outln!(
            o,
            "run from the beginning (checkpoint {p}: usage {usage}, save {})",
            ck.save
        ),
        (None, _) => outln!(o, "run from the beginning (no checkpoint)"),
    }
    for w in &s.warnings {
        outln!(o, "warning: {w}");
    }
    for (d, &skipped) in s.resume.decisions.iter().zip(&skipped) {
        let n = plan.node(d.node);
        let depth = n.path.matches('/').count();
        let mut skipped = if skipped > 0 {
            format!("; skips {skipped} finished item(s)")
        } else {
            String::new()
        };
        if !d.restore
            && let Some(c) = condition(plan, d.node)
        {
            skipped = format!("; {c}{skipped}");
        }
        outln!(
            o,
            "  {:<8}{}{}  ({}{skipped})",
            if d.restore { "restore" } else { "run" },
            "  ".repeat(depth),
            n.name,
            d.reason
        );
    }
    let handlers = handlers(plan);
    if !handlers.is_empty() {
        outln!(
            o,
            "event handlers (never recorded; none fires for a restored executable):"
        );
        for (of, event, tasks) in handlers {
            let of = if of.is_empty() {
                format!("package \"{}\"", plan.package.name)
            } else {
                of
            };
            outln!(o, "  {event} of {of}: {}", tasks.join(", "));
        }
    }
    emit(&o)?;
    Ok(exit::SUCCESS)
}

/// Every event handler: the path of the executable it is attached to (empty
/// for the package), its event, and its top-level executables.
fn handlers(plan: &Plan) -> Vec<(String, &'static str, Vec<String>)> {
    let mut out = Vec::new();
    for n in &plan.nodes {
        let Some(h) = &n.handlers else { continue };
        for event in checkflow_plan::HandlerEvent::ALL {
            if let Some(p) = h.get(event) {
                let tasks = p.node(Plan::ROOT).children.iter();
                let tasks = tasks.map(|c| p.node(*c).name.clone()).collect();
                out.push((n.path.clone(), event.key(), tasks));
            }
        }
    }
    out
}

/// When an executable's precedence constraints do more than wait for its
/// predecessors to succeed (a failure path, `on: completion`, an
/// expression), the condition it runs under: "runs if Publish fails". It
/// "runs" in the plan, but only if that holds when the run gets there.
fn condition(plan: &Plan, node: NodeId) -> Option<String> {
    let n = plan.node(node);
    if n.preds
        .iter()
        .all(|c| c.on == On::Success && c.expr.is_none())
    {
        return None;
    }
    let (join, verb_one, verb_many) = match n.logic {
        Logic::And => (" and ", "fails", "fail"),
        Logic::Or => (" or ", "fails", "fails"),
    };
    let failing: Vec<&str> = n
        .preds
        .iter()
        .filter(|c| c.on == On::Failure && c.expr.is_none())
        .map(|c| plan.node(c.from).name.as_str())
        .collect();
    if failing.len() == n.preds.len() {
        let names: Vec<String> = failing.iter().map(|f| f.to_string()).collect();
        let verb = if names.len() == 1 {
            verb_one
        } else {
            verb_many
        };
        return Some(format!("runs if {} {verb}", names.join(join)));
    }
    let parts: Vec<String> = n
        .preds
        .iter()
        .map(|c| {
            let from = &plan.node(c.from).name;
            let result = match c.on {
                On::Success => format!("{from} succeeds"),
                On::Failure => format!("{from} fails"),
                On::Completion => format!("{from} ends"),
            };
            match &c.expr {
                Some(e) => format!("{result} and `{}` holds", e.source()),
                None => result,
            }
        })
        .collect();
    Some(format!("runs if {}", parts.join(join)))
}

/// How many items of a loop that records its iterations the run would skip:
/// its collection as it is now (files listed again; rows from the values the
/// variables start with), matched against the finished ones as the run
/// matches them. A finished item that is gone from the collection (a file
/// removed since) is not counted; a collection that cannot be listed skips
/// nothing.
fn skipped_now(s: &Session, store: &VarStore, node: NodeId) -> usize {
    let Some(finished) = s.resume.iterations.get(&node) else {
        return 0;
    };
    let NodeKind::Foreach { enumerator, .. } = &s.plan.node(node).kind else {
        return 0;
    };
    match enumerate(enumerator, store, &s.plan.vars) {
        Ok(items) => split_finished(items, finished).1.len(),
        Err(_) => 0,
    }
}
