//! Event handlers: each a plan of its own, run to its end where its
//! event happens, on a copy of the variables; never recorded.

use super::*;

impl Dispatcher<'_> {
    /// Fires `event` for `source`: its own handler for that event, then each
    /// ancestor's up to the package, until one sets `System::Propagate` to
    /// false. Handlers run here, before anything else moves: the executable
    /// waits for them. A failed handler counts as an error of the executable
    /// it is attached to; the error of `source`'s own is returned, for the
    /// caller to fail it with. No handler runs once the run is interrupted.
    pub(super) fn fire(
        &mut self,
        event: HandlerEvent,
        source: NodeId,
        code: i32,
        description: &str,
    ) -> Option<String> {
        // A run whose journal failed (or that lost its store's lease) starts
        // nothing more, handlers included.
        if self.cancelled || !self.any_handlers || self.journal_error.is_some() {
            return None;
        }
        let plan = self.plan;
        let mut own = None;
        for a in std::iter::once(source).chain(plan.ancestors(source)) {
            let Some(handler) = plan.node(a).handlers.as_ref().and_then(|h| h.get(event)) else {
                continue;
            };
            let (failed, propagate) =
                self.run_handler(handler, event, a, source, code, description);
            if self.interrupt.load(Ordering::SeqCst) {
                // Interrupted while it ran: the run stops as on any signal.
                // What the handler was for ends as it would have without
                // it (handlers are never recorded, so none is owed later).
                self.cancel_run();
                break;
            }
            if let Some(msg) = failed {
                let msg = format!("its {} handler failed: {msg}", event.key());
                if a == source {
                    own = Some(msg);
                } else {
                    self.handler_failed(a, msg);
                }
            }
            if !propagate || self.cancelled {
                break;
            }
        }
        own
    }

    /// OnError, then OnTaskFailed, for an executable that fails with `msg`.
    pub(super) fn fire_failure(&mut self, n: NodeId, code: i32, msg: &str) {
        self.fire_noted(HandlerEvent::OnError, n, code, msg);
        self.fire_noted(HandlerEvent::OnTaskFailed, n, code, msg);
    }

    /// Fires `event` for `n`, which has failed already: its own handler
    /// failing adds one more error to the one it has.
    pub(super) fn fire_noted(&mut self, event: HandlerEvent, n: NodeId, code: i32, msg: &str) {
        if let Some(e) = self.fire(event, n, code, msg) {
            self.errors.push(format!("{}: {e}", self.label(n)));
        }
    }

    /// OnPostExecute for an executable ending with `outcome`: the error that
    /// fails it if its own handler failed (the failure events fire for it).
    pub(super) fn fire_post_execute(&mut self, n: NodeId, outcome: Outcome) -> Option<String> {
        if outcome == Outcome::Failure {
            self.fire_noted(HandlerEvent::OnPostExecute, n, 0, "");
            return None;
        }
        let e = self.fire(HandlerEvent::OnPostExecute, n, 0, "")?;
        self.fire_failure(n, codes::HANDLER, &e);
        Some(e)
    }

    /// A handler attached to `a` failed while `a` runs (for a descendant's
    /// event): one more error of `a`'s, which fails it at its `max_errors`.
    pub(super) fn handler_failed(&mut self, a: NodeId, msg: String) {
        let rt = &mut self.rt[a.index()];
        if rt.state.is_terminal() || rt.halted {
            self.errors.push(format!("{}: {msg}", self.label(a)));
            return;
        }
        rt.errors += 1;
        if rt.errors >= self.plan.node(a).max_errors {
            rt.last_error = Some(msg.clone());
            self.fail(a, &msg);
        } else {
            self.errors.push(format!("{}: {msg}", self.label(a)));
        }
    }

    /// Runs one handler to its end, on a copy of the variables with the
    /// event's system values set; the variables it changes are copied back.
    /// Returns its error if it failed, and whether the event propagates.
    pub(super) fn run_handler(
        &mut self,
        handler: &Plan,
        event: HandlerEvent,
        attached: NodeId,
        source: NodeId,
        code: i32,
        description: &str,
    ) -> (Option<String>, bool) {
        let vars = &handler.vars;
        let before = self.store.snapshot();
        let mut initial = before.clone();
        let source_node = self.plan.node(source);
        for (var, value) in [
            (SystemVar::SourceName, Value::WStr(source_node.name.clone())),
            (SystemVar::SourceId, Value::WStr(source_node.path.clone())),
            (SystemVar::ErrorCode, Value::I4(code)),
            (SystemVar::ErrorDescription, Value::WStr(description.into())),
            (SystemVar::Propagate, Value::Bool(true)),
        ] {
            initial[vars.system_slot(var) as usize] = VarValue::Scalar(value);
        }
        let store = Arc::new(VarStore::new(Arc::new(vars.clone()), initial));
        let title = format!("{} handler of {}", event.key(), self.label(attached));
        let about = if source == attached {
            String::new()
        } else {
            format!(" for {}", self.label(source))
        };
        self.reporter.event(&Event::Log {
            node: attached,
            level: LogLevel::Info,
            line: format!("{title}{about}: started"),
        });
        self.handler_seq += 1;
        let opts = RunOptions {
            max_concurrent: handler.package.max_concurrent,
            resume: Resume::default(),
            initial: Vec::new(),
            interrupt: self.interrupt.clone(),
            tx_prefix: format!("{}:handler{}", self.tx_prefix, self.handler_seq),
            processes: None,
        };
        let mut reporter = HandlerReporter {
            inner: &mut *self.reporter,
            handler,
            attached,
            key: event.key(),
        };
        let result = run_on(handler, store.clone(), opts, &mut NoRecorder, &mut reporter);
        let after = store.snapshot();
        let unit = self.units[source.index()];
        for (slot, (old, new)) in before.iter().zip(&after).enumerate() {
            if old != new && vars.decls[slot].system.is_none() {
                self.store.set(slot as u32, new.clone(), unit);
            }
        }
        let propagate = !matches!(
            after[vars.system_slot(SystemVar::Propagate) as usize],
            VarValue::Scalar(Value::Bool(false))
        );
        let failed = match result.outcome {
            PackageOutcome::Success => None,
            PackageOutcome::Cancelled => Some("interrupted".to_string()),
            PackageOutcome::Failure => Some(
                result
                    .errors
                    .first()
                    .cloned()
                    .unwrap_or_else(|| "it failed".into()),
            ),
        };
        self.reporter.event(&Event::Log {
            node: attached,
            level: if failed.is_some() {
                LogLevel::Warn
            } else {
                LogLevel::Info
            },
            line: match &failed {
                None => format!("{title}{about}: succeeded"),
                Some(e) => format!("{title}{about}: failed: {e}"),
            },
        });
        (failed, propagate)
    }
}

/// `System::ErrorCode` in an event handler, by what raised the error.
pub(super) mod codes {
    /// The executable's own error (a task failing, a loop's expression).
    pub const FAILED: i32 = 1;
    /// It ran past its `timeout`.
    pub const TIMEOUT: i32 = 2;
    /// Its error count reached its `max_errors`.
    pub const MAX_ERRORS: i32 = 3;
    /// An event handler of its own failed.
    pub const HANDLER: i32 = 4;
    /// Its transaction could not commit.
    pub const COMMIT: i32 = 5;
}

/// Passes a handler's events on as lines of the executable it is attached
/// to: its executables are not the package's, and nothing records them.
struct HandlerReporter<'r> {
    inner: &'r mut dyn Reporter,
    handler: &'r Plan,
    attached: NodeId,
    key: &'static str,
}

impl Reporter for HandlerReporter<'_> {
    fn event(&mut self, ev: &Event) {
        let path = |n: &NodeId| self.handler.node(*n).path.as_str();
        let (level, text) = match ev {
            Event::Started { node, .. } if *node != Plan::ROOT => {
                (LogLevel::Info, format!("start {}", path(node)))
            }
            Event::Finished {
                node,
                status,
                duration,
                error,
            } if *node != Plan::ROOT => {
                let level = match status {
                    Status::Failed | Status::Cancelled => LogLevel::Warn,
                    _ => LogLevel::Info,
                };
                let mut line = format!("{status} {} ({})", path(node), humantime(*duration));
                if let Some(e) = error {
                    line.push_str(": ");
                    line.push_str(e);
                }
                (level, line)
            }
            Event::Log { node, level, line } => (*level, format!("{} | {line}", path(node))),
            Event::Retrying {
                node,
                attempt,
                error,
                ..
            } => (
                LogLevel::Warn,
                format!("retry {} after attempt {attempt}: {error}", path(node)),
            ),
            Event::Warning { message } => (LogLevel::Warn, message.clone()),
            _ => return,
        };
        self.inner.event(&Event::Log {
            node: self.attached,
            level,
            line: format!("{} | {text}", self.key),
        });
    }

    fn flush(&mut self) {
        self.inner.flush();
    }
}
