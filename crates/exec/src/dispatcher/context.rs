//! What a running task sees: its variables, properties, transaction,
//! cancel token, and the channel its log lines and progress go through.

use super::*;

/// The context of a running task (worker thread or inline).
pub(super) struct ThreadCx {
    pub(super) store: Arc<VarStore>,
    pub(super) tx: Sender<Msg>,
    pub(super) node: NodeId,
    pub(super) task_name: String,
    pub(super) start: jiff::civil::DateTime,
    pub(super) error: Option<String>,
    /// The unit whose record carries the variables this task changes.
    pub(super) unit: NodeId,
    /// A restart reruns the atomic unit around it whole.
    pub(super) reruns_whole: bool,
    pub(super) txn: Option<Arc<TxScope>>,
    pub(super) props: Arc<HashMap<String, Value>>,
    pub(super) cancel: CancelToken,
    pub(super) dir: PathBuf,
    /// The run's process scope and this task's path.
    pub(super) processes: Option<(Arc<ProcessScope>, String)>,
    pub(super) execution: Execution,
}

impl ThreadCx {
    fn task_env(&self) -> TaskEnv<'_> {
        TaskEnv {
            store: &self.store,
            task_name: &self.task_name,
            start: self.start,
            error: self.error.as_deref(),
            unit: self.unit,
        }
    }
}

impl Env for ThreadCx {
    fn value(&self, slot: u32) -> Value {
        self.task_env().value(slot)
    }
}

impl RunCx for ThreadCx {
    fn execution(&self) -> Execution {
        self.execution.clone()
    }

    fn get(&self, slot: u32) -> VarValue {
        match &self.store.table().decl(slot).expr {
            Some(_) => VarValue::Scalar(self.value(slot)),
            None => self.store.raw(slot),
        }
    }

    fn set(&mut self, slot: u32, value: VarValue) -> Result<(), TaskError> {
        self.store.set(slot, value, self.unit);
        Ok(())
    }

    fn eval(&self, expr: &Compiled) -> Result<Value, TaskError> {
        eval_and_assign(expr, &self.task_env()).map_err(TaskError::new)
    }

    fn env(&self) -> &dyn Env {
        self
    }

    fn property(&self, name: &str) -> Option<&Value> {
        self.props.get(name)
    }

    fn log(&self, level: LogLevel, line: &str) {
        let _ = self.tx.send(Msg::Report(Event::Log {
            node: self.node,
            level,
            line: line.to_string(),
        }));
    }

    fn progress(&self, done: u64, total: Option<u64>, unit: &str) {
        let _ = self.tx.send(Msg::Report(Event::Progress {
            node: self.node,
            done,
            total,
            unit: unit.to_string(),
        }));
    }

    fn metrics(&self, metrics: serde_json::Value) {
        let _ = self.tx.send(Msg::Report(Event::Metrics {
            node: self.node,
            metrics,
        }));
    }

    fn cancel_token(&self) -> &CancelToken {
        &self.cancel
    }

    fn reruns_whole(&self) -> bool {
        self.reruns_whole
    }

    fn discard_when_recorded(&self, path: PathBuf) {
        let _ = self.tx.send(Msg::Discard {
            node: self.node,
            path,
        });
    }

    fn transaction(&self) -> Option<Arc<TxScope>> {
        self.txn.clone()
    }

    fn package_dir(&self) -> &Path {
        &self.dir
    }

    fn processes(&self) -> Option<(&ProcessScope, &str)> {
        self.processes
            .as_ref()
            .map(|(p, path)| (&**p, path.as_str()))
    }

    fn vars(&self) -> &VarTable {
        self.store.table()
    }
}
