//! Test support for the database tasks: a package in a temp folder, validated
//! with the real registry, and its tasks run one by one in a [`TestCx`] that
//! keeps variables, log lines, progress and (optionally) a transaction.

use checkflow_expr::{Compiled, Env, Value};
use checkflow_plan::{
    Action, CancelToken, LogLevel, NodeKind, Plan, RunCx, TaskError, TxScope, VarTable, VarValue,
};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A validated package in its own folder.
pub(crate) struct Pkg {
    pub dir: tempfile::TempDir,
    pub plan: Plan,
}

impl Pkg {
    /// Writes `files` (relative path, text) and `package.yaml`, and validates it.
    pub fn new(yaml: &str, files: &[(&str, &str)]) -> Pkg {
        Pkg::try_new(yaml, files).unwrap_or_else(|e| panic!("package does not validate: {e}"))
    }

    /// As `new`, returning the validation problems instead.
    pub fn try_new(yaml: &str, files: &[(&str, &str)]) -> Result<Pkg, String> {
        let dir = tempfile::tempdir().expect("temp dir");
        for (rel, text) in files {
            let p = dir.path().join(rel);
            std::fs::create_dir_all(p.parent().expect("a parent")).expect("mkdir");
            std::fs::write(&p, text).expect("write");
        }
        let pkg_path = dir.path().join("package.yaml");
        let full = format!("id: 0b6f4d1e-7c1a-4a8e-9a53-2d2f1f6e9c11\nname: t\n{yaml}");
        std::fs::write(&pkg_path, full).expect("write package");
        let loaded = checkflow_model::load(&pkg_path).map_err(|e| e.to_string())?;
        let plan =
            checkflow_plan::validate(&loaded, &crate::registry()).map_err(|e| e.to_string())?;
        Ok(Pkg { dir, plan })
    }

    /// A context holding the variables' initial values.
    pub fn cx(&self) -> TestCx {
        TestCx {
            dir: self.plan.package.dir.clone(),
            vars: self.plan.vars.clone(),
            values: self
                .plan
                .vars
                .decls
                .iter()
                .map(|d| d.initial.clone())
                .collect(),
            token: CancelToken::new(),
            logs: Mutex::new(Vec::new()),
            progress: Mutex::new(Vec::new()),
            tx: None,
        }
    }

    /// The action of the task named `name` (a top-level task).
    pub fn action(&self, name: &str) -> Arc<dyn Action> {
        let id = self
            .plan
            .find(name)
            .unwrap_or_else(|| panic!("no task {name}"));
        match &self.plan.node(id).kind {
            NodeKind::Task { action, .. } => action.clone(),
            _ => panic!("{name} is not a task"),
        }
    }

    /// Runs task `name` in `cx`.
    pub fn run(&self, name: &str, cx: &mut TestCx) -> Result<(), TaskError> {
        self.action(name).run(cx)
    }

    /// A path inside the package folder.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }
}

/// What a task sees while it runs in a test.
pub(crate) struct TestCx {
    dir: PathBuf,
    vars: VarTable,
    values: Vec<VarValue>,
    pub token: CancelToken,
    pub logs: Mutex<Vec<String>>,
    pub progress: Mutex<Vec<u64>>,
    pub tx: Option<Arc<TxScope>>,
}

impl TestCx {
    /// The value of `User::name`.
    pub fn var(&self, name: &str) -> VarValue {
        let slot = self
            .vars
            .slot(name)
            .unwrap_or_else(|| panic!("no variable {name}"));
        self.values[slot as usize].clone()
    }

    /// The scalar value of `User::name`.
    pub fn scalar(&self, name: &str) -> Value {
        match self.var(name) {
            VarValue::Scalar(v) => v,
            other => panic!("{name} is not a scalar: {other}"),
        }
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
    fn eval(&self, _expr: &Compiled) -> Result<Value, TaskError> {
        Err(TaskError::new("no expressions in these tests"))
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
            .push(format!("{level:?}: {line}"));
    }
    fn progress(&self, done: u64, _total: Option<u64>, unit: &str) {
        assert_eq!(unit, "rows");
        self.progress.lock().expect("progress").push(done);
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
