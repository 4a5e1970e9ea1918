//! Resume decisions: from what a checkpoint recorded, which executables are
//! restored and which run, and why. Used by `run` and by `plan`.

use crate::event::Outcome;
use checkflow_plan::{NodeId, NodeKind, NodeMap, Plan};
use std::collections::{BTreeMap, HashMap, HashSet};

/// What a checkpoint recorded, as the executor needs it.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    /// Path -> (result, fingerprint when recorded).
    pub completed: BTreeMap<String, (Outcome, String)>,
    /// Loop path -> identities of finished iterations.
    pub iterations: BTreeMap<String, Vec<String>>,
    /// Path -> how many records completed or invalidated it (never reset by
    /// an invalidation; see [`checkflow_plan::Execution::generation`]).
    pub record_counts: BTreeMap<String, u32>,
    /// The checkpoint's identity: the id of the run that created it.
    pub checkpoint_id: Option<String>,
}

/// `--changed`: what to do with a recorded executable whose definition changed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum ChangedPolicy {
    /// Reuse it, with a warning (as SSIS).
    #[default]
    Keep,
    /// Run it and everything that follows it again.
    Rerun,
    /// Fail before anything runs.
    Refuse,
}

/// Why an executable runs or is restored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Reason {
    /// Recorded as completed.
    Recorded(Outcome),
    /// Recorded, but its definition changed since (kept, as `--changed keep`).
    RecordedChanged(Outcome),
    /// Its container is restored whole.
    InsideRestored,
    /// Not recorded by an earlier run.
    NotRecorded,
    /// Partly done: it runs, skipping recorded children.
    PartlyDone,
    /// Inside a loop, a transacted container or a restart unit: the unit reruns whole.
    UnitRerunsWhole(String),
    /// Changed since recorded (`--changed rerun`).
    Changed,
    /// Named by `--rerun`.
    Rerun,
    /// Follows an executable that runs again.
    Follows(String),
}

impl std::fmt::Display for Reason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Reason::Recorded(o) => write!(f, "recorded ({o})"),
            Reason::RecordedChanged(o) => write!(f, "recorded ({o}); changed since, kept"),
            Reason::InsideRestored => write!(f, "its container is recorded"),
            Reason::NotRecorded => write!(f, "not recorded"),
            Reason::PartlyDone => write!(f, "partly done: reruns, skipping recorded children"),
            Reason::UnitRerunsWhole(u) => write!(f, "unit \"{u}\" reruns whole"),
            Reason::Changed => write!(f, "changed since recorded"),
            Reason::Rerun => write!(f, "--rerun"),
            Reason::Follows(p) => write!(f, "follows \"{p}\", which runs again"),
        }
    }
}

/// One line of a plan.
#[derive(Clone, Debug)]
pub struct Decision {
    /// Which executable.
    pub node: NodeId,
    /// Restored (true) or run (false).
    pub restore: bool,
    /// Why.
    pub reason: Reason,
}

/// The resume decisions for a run.
#[derive(Clone, Debug, Default)]
pub struct Resume {
    /// Executables to restore, with their recorded result (only the topmost of a restored subtree).
    pub restore: NodeMap<Outcome>,
    /// Foreach loops: how many iterations of each identity finished, to skip
    /// (see [`split_finished`](crate::split_finished)).
    pub iterations: HashMap<NodeId, HashMap<String, usize>>,
    /// Restored executables (inside a restored container too) whose recorded
    /// result is a failure: each counts one error against every container
    /// above it, as it did in the run that recorded it.
    pub restored_failures: HashSet<NodeId>,
    /// Recorded paths that must be forgotten (they run again).
    pub invalidate: Vec<String>,
    /// Warnings to show (changed executables kept, vanished ones).
    pub warnings: Vec<String>,
    /// Every executable, in plan order.
    pub decisions: Vec<Decision>,
    /// Path -> how many records completed or invalidated it, counting the
    /// invalidations this run writes before it starts anything.
    pub record_counts: BTreeMap<String, u32>,
    /// The identity of the checkpoint restarted, if any (`None`: the run's
    /// own id stands for it).
    pub checkpoint_id: Option<String>,
    /// The package id and the checkpoint file the run uses
    /// ([`checkflow_plan::Execution::owner`]), set by the caller.
    pub owner: String,
}

/// A resume that cannot proceed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResumeError {
    /// `--rerun` names no executable.
    UnknownRerun(String),
    /// `--changed refuse` and these changed.
    Changed(Vec<String>),
}

impl std::fmt::Display for ResumeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ResumeError::UnknownRerun(p) => write!(
                f,
                "--rerun \"{p}\": the package has no executable with that path"
            ),
            ResumeError::Changed(paths) => write!(
                f,
                "refusing to restart (--changed refuse): these executables changed since the checkpoint recorded them: {}",
                paths
                    .iter()
                    .map(|p| format!("\"{p}\""))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }
    }
}

/// Decides what a restart reuses.
pub fn resume(
    plan: &Plan,
    rec: &Recorded,
    rerun: &[String],
    policy: ChangedPolicy,
) -> Result<Resume, ResumeError> {
    let mut out = Resume::default();
    // By node index: a restart of a large package decides for every node.
    let mut recorded: Vec<Option<Outcome>> = vec![None; plan.nodes.len()];
    let mut changed = vec![false; plan.nodes.len()];
    let mut changed_nodes = Vec::new();
    for (path, (outcome, fp)) in &rec.completed {
        let Some(id) = plan.find(path) else {
            out.warnings.push(format!(
                "checkpoint records \"{path}\", which the package no longer has; ignored"
            ));
            out.invalidate.push(path.clone());
            continue;
        };
        let node = plan.node(id);
        if !node.recordable {
            out.invalidate.push(path.clone());
            continue;
        }
        if node.fingerprint != *fp && !changed[id.index()] {
            changed[id.index()] = true;
            changed_nodes.push(id);
        }
        recorded[id.index()] = Some(*outcome);
    }
    out.restore.reserve(rec.completed.len());
    if policy == ChangedPolicy::Refuse && !changed_nodes.is_empty() {
        let mut paths: Vec<String> = changed_nodes
            .iter()
            .map(|n| plan.node(*n).path.clone())
            .collect();
        paths.sort();
        return Err(ResumeError::Changed(paths));
    }

    // Executables that run again, with why.
    let mut force: HashMap<NodeId, Reason> = HashMap::new();
    let mut seeds: Vec<(NodeId, Reason)> = Vec::new();
    for p in rerun {
        let id = plan
            .find(p)
            .ok_or_else(|| ResumeError::UnknownRerun(p.clone()))?;
        seeds.push((id, Reason::Rerun));
    }
    match policy {
        ChangedPolicy::Rerun => seeds.extend(changed_nodes.iter().map(|&n| (n, Reason::Changed))),
        _ => {
            for &n in &changed_nodes {
                out.warnings.push(format!(
                    "\"{}\" changed since the checkpoint recorded it; reusing its recorded result (use --changed rerun to run it again)",
                    plan.node(n).path
                ));
            }
        }
    }
    for (seed, reason) in seeds {
        let seed_path = plan.node(seed).path.clone();
        mark(plan, seed, reason, &mut force);
        // Everything that follows it, and everything that follows its containers.
        let mut cur = Some(seed);
        while let Some(n) = cur {
            if plan.node(n).parent.is_none() {
                break;
            }
            for f in followers(plan, n) {
                mark(plan, f, Reason::Follows(seed_path.clone()), &mut force);
            }
            cur = plan.node(n).parent;
            if let Some(p) = cur
                && plan.node(p).parent.is_some()
            {
                force.entry(p).or_insert(Reason::PartlyDone);
            }
        }
    }

    // Walk the tree top-down and decide.
    let mut restored = vec![false; plan.nodes.len()];
    out.decisions.reserve_exact(plan.nodes.len());
    for id in plan.subtree(Plan::ROOT).into_iter().skip(1) {
        let node = plan.node(id);
        let parent = node.parent.expect("only the root has no parent");
        let parent_restored = restored[parent.index()];
        let (restore, reason) = if parent_restored {
            (true, Reason::InsideRestored)
        } else if let Some(r) = force.get(&id) {
            (false, r.clone())
        } else if let Some(o) = recorded[id.index()] {
            out.restore.insert(id, o);
            if changed[id.index()] {
                (true, Reason::RecordedChanged(o))
            } else {
                (true, Reason::Recorded(o))
            }
        } else if !node.recordable {
            let unit = plan
                .ancestors(id)
                .find(|a| plan.node(*a).atomic)
                .map(|a| plan.node(a).path.clone())
                .unwrap_or_default();
            (false, Reason::UnitRerunsWhole(unit))
        } else if node.kind.is_container()
            && plan
                .subtree(id)
                .iter()
                .skip(1)
                .any(|d| recorded[d.index()].is_some())
        {
            (false, Reason::PartlyDone)
        } else {
            (false, Reason::NotRecorded)
        };
        if !restore
            && !force.contains_key(&id)
            && let NodeKind::Foreach {
                checkpoint_iterations: true,
                ..
            } = node.kind
            && node.recordable
            && let Some(keys) = rec.iterations.get(&node.path)
        {
            let mut finished = HashMap::new();
            for k in keys {
                *finished.entry(k.clone()).or_insert(0) += 1;
            }
            out.iterations.insert(id, finished);
        }
        if force.contains_key(&id)
            && (recorded[id.index()].is_some() || rec.iterations.contains_key(&node.path))
        {
            out.invalidate.push(node.path.clone());
        }
        restored[id.index()] = restore;
        if restore && recorded[id.index()] == Some(Outcome::Failure) {
            out.restored_failures.insert(id);
        }
        out.decisions.push(Decision {
            node: id,
            restore,
            reason,
        });
    }
    out.record_counts = rec.record_counts.clone();
    for p in &out.invalidate {
        *out.record_counts.entry(p.clone()).or_default() += 1;
    }
    out.checkpoint_id = rec.checkpoint_id.clone();
    Ok(out)
}

/// Marks a node and its whole subtree to run again.
fn mark(plan: &Plan, id: NodeId, reason: Reason, force: &mut HashMap<NodeId, Reason>) {
    for (i, n) in plan.subtree(id).into_iter().enumerate() {
        let r = if i == 0 {
            reason.clone()
        } else {
            Reason::Follows(plan.node(id).path.clone())
        };
        force.entry(n).or_insert(r);
    }
}

/// Siblings reachable from `id` through precedence constraints.
fn followers(plan: &Plan, id: NodeId) -> Vec<NodeId> {
    let mut seen = HashSet::new();
    let mut stack = plan.node(id).succs.clone();
    let mut out = Vec::new();
    while let Some(n) = stack.pop() {
        if seen.insert(n) {
            out.push(n);
            stack.extend(plan.node(n).succs.iter().copied());
        }
    }
    out
}
