//! Containers and loops: starting children, iterations, and how a
//! container ends.

use super::*;

impl Dispatcher<'_> {
    pub(super) fn start_container(&mut self, n: NodeId) {
        let rt = &mut self.rt[n.index()];
        rt.state = State::Active;
        rt.started = Some(Instant::now());
        rt.start_time = Some(now_civil());
        rt.iteration = 0;
        rt.cut = false;
        rt.timed_out = false;
        rt.deadline = self.plan.node(n).timeout.map(|t| Instant::now() + t);
        let scope = self
            .plan
            .node(n)
            .starts_transaction
            .then(|| self.new_scope(n));
        let rt = &mut self.rt[n.index()];
        rt.tx = scope;
        // Its children are all pending until they start (a loop that fails to
        // enumerate never starts them).
        rt.open = self.plan.node(n).children.len();
        if rt.deadline.is_some() {
            self.busy.insert(n);
        }
        if n != Plan::ROOT {
            self.reporter.event(&Event::Started {
                node: n,
                attempt: 1,
            });
        }
        let node = self.plan.node(n);
        match &node.kind {
            NodeKind::ForLoop(l) => {
                if let Some(init) = &l.init {
                    let env = self.env_for(n, None);
                    if let Err(e) = eval_and_assign(init, &env) {
                        self.container_error(
                            n,
                            codes::FAILED,
                            format!("for_loop init failed: {e}"),
                        );
                        return;
                    }
                }
                self.next_iteration(n);
            }
            NodeKind::Foreach { enumerator, .. } => {
                let skip = self.resume.iterations.get(&n).cloned().unwrap_or_default();
                match enumerate(enumerator, &self.store, &self.plan.vars) {
                    Ok(items) => {
                        let (keep, skipped) = split_finished(items, &skip);
                        for key in skipped {
                            self.reporter
                                .event(&Event::IterationSkipped { node: n, key });
                        }
                        self.rt[n.index()].items = VecDeque::from(keep);
                        self.next_iteration(n);
                    }
                    Err(e) => self.container_error(n, codes::FAILED, e),
                }
            }
            _ => self.start_children(n),
        }
    }

    pub(super) fn container_error(&mut self, n: NodeId, code: i32, msg: String) {
        self.rt[n.index()].last_error = Some(msg.clone());
        self.fire_noted(HandlerEvent::OnError, n, code, &msg);
        self.fail(n, &msg);
        self.agenda.push_back(Work::ChildDone(n));
    }

    /// A container ran past its `timeout`: it fails at once, its running tasks
    /// are stopped, and nothing new starts inside it.
    pub(super) fn container_timeout(&mut self, n: NodeId) {
        let t = self.plan.node(n).timeout.unwrap_or_default();
        let msg = format!("timed out after {}", humantime(t));
        let path = self.plan.node(n).path.clone();
        for d in self.plan.subtree(n).into_iter().skip(1) {
            let rt = &mut self.rt[d.index()];
            if rt.state == State::Running {
                rt.stop_reason = Some(format!("stopped: container \"{path}\" {msg}"));
                if let Some(tok) = &rt.cancel {
                    tok.cancel();
                }
            }
        }
        self.container_error(n, codes::TIMEOUT, msg);
    }

    pub(super) fn start_children(&mut self, n: NodeId) {
        let node = self.plan.node(n);
        self.rt[n.index()].open = node.children.len();
        if node.children.is_empty() {
            self.agenda.push_back(Work::ChildDone(n));
        }
        for &c in &node.children {
            self.agenda.push_back(Work::Check(c));
        }
    }

    pub(super) fn reset_children(&mut self, n: NodeId) {
        for d in self.plan.subtree(n).into_iter().skip(1) {
            let rt = &mut self.rt[d.index()];
            rt.state = State::Pending;
            rt.errors = 0;
            rt.halted = false;
            rt.chain = false;
            rt.attempt = 0;
            rt.timed_out = false;
            rt.stop_reason = None;
        }
    }

    /// Starts the next loop iteration, or completes the loop.
    pub(super) fn next_iteration(&mut self, n: NodeId) {
        if self.stopping
            || self.rt[n.index()].halted
            || !self.rt[n.index()].failing.is_empty()
            || self.halted_above(n)
        {
            self.rt[n.index()].cut = true;
            self.end_container(n);
            return;
        }
        let node = self.plan.node(n);
        match &node.kind {
            NodeKind::ForLoop(l) => {
                let env = self.env_for(n, None);
                match l.eval.eval(&env) {
                    Ok(Value::Bool(true)) => {}
                    Ok(_) => {
                        self.end_container(n);
                        return;
                    }
                    Err(e) => {
                        self.container_error(
                            n,
                            codes::FAILED,
                            format!("for_loop eval failed: {e}"),
                        );
                        return;
                    }
                }
                self.rt[n.index()].current_key = None;
            }
            NodeKind::Foreach { map, .. } => {
                let Some((position, item)) = self.rt[n.index()].items.pop_front() else {
                    self.end_container(n);
                    return;
                };
                // Numbered by its place in the collection, so a restart that
                // skips finished items goes on from #3, not from #1 again.
                self.rt[n.index()].iteration = position - 1;
                for (slot, value) in map.iter().zip(item.values) {
                    let ty = &self.plan.vars.decl(*slot).ty;
                    match VarValue::from_written(&value, ty) {
                        Ok(v) => self.store.set(*slot, v, self.units[n.index()]),
                        Err(e) => {
                            let vn = self.plan.vars.decl(*slot).name.qualified();
                            self.container_error(
                                n,
                                codes::FAILED,
                                format!("item \"{}\" does not fit {vn}: {e}", item.key),
                            );
                            return;
                        }
                    }
                }
                self.rt[n.index()].current_key = Some(item.key);
            }
            _ => {
                self.end_container(n);
                return;
            }
        }
        let rt = &mut self.rt[n.index()];
        rt.iteration += 1;
        let (index, key) = (rt.iteration, rt.current_key.clone());
        self.reporter.event(&Event::Iteration {
            node: n,
            index,
            key,
        });
        self.reset_children(n);
        self.start_children(n);
    }

    pub(super) fn child_done(&mut self, c: NodeId) {
        if self.rt[c.index()].state != State::Active {
            return;
        }
        let node = self.plan.node(c);
        let all_terminal = self.rt[c.index()].open == 0;
        debug_assert_eq!(
            self.rt[c.index()].open,
            node.children
                .iter()
                .filter(|ch| !self.rt[ch.index()].state.is_terminal())
                .count(),
            "open-children count of {}",
            node.path
        );
        let cut_short = self.stopping || self.rt[c.index()].halted || self.halted_above(c);
        // Only a container that is being cut short needs to know whether some
        // child is still busy; that happens once per stop, so a scan is fine.
        let any_busy = cut_short
            && !all_terminal
            && node
                .children
                .iter()
                .any(|ch| self.rt[ch.index()].state.is_busy());
        if all_terminal && !cut_short {
            self.iteration_done(c);
        } else if (all_terminal || cut_short) && !any_busy {
            // A for_loop stopped between iterations did not reach its end.
            if matches!(node.kind, NodeKind::ForLoop(_)) {
                self.rt[c.index()].cut = true;
            }
            self.end_container(c);
        }
    }

    /// Every child of the current iteration finished normally.
    pub(super) fn iteration_done(&mut self, c: NodeId) {
        let node = self.plan.node(c);
        match &node.kind {
            NodeKind::Foreach {
                checkpoint_iterations,
                ..
            } => {
                if *checkpoint_iterations
                    && node.recordable
                    && self.rt[c.index()].failing.is_empty()
                    && let Some(key) = self.rt[c.index()].current_key.clone()
                {
                    let vars = self.store.take_dirty(c);
                    self.pending_records
                        .push(Record::Iteration { node: c, key, vars });
                    self.push_discards(c);
                }
                self.next_iteration(c);
            }
            NodeKind::ForLoop(l) => {
                if let Some(a) = &l.assign {
                    let env = self.env_for(c, None);
                    if let Err(e) = eval_and_assign(a, &env) {
                        self.container_error(
                            c,
                            codes::FAILED,
                            format!("for_loop assign failed: {e}"),
                        );
                        return;
                    }
                }
                self.next_iteration(c);
            }
            _ => self.end_container(c),
        }
    }

    /// The container is finished: with failure if it failed, cancelled if it was
    /// cut short by something else, success otherwise.
    pub(super) fn end_container(&mut self, c: NodeId) {
        if self.rt[c.index()].state != State::Active {
            return;
        }
        self.busy.remove(&c);
        let node = self.plan.node(c);
        let rt = &self.rt[c.index()];
        let incomplete = node.children.iter().any(|ch| {
            !self.rt[ch.index()].state.is_terminal()
                || self.rt[ch.index()].state == State::Cancelled
        }) || !rt.items.is_empty()
            || rt.cut;
        let duration = rt.started.map(|s| s.elapsed()).unwrap_or_default();
        self.rt[c.index()].total += duration;
        self.rt[c.index()].runs += 1;
        let over_max = !self.rt[c.index()].failing.is_empty() && !self.rt[c.index()].halted;
        if c == Plan::ROOT {
            if over_max && !self.cancelled {
                let msg = self.max_errors_message(c);
                self.errors
                    .push(format!("{}: {msg}", self.plan.package.name));
                self.rt[0].last_error = Some(msg.clone());
                self.fire_noted(HandlerEvent::OnError, c, codes::MAX_ERRORS, &msg);
            }
            let mut o = if self.rt[0].halted || over_max || self.journal_error.is_some() {
                Outcome::Failure
            } else {
                Outcome::Success
            };
            if !self.cancelled {
                if o == Outcome::Failure {
                    let msg = self.rt[0]
                        .last_error
                        .clone()
                        .or_else(|| self.errors.first().cloned())
                        .unwrap_or_default();
                    self.fire_noted(HandlerEvent::OnTaskFailed, c, codes::FAILED, &msg);
                }
                if let Some(e) = self.fire_post_execute(c, o) {
                    self.errors.push(format!("{}: {e}", self.label(c)));
                    o = Outcome::Failure;
                }
            }
            self.rt[0].state = if self.cancelled {
                State::Cancelled
            } else {
                State::Done(o)
            };
            return;
        }
        if over_max && !self.cancelled {
            // The paths its failures enabled have ended: now it fails, and
            // ends as a container halted by a failure does (`fail` halts it).
            let msg = self.max_errors_message(c);
            self.rt[c.index()].last_error = Some(msg.clone());
            self.fire_noted(HandlerEvent::OnError, c, codes::MAX_ERRORS, &msg);
            self.fail(c, &msg);
        }
        if self.rt[c.index()].halted {
            if !self.cancelled {
                let msg = self.rt[c.index()].last_error.clone().unwrap_or_default();
                self.fire_noted(HandlerEvent::OnTaskFailed, c, codes::FAILED, &msg);
                self.fire_post_execute(c, Outcome::Failure);
            }
            let _ = self.settle_tx(c, Outcome::Failure);
            self.reporter.event(&Event::Finished {
                node: c,
                status: Status::Failed,
                duration,
                error: self.rt[c.index()].last_error.clone(),
            });
            self.complete(c, Outcome::Failure, duration);
            return;
        }
        if incomplete {
            let _ = self.settle_tx(c, Outcome::Failure);
            self.reporter.event(&Event::Finished {
                node: c,
                status: Status::Cancelled,
                duration,
                error: None,
            });
            self.set_terminal(c, State::Cancelled);
            return;
        }
        let mut outcome = Outcome::Success;
        if let Some(f) = node.force_result {
            outcome = forced(f);
        }
        let mut error = (outcome == Outcome::Failure).then(|| FORCED.to_string());
        if let Some(e) = &error
            && !self.cancelled
        {
            self.fire_failure(c, codes::FAILED, e);
        }
        if !self.cancelled
            && let Some(e) = self.fire_post_execute(c, outcome)
        {
            outcome = Outcome::Failure;
            error = Some(e);
        }
        if let Err(e) = self.settle_tx(c, outcome) {
            self.fire_failure(c, codes::COMMIT, &e);
            outcome = Outcome::Failure;
            error = Some(e);
        }
        self.reporter.event(&Event::Finished {
            node: c,
            status: State::Done(outcome).status(),
            duration,
            error: error.clone(),
        });
        if let Some(msg) = error.filter(|_| outcome == Outcome::Failure) {
            self.rt[c.index()].last_error = Some(msg.clone());
            self.fail(c, &msg);
        }
        self.complete(c, outcome, duration);
    }
}
