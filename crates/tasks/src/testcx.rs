//! The one fake task context of the unit tests: variables in a vector, log
//! lines and progress collected, a cancel token (optionally cancelled once a
//! given amount of progress is reported), and optionally a transaction.

use checkflow_expr::{Compiled, Env, Value};
use checkflow_plan::{CancelToken, LogLevel, RunCx, TaskError, TxScope, VarTable, VarValue};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// What a task sees while it runs in a test.
pub(crate) struct TestCx {
    dir: PathBuf,
    vars: VarTable,
    values: Vec<VarValue>,
    pub token: CancelToken,
    /// Every line logged, with its level.
    pub logs: Mutex<Vec<(LogLevel, String)>>,
    /// Every progress report: done and total.
    pub progress: Mutex<Vec<(u64, Option<u64>)>>,
    /// Cancels the task once this much progress is reported done.
    pub cancel_at: Option<u64>,
    pub tx: Option<Arc<TxScope>>,
}

impl TestCx {
    /// A context in `dir` whose variables are `vars` at their initial values.
    pub fn new(dir: &Path, vars: &VarTable) -> TestCx {
        TestCx {
            dir: dir.to_path_buf(),
            vars: vars.clone(),
            values: vars.decls.iter().map(|d| d.initial.clone()).collect(),
            token: CancelToken::new(),
            logs: Mutex::new(Vec::new()),
            progress: Mutex::new(Vec::new()),
            cancel_at: None,
            tx: None,
        }
    }

    /// The value of variable `name`.
    pub fn var(&self, name: &str) -> VarValue {
        let slot = self
            .vars
            .slot(name)
            .unwrap_or_else(|| panic!("no variable {name}"));
        self.values[slot as usize].clone()
    }

    /// The scalar value of variable `name`.
    pub fn scalar(&self, name: &str) -> Value {
        match self.var(name) {
            VarValue::Scalar(v) => v,
            other => panic!("{name} is not a scalar: {other}"),
        }
    }

    /// The lines logged, as they were written.
    pub fn lines(&self) -> Vec<String> {
        let logs = self.logs.lock().expect("logs");
        logs.iter().map(|(_, l)| l.clone()).collect()
    }

    /// Every line logged, each as `Level: line`, one per line.
    pub fn log_text(&self) -> String {
        let logs = self.logs.lock().expect("logs");
        let lines: Vec<String> = logs.iter().map(|(l, s)| format!("{l:?}: {s}")).collect();
        lines.join("\n")
    }

    /// The amounts done, in the order reported.
    pub fn done(&self) -> Vec<u64> {
        let p = self.progress.lock().expect("progress");
        p.iter().map(|(d, _)| *d).collect()
    }
}

impl Env for TestCx {
    fn value(&self, slot: u32) -> Value {
        match &self.values[slot as usize] {
            VarValue::Scalar(v) => v.clone(),
            VarValue::Object(_) => Value::Null(checkflow_expr::DataType::Object),
        }
    }
}

impl RunCx for TestCx {
    fn get(&self, slot: u32) -> VarValue {
        self.values[slot as usize].clone()
    }
    fn set(&mut self, slot: u32, value: VarValue) -> Result<(), TaskError> {
        self.values[slot as usize] = value;
        Ok(())
    }
    fn eval(&self, expr: &Compiled) -> Result<Value, TaskError> {
        expr.eval(self).map_err(|e| TaskError::new(e.to_string()))
    }
    fn env(&self) -> &dyn Env {
        self
    }
    fn property(&self, _name: &str) -> Option<&Value> {
        None
    }
    fn log(&self, level: LogLevel, line: &str) {
        self.logs
            .lock()
            .expect("logs")
            .push((level, line.to_string()));
    }
    fn progress(&self, done: u64, total: Option<u64>, _unit: &str) {
        self.progress.lock().expect("progress").push((done, total));
        if self.cancel_at.is_some_and(|c| done >= c) {
            self.token.cancel();
        }
    }
    fn cancel_token(&self) -> &CancelToken {
        &self.token
    }
    fn package_dir(&self) -> &Path {
        &self.dir
    }
    fn vars(&self) -> &VarTable {
        &self.vars
    }
    fn transaction(&self) -> Option<Arc<TxScope>> {
        self.tx.clone()
    }
}
