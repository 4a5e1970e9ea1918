//! Transactions (each settled with its intent recorded first) and the
//! files removed once a record is durable.

use super::*;

impl Dispatcher<'_> {
    /// Whether a restart reruns `n` with the whole atomic unit around it: its
    /// unit is neither itself nor a loop that records its iterations.
    pub(super) fn reruns_whole(&self, n: NodeId) -> bool {
        let unit = self.units[n.index()];
        unit != n
            && !matches!(
                self.plan.node(unit).kind,
                NodeKind::Foreach {
                    checkpoint_iterations: true,
                    ..
                }
            )
    }

    /// The files `unit`'s tasks asked to remove, after the record just pushed.
    pub(super) fn push_discards(&mut self, unit: NodeId) {
        if self.discards.is_empty() {
            return;
        }
        let (mine, rest) = std::mem::take(&mut self.discards)
            .into_iter()
            .partition(|(u, _)| *u == unit);
        self.discards = rest;
        let paths: Vec<PathBuf> = mine.into_iter().map(|(_, p)| p).collect();
        if !paths.is_empty() {
            self.pending_records.push(Record::Discard { paths });
        }
    }

    /// A new transaction for `n`, with a marker unique to this run.
    pub(super) fn new_scope(&mut self, n: NodeId) -> Arc<TxScope> {
        self.tx_seq += 1;
        let path = &self.plan.node(n).path;
        Arc::new(TxScope::new(
            path.clone(),
            format!("{}:{}:{}", self.tx_prefix, self.tx_seq, path),
        ))
    }

    /// The transaction `n` runs in: its own, or the nearest transacted container's.
    pub(super) fn tx_for(&self, n: NodeId) -> Option<Arc<TxScope>> {
        if !self.plan.node(n).transacted {
            return None;
        }
        std::iter::once(n)
            .chain(self.plan.ancestors(n))
            .find(|a| self.plan.node(*a).starts_transaction)
            .and_then(|a| self.rt[a.index()].tx.clone())
    }

    /// Ends the transaction `n` started, if any: rolled back unless `outcome`
    /// is a success or completion; otherwise the intent to commit is made
    /// durable, then the databases commit. A failed commit is the error.
    ///
    /// A run being cancelled does not roll back a unit whose every part
    /// finished: it commits and is recorded like any executable that
    /// finished before the signal (rolling it back while recording it as
    /// done would lose its work for good). The steps and why each crash
    /// point between them is safe: docs/design/commit-protocols.md §1.
    pub(super) fn settle_tx(&mut self, n: NodeId, outcome: Outcome) -> Result<(), String> {
        let Some(scope) = self.rt[n.index()].tx.take() else {
            return Ok(());
        };
        if outcome == Outcome::Failure {
            for e in scope.rollback() {
                self.reporter.event(&Event::Warning {
                    message: format!("{}: {e}", self.plan.node(n).path),
                });
            }
            return Ok(());
        }
        let connections = scope.keys();
        if connections.is_empty() {
            return Ok(());
        }
        if self.plan.node(n).recordable {
            // The variables its completion will carry ride with the intent: a
            // restart that finds the commit made restores them with it.
            let vars = self.store.peek_dirty(n);
            self.pending_records.push(Record::TxCommitting {
                node: n,
                marker: scope.marker().to_string(),
                connections,
                vars,
            });
            if !self.flush() {
                scope.rollback();
                return Err(
                    "the checkpoint could not record the intent to commit; rolled back".into(),
                );
            }
            checkflow_plan::failpoint("tx-after-intent");
        }
        let committed = scope.commit().map_err(|e| e.to_string());
        if committed.is_ok() {
            checkflow_plan::failpoint("tx-after-commit");
        }
        committed
    }
}
