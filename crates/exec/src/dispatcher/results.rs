//! A task's end: retries, its handlers and commit, its record; and the
//! records written, in order, through the `Recorder` (`flush`).

use super::*;

impl Dispatcher<'_> {
    pub(super) fn on_result(&mut self, r: TaskDone) {
        if !r.inline {
            self.running = self.running.saturating_sub(1);
        }
        let n = r.node;
        let node = self.plan.node(n);
        let rt = &mut self.rt[n.index()];
        rt.runs += 1;
        let mut result = r.result;
        if let Some(reason) = rt.stop_reason.take() {
            // Stopped by the engine: part of the failure that stopped it.
            rt.chain = true;
            result = Err(reason);
        }
        if let Err(e) = &result {
            rt.last_error = Some(e.clone());
            if self.cancelled {
                rt.total += r.elapsed;
                self.busy.remove(&n);
                self.reporter.event(&Event::Finished {
                    node: n,
                    status: Status::Cancelled,
                    duration: r.elapsed,
                    error: Some(e.clone()),
                });
                self.set_terminal(n, State::Cancelled);
                return;
            }
            if rt.attempt <= node.retries && !self.stopping {
                rt.total += r.elapsed;
                let delay = node.retry_delay;
                rt.state = State::Waiting;
                rt.retry_at = Some(Instant::now() + delay);
                self.busy.insert(n);
                let attempt = rt.attempt;
                self.reporter.event(&Event::Retrying {
                    node: n,
                    attempt,
                    error: e.clone(),
                    delay,
                });
                return;
            }
        }
        self.busy.remove(&n);
        self.finish_task(n, result, r.elapsed);
    }

    pub(super) fn finish_task(&mut self, n: NodeId, result: Result<(), String>, elapsed: Duration) {
        let node = self.plan.node(n);
        let mut result = result;
        if let Some(e) = self.rt[n.index()].handler_error.take()
            && result.is_ok()
        {
            result = Err(e);
        }
        let mut outcome = if result.is_ok() {
            Outcome::Success
        } else {
            Outcome::Failure
        };
        if let Some(f) = node.force_result {
            outcome = forced(f);
        }
        let mut error = result.err();
        // One measurement for the log line and the summary: the task's own
        // time (measured where it ran), its handlers, and its commit.
        let settling = Instant::now();
        // Its handlers run before its commit: one that fails makes it fail,
        // and a failure must roll back, never follow a commit.
        if outcome == Outcome::Failure {
            let code = if self.rt[n.index()].timed_out {
                codes::TIMEOUT
            } else {
                codes::FAILED
            };
            let msg = error.clone().unwrap_or_else(|| FORCED.into());
            self.fire_failure(n, code, &msg);
        }
        if let Some(e) = self.fire_post_execute(n, outcome) {
            outcome = Outcome::Failure;
            error = Some(e);
        }
        if let Err(e) = self.settle_tx(n, outcome) {
            self.fire_failure(n, codes::COMMIT, &e);
            outcome = Outcome::Failure;
            error = Some(e);
        }
        let duration = elapsed + settling.elapsed();
        self.rt[n.index()].total += duration;
        self.reporter.event(&Event::Finished {
            node: n,
            status: State::Done(outcome).status(),
            duration,
            error: error.clone(),
        });
        if outcome == Outcome::Failure {
            let msg = error.unwrap_or_else(|| FORCED.into());
            self.rt[n.index()].last_error = Some(msg.clone());
            self.fail(n, &msg);
        }
        self.complete(n, outcome, duration);
    }

    /// Records (when allowed) and marks the executable done.
    pub(super) fn complete(&mut self, n: NodeId, outcome: Outcome, duration: Duration) {
        let node = self.plan.node(n);
        if node.parent.is_some() && node.recordable && !self.rt[n.index()].chain {
            let vars = self.store.take_dirty(n);
            self.pending_records.push(Record::Completed {
                node: n,
                outcome,
                duration,
                vars,
            });
            self.push_discards(n);
        }
        self.set_terminal(n, State::Done(outcome));
    }

    pub(super) fn set_terminal(&mut self, n: NodeId, state: State) {
        debug_assert!(
            self.rt[n.index()].state.can_move_to(state) || self.rt[n.index()].state == state,
            "{:?} -> {state:?}",
            self.rt[n.index()].state
        );
        let was_open = !self.rt[n.index()].state.is_terminal();
        if was_open && let State::Done(o) = state {
            self.rt[n.index()].ended.add(o);
        }
        self.rt[n.index()].state = state;
        if was_open && let Some(p) = self.plan.node(n).parent {
            let open = &mut self.rt[p.index()].open;
            *open = open.saturating_sub(1);
        }
        let node = self.plan.node(n);
        for &s in &node.succs {
            self.agenda.push_back(Work::Check(s));
        }
        if let Some(p) = node.parent {
            self.agenda.push_back(Work::ChildDone(p));
        }
    }

    /// Writes pending records; `false` if the journal failed (the run stops).
    /// Also asks the recorder whether the run may go on at all (a shared
    /// store's lease): called before every start and at every turn of the
    /// loop, so a run that lost its lease starts nothing more and stops what
    /// runs, as a failed write does.
    pub(super) fn flush(&mut self) -> bool {
        if self.journal_error.is_some() {
            return false;
        }
        if let Err(e) = self.recorder.hold() {
            self.journal_failed(e);
            return false;
        }
        if self.pending_records.is_empty() {
            return true;
        }
        let batch = std::mem::take(&mut self.pending_records);
        match self.recorder.record(batch) {
            Ok(()) => true,
            Err(e) => {
                self.journal_failed(e);
                false
            }
        }
    }

    /// The journal failed: the run stops, and running tasks are stopped.
    fn journal_failed(&mut self, e: RecordError) {
        self.errors.push(format!("checkpoint: {e}"));
        self.journal_error = Some(e.to_string());
        self.stop();
        for n in self.busy.clone() {
            if let Some(t) = &self.rt[n.index()].cancel {
                t.cancel();
            }
        }
    }
}
