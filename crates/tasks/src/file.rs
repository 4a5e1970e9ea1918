//! The File System task: copy, move, rename, delete, mkdir, rmdir, clear_dir.
//! Paths resolve against the package folder.
//!
//! A file is written only by creating it new, never through a symbolic link:
//! a link at a destination counts as something there (`overwrite: false`
//! refuses it, `overwrite: true` removes the link itself, not its target).
//! Sources may be links, but a FIFO or a device is refused, never waited on.

use checkflow_files::Links;
use checkflow_model::{TaskDef, pos_of};
use checkflow_plan::{Action, BuildCx, RunCx, TaskError, TaskType};
use std::path::Path;
use std::sync::Arc;

pub(crate) struct FileType;

const OPS: &[&str] = &[
    "copy",
    "move",
    "rename",
    "delete",
    "mkdir",
    "rmdir",
    "clear_dir",
];

impl TaskType for FileType {
    fn name(&self) -> &'static str {
        "file"
    }

    fn fields(&self) -> &'static [&'static str] {
        &["op", "from", "to", "overwrite"]
    }

    fn build(&self, def: &TaskDef, cx: &mut BuildCx<'_>) -> Option<Arc<dyn Action>> {
        let file_op = def.file_op();
        let Some(op) = &file_op.op else {
            cx.error(format!("a file task needs `op` ({})", OPS.join(", ")));
            return None;
        };
        if !OPS.contains(&op.value.as_str()) {
            cx.error_at(
                pos_of(op),
                format!(
                    "unknown op \"{}\" (expected one of: {})",
                    op.value,
                    OPS.join(", ")
                ),
            );
            return None;
        }
        let needs_to = matches!(op.value.as_str(), "copy" | "move" | "rename");
        let Some(from) = &file_op.from else {
            cx.error(format!("op {} needs `from`", op.value));
            return None;
        };
        let to = match (&file_op.to, needs_to) {
            (Some(t), true) => Some(t.value.clone()),
            (None, true) => {
                cx.error(format!("op {} needs `to`", op.value));
                return None;
            }
            (Some(t), false) => {
                cx.error_at(pos_of(t), format!("op {} takes no `to`", op.value));
                return None;
            }
            (None, false) => None,
        };
        Some(Arc::new(FileAction {
            op: op.value.clone(),
            from: from.value.clone(),
            to,
            overwrite: file_op.overwrite.unwrap_or(false),
        }))
    }
}

struct FileAction {
    op: String,
    from: String,
    to: Option<String>,
    overwrite: bool,
}

fn io(what: &str, p: &Path, e: std::io::Error) -> TaskError {
    TaskError::new(format!("cannot {what} {}: {e}", p.display()))
}

fn copy_tree(from: &Path, to: &Path) -> Result<(), TaskError> {
    if from.is_dir() {
        std::fs::create_dir_all(to).map_err(|e| io("create folder", to, e))?;
        for entry in std::fs::read_dir(from).map_err(|e| io("list", from, e))? {
            let entry = entry.map_err(|e| io("list", from, e))?;
            copy_tree(&entry.path(), &to.join(entry.file_name()))?;
        }
        Ok(())
    } else {
        copy_file(from, to).map_err(|e| io("copy", from, e))
    }
}

/// Copies one regular file to a new file `to`, with its permissions.
///
/// Not `std::fs::copy`: it opens the target through a link (truncating
/// what the link points at) and waits on a FIFO as its source.
fn copy_file(from: &Path, to: &Path) -> std::io::Result<()> {
    let mut src = checkflow_files::open_read(from, Links::Follow)?;
    let perms = src.metadata()?.permissions();
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create_new(true);
    let mut dst = checkflow_files::open(&opts, to, Links::Refuse)?;
    std::io::copy(&mut src, &mut dst)?;
    dst.set_permissions(perms)
}

/// True if anything is at `p`, a link (even one to nothing) included.
fn is_there(p: &Path) -> bool {
    std::fs::symlink_metadata(p).is_ok()
}

/// Removes a file, a link (not what it points at) or a whole folder.
fn remove(p: &Path) -> Result<(), TaskError> {
    if std::fs::symlink_metadata(p).is_ok_and(|m| m.is_dir()) {
        std::fs::remove_dir_all(p).map_err(|e| io("delete", p, e))
    } else {
        std::fs::remove_file(p).map_err(|e| io("delete", p, e))
    }
}

impl Action for FileAction {
    fn run(&self, cx: &mut dyn RunCx) -> Result<(), TaskError> {
        let from = cx.prop_path("from", &self.from);
        let to = self.to.as_ref().map(|t| cx.prop_path("to", t));
        let exists = is_there(&from);
        match self.op.as_str() {
            "mkdir" => std::fs::create_dir_all(&from).map_err(|e| io("create folder", &from, e)),
            "rmdir" | "delete" if !exists => {
                Err(TaskError::new(format!("{} does not exist", from.display())))
            }
            "rmdir" => {
                if !from.is_dir() {
                    return Err(TaskError::new(format!(
                        "{} is not a folder",
                        from.display()
                    )));
                }
                std::fs::remove_dir_all(&from).map_err(|e| io("delete folder", &from, e))
            }
            "delete" => remove(&from),
            "clear_dir" => {
                if !from.is_dir() {
                    return Err(TaskError::new(format!(
                        "{} is not a folder",
                        from.display()
                    )));
                }
                for entry in std::fs::read_dir(&from).map_err(|e| io("list", &from, e))? {
                    let entry = entry.map_err(|e| io("list", &from, e))?;
                    remove(&entry.path())?;
                }
                Ok(())
            }
            op => {
                let mut to = to.ok_or_else(|| TaskError::new("no destination"))?;
                if !exists {
                    return Err(TaskError::new(format!("{} does not exist", from.display())));
                }
                if to.is_dir()
                    && op != "rename"
                    && let Some(name) = from.file_name()
                {
                    to = to.join(name);
                }
                if is_there(&to) {
                    if !self.overwrite {
                        return Err(TaskError::new(format!(
                            "{} already exists (set overwrite: true to replace it)",
                            to.display()
                        )));
                    }
                    remove(&to)?;
                }
                if let Some(parent) = to.parent()
                    && !parent.as_os_str().is_empty()
                    && !parent.exists()
                {
                    return Err(TaskError::new(format!(
                        "folder {} does not exist",
                        parent.display()
                    )));
                }
                match op {
                    "copy" => copy_tree(&from, &to),
                    _ => match std::fs::rename(&from, &to) {
                        Ok(()) => Ok(()),
                        // Across file systems rename fails: copy, then delete.
                        Err(_) => {
                            copy_tree(&from, &to)?;
                            remove(&from)
                        }
                    },
                }
            }
        }
    }
}
