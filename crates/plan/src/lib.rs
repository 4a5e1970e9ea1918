//! A validated package: [`validate`] turns a `PackageDef` into a [`Plan`].
//!
//! 1. Variables are declared first (user variables, then the read-only `System::`
//!    ones), so every expression can be compiled against them.
//! 2. The executable tree is walked: names checked, constraints resolved into
//!    edges (or implied by `flow:`), cycles found, container settings checked,
//!    and each task handed to its [`TaskType`] to build an [`Action`].
//! 3. Each executable gets a fingerprint (every field that affects what it does)
//!    and knows whether its completion may be recorded (not inside an atomic unit).
//!
//! Every problem is collected; [`validate`] fails with all of them at once.
//! Only this module can build a [`Plan`].

mod build;
mod diag;
mod duration;
mod failpoint;
mod fingerprint;
mod node;
mod procs;
mod task;
mod tx;
mod vars;

pub use build::{validate, validate_with};
pub use diag::{Diagnostic, ValidationError};
pub use duration::{parse_duration, parse_lease};
pub use failpoint::failpoint;
pub use fingerprint::FingerprintsAhead;
pub use node::{
    CheckpointFile, CheckpointSettings, Constraint, Enumerator, HandlerEvent, Handlers, LoopExprs,
    Node, NodeId, NodeKind, PackageInfo, RestartSettings,
};
pub use procs::{ProcessScope, TAG_ENV};
pub use task::{
    Action, BuildCx, CancelToken, Execution, LogLevel, Registry, RunCx, TaskError, TaskType,
    resolve as resolve_path,
};
pub use tx::{TxError, TxProbe, TxResource, TxScope};
pub use vars::{SystemVar, VarDecl, VarTable, VarValue};

pub use checkflow_expr as expr;
pub use checkflow_model as model;

use std::collections::HashMap;

/// A package ready to run: only [`validate`] builds one.
pub struct Plan {
    /// Package-level settings.
    pub package: PackageInfo,
    /// Every variable, user and system, by slot.
    pub vars: VarTable,
    /// Every executable; `nodes[0]` is the package itself.
    pub nodes: Vec<Node>,
    /// Connections by name.
    pub connections: std::collections::BTreeMap<String, model::ConnectionDef>,
    /// Every node but the package, by the hash of its path: the table holds
    /// ids, and a lookup compares against `nodes[id].path`, so building it
    /// copies no path.
    by_path: hashbrown::HashTable<NodeId>,
}

/// The hash of a path in `Plan::by_path`.
/// The CPUs this process may use (1 if unknown), found once: finding them
/// reads the cgroup's files. A thread with nothing else to do can ask first.
pub fn cpus() -> usize {
    static CPUS: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *CPUS.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

fn path_hash(path: &str) -> u64 {
    use std::hash::BuildHasher;
    PathHash.hash_one(path)
}

/// The path index of `nodes` (each path is unique once validated).
fn index_paths(nodes: &[Node]) -> hashbrown::HashTable<NodeId> {
    let mut t = hashbrown::HashTable::with_capacity(nodes.len());
    for n in nodes.iter().filter(|n| n.parent.is_some()) {
        t.insert_unique(path_hash(&n.path), n.id, |id| {
            path_hash(&nodes[id.index()].path)
        });
    }
    t
}

/// The hasher of `Plan::find`'s table and of maps keyed by `NodeId`: a
/// restart looks up every recorded path, and the keys come from the package
/// file (or are node indexes), so they need speed, not protection from
/// crafted collisions (the multiply-rotate step of rustc's FxHasher).
#[derive(Clone, Copy, Debug, Default)]
pub struct PathHash;

/// A map keyed by node, hashed with `PathHash`.
pub type NodeMap<V> = HashMap<NodeId, V, PathHash>;

impl std::hash::BuildHasher for PathHash {
    type Hasher = PathHasher;
    fn build_hasher(&self) -> PathHasher {
        PathHasher(0)
    }
}

pub struct PathHasher(u64);

impl std::hash::Hasher for PathHasher {
    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x517c_c1b7_2722_0a95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }

    fn finish(&self) -> u64 {
        self.0
    }
}

impl Plan {
    /// The package container.
    pub const ROOT: NodeId = NodeId(0);

    /// The node with this id.
    pub fn node(&self, id: NodeId) -> &Node {
        &self.nodes[id.index()]
    }

    /// Finds an executable by its path (`Load dimensions/Customers`).
    pub fn find(&self, path: &str) -> Option<NodeId> {
        let path = path.trim_matches('/');
        self.by_path
            .find(path_hash(path), |id| self.nodes[id.index()].path == path)
            .copied()
    }

    /// The ancestors of a node, nearest first, ending with the package.
    pub fn ancestors(&self, id: NodeId) -> impl Iterator<Item = NodeId> + '_ {
        std::iter::successors(self.node(id).parent, move |p| self.node(*p).parent)
    }

    /// The node and all its descendants, depth first.
    pub fn subtree(&self, id: NodeId) -> Vec<NodeId> {
        let mut out = Vec::with_capacity(if id == Self::ROOT {
            self.nodes.len()
        } else {
            1
        });
        let mut stack = vec![id];
        while let Some(n) = stack.pop() {
            out.push(n);
            stack.extend(self.node(n).children.iter().rev().copied());
        }
        out
    }
}

#[cfg(test)]
mod tests;
