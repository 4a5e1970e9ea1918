//! When an executable may start: its precedence constraints, and the
//! failure paths a container at its `max_errors` still lets start.

use super::*;

impl Dispatcher<'_> {
    /// Settles a pending executable whose constraints may have changed:
    /// `true` if it can start now (the caller starts it), marks it not run if
    /// they can no longer hold.
    pub(super) fn check(&mut self, n: NodeId) -> bool {
        if self.rt[n.index()].state != State::Pending {
            return false;
        }
        let node = self.plan.node(n);
        let Some(parent) = node.parent else {
            return false;
        };
        if self.rt[parent.index()].state != State::Active {
            return false;
        }
        match self.ready(n) {
            Ready::Yes => true,
            Ready::No => {
                self.set_terminal(n, State::NotRun);
                false
            }
            Ready::Wait => false,
        }
    }

    pub(super) fn ready(&self, n: NodeId) -> Ready {
        let node = self.plan.node(n);
        if node.preds.is_empty() {
            return Ready::Yes;
        }
        let (mut any_true, mut any_false, mut any_open) = (false, false, false);
        for c in &node.preds {
            match self.constraint_holds(n, c.from, c.on, c.expr.as_deref()) {
                Some(true) => any_true = true,
                Some(false) => any_false = true,
                None => any_open = true,
            }
        }
        match node.logic {
            Logic::And if any_false => Ready::No,
            Logic::And if any_open => Ready::Wait,
            Logic::And => Ready::Yes,
            Logic::Or if any_true => Ready::Yes,
            Logic::Or if any_open => Ready::Wait,
            Logic::Or => Ready::No,
        }
    }

    /// `None` while the predecessor has not finished.
    pub(super) fn constraint_holds(
        &self,
        n: NodeId,
        from: NodeId,
        on: On,
        expr: Option<&Compiled>,
    ) -> Option<bool> {
        let result = match self.rt[from.index()].state {
            State::Done(o) | State::Restored(o) => Some(o),
            State::Disabled => Some(Outcome::Success),
            State::NotRun | State::Cancelled => None,
            _ => return None,
        };
        let Some(result) = result else {
            return Some(false);
        };
        let matches = match on {
            On::Success => result == Outcome::Success,
            On::Failure => result == Outcome::Failure,
            On::Completion => true,
        };
        if !matches {
            return Some(false);
        }
        match expr {
            None => Some(true),
            Some(e) => {
                let env = self.env_for(n, self.rt[from.index()].last_error.as_deref());
                Some(matches!(e.eval(&env), Ok(Value::Bool(true))))
            }
        }
    }

    pub(super) fn env_for<'s>(&'s self, n: NodeId, error: Option<&'s str>) -> TaskEnv<'s> {
        let rt = &self.rt[n.index()];
        TaskEnv {
            store: &self.store,
            task_name: &self.plan.node(n).name,
            start: rt.start_time.unwrap_or_else(now_civil),
            error,
            unit: self.units[n.index()],
        }
    }

    /// `System::ErrorDescription` for an executable on a failure path: the
    /// error of the failed predecessor that let it start.
    pub(super) fn failed_pred_error(&self, n: NodeId) -> Option<String> {
        self.plan
            .node(n)
            .preds
            .iter()
            .find_map(|c| match self.rt[c.from.index()].state {
                State::Done(Outcome::Failure) | State::Restored(Outcome::Failure) => {
                    self.rt[c.from.index()].last_error.clone()
                }
                _ => None,
            })
    }

    /// "the number of errors raised (N) reached the maximum allowed (M)", as
    /// SSIS says it.
    pub(super) fn max_errors_message(&self, c: NodeId) -> String {
        format!(
            "the number of errors raised ({}) reached the maximum allowed ({})",
            self.rt[c.index()].errors,
            self.plan.node(c).max_errors
        )
    }

    /// Whether `n` may start under the containers above it that reached
    /// their `max_errors`: only what follows one of the failures that
    /// brought them there (through precedence, at the level where `n`'s
    /// branch leaves the failed one's) may.
    pub(super) fn enabled_by_failures(&self, n: NodeId) -> bool {
        self.plan.ancestors(n).all(|a| {
            let failing = &self.rt[a.index()].failing;
            failing.is_empty() || failing.iter().any(|&o| self.follows_failure(n, o))
        })
    }

    /// `n` lies on a path that the failure of `o` enables: where their
    /// branches part, `n`'s side follows `o`'s through precedence.
    pub(super) fn follows_failure(&self, n: NodeId, o: NodeId) -> bool {
        let chain_o: Vec<NodeId> = std::iter::once(o).chain(self.plan.ancestors(o)).collect();
        // Up from `n` to the lowest common ancestor, keeping `n`'s side.
        let (mut side, mut x) = (n, n);
        loop {
            if let Some(i) = chain_o.iter().position(|&c| c == x) {
                // `n` on the failure's own chain (or inside it): not a new start.
                if x == n || i == 0 {
                    return true;
                }
                return self.follows(chain_o[i - 1], side);
            }
            let Some(p) = self.plan.node(x).parent else {
                return false;
            };
            side = x;
            x = p;
        }
    }

    /// Whether `to` is reachable from `from` through precedence constraints.
    pub(super) fn follows(&self, from: NodeId, to: NodeId) -> bool {
        let mut seen = HashSet::new();
        let mut stack = self.plan.node(from).succs.clone();
        while let Some(s) = stack.pop() {
            if s == to {
                return true;
            }
            if seen.insert(s) {
                stack.extend(self.plan.node(s).succs.iter().copied());
            }
        }
        false
    }

    /// Which execution of task `n` is starting: the checkpoint, the loops'
    /// current iterations, and the records that completed or forgot it or a
    /// container around it (see [`Execution`]).
    pub(super) fn execution(&self, n: NodeId) -> Execution {
        let counts = &self.resume.record_counts;
        let mut iterations = Vec::new();
        let mut generation = counts.get(&self.plan.node(n).path).copied().unwrap_or(0);
        for a in self.plan.ancestors(n) {
            let node = self.plan.node(a);
            if let Some(c) = counts.get(&node.path) {
                generation = generation.saturating_add(*c);
            }
            let rt = &self.rt[a.index()];
            match &node.kind {
                NodeKind::Foreach { .. } => iterations.push((
                    node.path.clone(),
                    rt.current_key.clone().unwrap_or_default(),
                )),
                NodeKind::ForLoop(_) => {
                    iterations.push((node.path.clone(), format!("#{}", rt.iteration)));
                }
                _ => {}
            }
        }
        iterations.reverse();
        Execution {
            owner: self.resume.owner.clone(),
            checkpoint: self
                .resume
                .checkpoint_id
                .clone()
                .unwrap_or_else(|| self.tx_prefix.clone()),
            path: self.plan.node(n).path.clone(),
            iterations,
            generation,
        }
    }

    pub(super) fn halted_above(&self, n: NodeId) -> bool {
        self.plan.ancestors(n).any(|a| self.rt[a.index()].halted)
    }
}
