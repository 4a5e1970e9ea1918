//! `checkflow validate`: load and check a package.

use crate::exit;
use crate::session::{Fail, load_plan};
use std::path::Path;

pub fn validate(path: &Path) -> Result<i32, Fail> {
    let plan = load_plan(path)?;
    let tasks = plan.nodes.iter().filter(|n| !n.kind.is_container()).count();
    let containers = plan.nodes.len() - 1 - tasks;
    let vars = plan
        .vars
        .decls
        .iter()
        .filter(|d| d.system.is_none())
        .count();
    super::emit(&format!(
        "package \"{}\" ({}) is valid: {tasks} task(s), {containers} container(s), {vars} variable(s)\n",
        plan.package.name,
        path.display()
    ))?;
    Ok(exit::SUCCESS)
}
