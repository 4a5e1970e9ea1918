//! Test support for the database tasks: a package in a temp folder, validated
//! with the real registry, and its tasks run one by one in a [`TestCx`].

pub(crate) use crate::testcx::TestCx;
use checkflow_plan::{Action, NodeKind, Plan, TaskError};
use std::path::PathBuf;
use std::sync::Arc;

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
        TestCx::new(&self.plan.package.dir, &self.plan.vars)
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
