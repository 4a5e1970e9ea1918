//! Starting an executable: restore, property expressions, `disabled`,
//! its pre-execute handlers, then a task's thread or a container's children.

use super::*;

impl Dispatcher<'_> {
    pub(super) fn begin(&mut self, n: NodeId) {
        if self.stopping || self.halted_above(n) {
            return;
        }
        if !self.enabled_by_failures(n) {
            self.set_terminal(n, State::NotRun);
            return;
        }
        if !self.flush() {
            return;
        }
        let node = self.plan.node(n);
        if node.recordable
            && let Some(&o) = self.resume.restore.get(&n)
        {
            // Its descendants are restored with it; it becomes terminal below.
            if !node.children.is_empty() {
                for d in self.plan.subtree(n).into_iter().skip(1) {
                    self.rt[d.index()].state = State::Restored(o);
                    self.count_restored_failure(d);
                }
            }
            self.count_restored_failure(n);
            self.reporter.event(&Event::Restored {
                node: n,
                outcome: o,
            });
            self.set_terminal(n, State::Restored(o));
            return;
        }
        // Property expressions, evaluated just before it runs.
        let mut props = HashMap::new();
        if !node.prop_exprs.is_empty() {
            self.rt[n.index()].start_time = Some(now_civil());
            for (name, e) in &node.prop_exprs {
                let env = self.env_for(n, None);
                match e.eval(&env) {
                    Ok(v) => {
                        props.insert(name.clone(), v);
                    }
                    Err(err) => {
                        self.rt[n.index()].props = Arc::new(props);
                        let msg = format!("property expression `{name}` failed: {err}");
                        self.rt[n.index()].state = State::Running;
                        self.finish_task(n, Err(msg), Duration::ZERO);
                        return;
                    }
                }
            }
        }
        let disabled = node.disabled || matches!(props.get("disabled"), Some(Value::Bool(true)));
        self.rt[n.index()].props = Arc::new(props);
        if disabled {
            self.reporter.event(&Event::Finished {
                node: n,
                status: Status::Disabled,
                duration: Duration::ZERO,
                error: None,
            });
            self.set_terminal(n, State::Disabled);
            return;
        }
        if let Some(e) = self.fire(HandlerEvent::OnPreExecute, n, 0, "") {
            // Its own on_pre_execute handler failed: it fails without running.
            self.rt[n.index()].state = State::Running;
            self.finish_task(n, Err(e), Duration::ZERO);
            return;
        }
        if self.stopping || self.halted_above(n) || !self.flush() {
            // A handler above failed and stopped what it holds; or, while
            // the handler ran, the journal failed or the lease was lost.
            return;
        }
        match &node.kind {
            NodeKind::Task { action, .. } => {
                if action.inline() || self.running < self.max_concurrent {
                    self.spawn(n);
                } else {
                    self.rt[n.index()].state = State::Queued;
                    self.queue.push_back(n);
                }
            }
            _ => self.start_container(n),
        }
    }

    pub(super) fn start_queued(&mut self) -> bool {
        if self.running >= self.max_concurrent {
            return false;
        }
        let Some(n) = self.queue.pop_front() else {
            return false;
        };
        // The journal failing here stops the run: the task never starts, and
        // its container must learn that, or it would wait for it forever.
        if self.stopping || self.halted_above(n) || !self.flush() {
            self.rt[n.index()].state = State::Pending;
            if let Some(p) = self.plan.node(n).parent {
                self.agenda.push_back(Work::ChildDone(p));
            }
            return true;
        }
        if !self.enabled_by_failures(n) {
            self.set_terminal(n, State::NotRun);
            return true;
        }
        self.spawn(n);
        true
    }

    pub(super) fn spawn(&mut self, n: NodeId) {
        let node = self.plan.node(n);
        let NodeKind::Task { action, .. } = &node.kind else {
            return;
        };
        let error = self.failed_pred_error(n);
        if node.starts_transaction {
            self.rt[n.index()].tx = Some(self.new_scope(n));
        }
        let tx = self.tx_for(n);
        let execution = self.execution(n);
        let reruns_whole = self.reruns_whole(n);
        let rt = &mut self.rt[n.index()];
        rt.attempt += 1;
        rt.state = State::Running;
        rt.started = Some(Instant::now());
        rt.start_time = Some(now_civil());
        rt.timed_out = false;
        rt.stop_reason = None;
        let token = CancelToken::new();
        rt.cancel = Some(token.clone());
        rt.deadline = node.timeout.map(|t| Instant::now() + t);
        rt.heartbeat = Some(Instant::now() + HEARTBEAT);
        let attempt = rt.attempt;
        self.reporter.event(&Event::Started { node: n, attempt });
        // The tests' way to stop a run while a given task runs (`task-start@N`).
        checkflow_plan::failpoint("task-start");
        let cx = ThreadCx {
            store: self.store.clone(),
            tx: self.tx.clone(),
            node: n,
            task_name: node.name.clone(),
            start: rt.start_time.unwrap_or_else(now_civil),
            error,
            unit: self.units[n.index()],
            reruns_whole,
            txn: tx,
            props: rt.props.clone(),
            cancel: token,
            dir: self.plan.package.dir.clone(),
            processes: self
                .processes
                .as_ref()
                .map(|p| (p.clone(), node.path.clone())),
            execution,
        };
        let action = action.clone();
        if action.inline() {
            let t0 = Instant::now();
            let mut cx = cx;
            let result = action.run(&mut cx).map_err(|e| e.message);
            self.results.push_back(TaskDone {
                node: n,
                result,
                elapsed: t0.elapsed(),
                inline: true,
            });
            return;
        }
        self.running += 1;
        self.busy.insert(n);
        let tx = self.tx.clone();
        let spawned = std::thread::Builder::new()
            .name(format!("task-{}", n.0))
            .spawn(move || {
                let t0 = Instant::now();
                let mut cx = cx;
                let result =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| action.run(&mut cx)))
                        .unwrap_or_else(|_| {
                            Err(TaskError::new(
                                "the task panicked (a bug in checkflow; please report it)",
                            ))
                        })
                        .map_err(|e| e.message);
                let _ = tx.send(Msg::Done(TaskDone {
                    node: n,
                    result,
                    elapsed: t0.elapsed(),
                    inline: false,
                }));
            });
        if let Err(e) = spawned {
            self.results.push_back(TaskDone {
                node: n,
                result: Err(format!("cannot start a thread: {e}")),
                elapsed: Duration::ZERO,
                inline: false,
            });
        }
    }
}
