//! `checkflow new NAME`: a new package folder, `NAME/package.yaml`, with a
//! fresh id, a checkpoint, and a task that fails on the first run so that
//! the second shows a restart.

use super::emit;
use crate::exit;
use crate::session::Fail;
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};

/// The package file, with `{name}` and `{id}` to fill in. Every command the
/// comments give is run by the test of `checkflow new`.
const TEMPLATE: &str = r#"# {name}: a package made by `checkflow new`. It shows a restart from a
# checkpoint; edit the tasks to make it yours. Relative paths are relative to
# this file's folder, whatever folder you run checkflow from.
#
#   checkflow validate {file}
#   checkflow run {file}        # fails at "Load" by design (no ready.txt yet);
#                               # the checkpoint keeps what finished
#   touch {ready}               # (Windows: type nul > {ready})
#   checkflow plan {file}       # what a rerun restores and what it runs
#   checkflow run {file}        # restarts at "Load": Extract is restored, not rerun
#
# The id is this package's own (a checkpoint restarts only the package with
# its id): keep it when you edit the package, make a new one for a copy.
id: {id}
name: "{name}"
description: Extract, load, report; restartable from the point of failure.

checkpoint:
  file: work/{name}.ckpt   # the checkpoint file; work/ holds what this package writes
  usage: if_exists         # restart from the file when there is one
  save: true               # record each finished task, durably, as it finishes

variables:
  Rows: { type: int32, value: 0 }

tasks:
  - name: Prepare
    type: file
    op: mkdir
    from: work

  # Recorded when it finishes: a restart restores it (and User::Rows) instead
  # of running it again.
  - name: Extract
    type: expression
    expr: "@[User::Rows] = 3"

  # Copies ready.txt, which is not there yet: the first run fails here.
  # fail_package_on_failure makes it a restart point: its failure keeps the
  # checkpoint, and the next run starts again at this task.
  - name: Load
    type: file
    op: copy
    from: ready.txt
    to: work/loaded.txt
    overwrite: true
    fail_package_on_failure: true

  - name: Report
    type: process
    expressions:
      command: '"echo loaded " + (DT_WSTR, 10) @[User::Rows] + " rows"'
    command: echo
"#;

pub fn new(name: &str, dir: &Path) -> Result<i32, Fail> {
    check_name(name)?;
    let folder = dir.join(name);
    // Shown as the user would type it: `nightly/package.yaml`, not `./nightly/...`.
    let shown = if dir == Path::new(".") {
        PathBuf::from(name)
    } else {
        folder.clone()
    };
    let file = folder.join("package.yaml");
    let shown_file = shown.join("package.yaml");
    let shown_ready = shown.join("ready.txt");
    match std::fs::symlink_metadata(&folder) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Fail::new(
                exit::FAILURE,
                format!(
                    "failed to create package folder {}: something that is not a folder is there",
                    folder.display()
                ),
            ));
        }
        Err(e) if e.kind() == ErrorKind::NotFound => {
            std::fs::create_dir_all(&folder).map_err(|e| {
                Fail::new(
                    exit::FAILURE,
                    format!("failed to create package folder {}: {e}", folder.display()),
                )
            })?;
        }
        Err(e) => {
            return Err(Fail::new(
                exit::FAILURE,
                format!("failed to inspect {}: {e}", folder.display()),
            ));
        }
    }
    let id = checkflow_model::new_uuid();
    let text = TEMPLATE
        .replace("{name}", name)
        .replace("{id}", &id)
        .replace("{file}", &shown_file.display().to_string())
        .replace("{ready}", &shown_ready.display().to_string());
    // create_new: never replaces a file, and never writes through a symlink
    // (one at that name, even dangling, is "already exists").
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&file)
        .map_err(|e| {
            let why = if e.kind() == ErrorKind::AlreadyExists {
                "it already exists, and checkflow new never replaces a file".to_string()
            } else {
                e.to_string()
            };
            Fail::new(
                exit::FAILURE,
                format!("failed to create {}: {why}", shown_file.display()),
            )
        })?;
    f.write_all(text.as_bytes())
        .and_then(|()| f.sync_all())
        .map_err(|e| {
            Fail::new(
                exit::FAILURE,
                format!("failed to write {}: {e}", shown_file.display()),
            )
        })?;
    let f = shown_file.display();
    let r = shown_ready.display();
    emit(&format!(
        "created {f}: package \"{name}\", id {id}\n\
         next:\n  \
         checkflow validate {f}\n  \
         checkflow run {f}        # fails at \"Load\" by design; the checkpoint keeps what finished\n  \
         touch {r}\n  \
         checkflow run {f}        # restarts at \"Load\"; Extract is restored, not rerun\n"
    ))?;
    Ok(exit::SUCCESS)
}

/// A name that is a folder name and a package name everywhere: letters,
/// digits, `_`, `-` and `.`, not starting with `.` or `-`.
fn check_name(name: &str) -> Result<(), Fail> {
    let ok = !name.is_empty()
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'));
    if ok {
        Ok(())
    } else {
        Err(Fail::new(
            exit::BAD_COMMAND_LINE,
            format!(
                "failed to create package {name:?}: a new package's name becomes its folder's, so it takes letters, digits, `_`, `-` and `.` (not first), e.g. nightly_sales"
            ),
        ))
    }
}
