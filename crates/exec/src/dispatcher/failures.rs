//! Errors up the tree: `max_errors`, `fail_parent_on_failure`,
//! `fail_package_on_failure`, the failure chain, and stopping the run.

use super::*;

impl Dispatcher<'_> {
    /// An executable failed: count errors up the tree, apply FailParentOnFailure
    /// and FailPackageOnFailure, and mark the chain if the package failed.
    pub(super) fn fail(&mut self, n: NodeId, msg: &str) {
        let label = self.label(n);
        self.errors.push(format!("{label}: {msg}"));
        let mut cascade = Vec::new();
        let reached_limit = self.fail_rec(n, &mut cascade);
        // Not recorded: the chain that failed the package, and any failure
        // inside a container on that chain (the container reruns, so must its
        // failed children) or caused by the engine stopping the task (its
        // container timed out). A failure after the package has already
        // failed (a parallel branch still running when it stopped) that
        // would have failed it is not recorded either: its cascade stops at
        // the package, which failed already, and a restart must run it again.
        let inside_chain = self.rt[n.index()].chain
            || self
                .plan
                .ancestors(n)
                .any(|a| a != Plan::ROOT && self.rt[a.index()].chain);
        // A failure that brought a container to its `max_errors` is on the
        // chain too: that container fails once the failure's paths end.
        if cascade.contains(&Plan::ROOT) || inside_chain || reached_limit {
            for c in cascade {
                self.rt[c.index()].chain = true;
            }
        }
    }

    /// Fails `n` and what its failure fails at once, into `cascade`. `true`
    /// if the failure brought a container to its `max_errors`, or failed (or
    /// would have failed, had it not failed already) the package through
    /// `fail_package_on_failure`.
    pub(super) fn fail_rec(&mut self, n: NodeId, cascade: &mut Vec<NodeId>) -> bool {
        cascade.push(n);
        let node = self.plan.node(n);
        if node.kind.is_container() {
            self.rt[n.index()].halted = true;
        }
        if n == Plan::ROOT {
            self.stop();
            return false;
        }
        let mut reached = false;
        let ancestors: Vec<NodeId> = self.plan.ancestors(n).collect();
        for a in ancestors {
            let rt = &mut self.rt[a.index()];
            rt.errors += 1;
            if rt.errors >= self.plan.node(a).max_errors {
                // As SSIS: the count reaching the limit does not cut off the
                // paths this failure enables; the container fails when they
                // end (`end_container`). A container that already failed
                // (the package stopping, say) would have failed by it.
                if !rt.halted {
                    rt.failing.push(n);
                }
                reached = true;
            }
        }
        if node.fail_parent
            && let Some(p) = node.parent
            && !self.rt[p.index()].halted
        {
            reached |= self.fail_rec(p, cascade);
        }
        if node.fail_package {
            self.restart_point = true;
            reached = true;
            if !self.rt[0].halted {
                self.fail_rec(Plan::ROOT, cascade);
            }
        }
        reached
    }

    /// A restored failure counts against `max_errors` as it did in the run
    /// that recorded it: one error for every container above it. It raised
    /// no container to its limit then (it would not have been recorded), so
    /// nothing fails now; a failure of this run adds to the count.
    pub(super) fn count_restored_failure(&mut self, n: NodeId) {
        if !self.resume.restored_failures.contains(&n) {
            return;
        }
        let ancestors: Vec<NodeId> = self.plan.ancestors(n).collect();
        for a in ancestors {
            self.rt[a.index()].errors += 1;
        }
    }

    /// The package stops: nothing new starts; what runs finishes.
    pub(super) fn stop(&mut self) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        self.rt[0].halted = true;
        // Queued tasks never started.
        while let Some(q) = self.queue.pop_front() {
            self.rt[q.index()].state = State::Pending;
        }
        // Let every running container notice (deepest first).
        for i in (0..self.rt.len()).rev() {
            if self.rt[i].state == State::Active {
                self.agenda.push_back(Work::ChildDone(NodeId(i as u32)));
            }
        }
    }

    pub(super) fn cancel_run(&mut self) {
        self.cancelled = true;
        self.reporter.event(&Event::Warning {
            message: "interrupted: stopping running tasks; what finished is kept".into(),
        });
        self.stop();
        for n in self.busy.clone() {
            let rt = &mut self.rt[n.index()];
            if let Some(t) = &rt.cancel {
                t.cancel();
            }
            if rt.state == State::Waiting {
                self.busy.remove(&n);
                self.reporter.event(&Event::Finished {
                    node: n,
                    status: Status::Cancelled,
                    duration: Duration::ZERO,
                    error: None,
                });
                self.set_terminal(n, State::Cancelled);
            }
        }
    }

    /// An executable as messages name it: its path, or the package's name.
    pub(super) fn label(&self, n: NodeId) -> String {
        if n == Plan::ROOT {
            self.plan.package.name.clone()
        } else {
            self.plan.node(n).path.clone()
        }
    }
}
