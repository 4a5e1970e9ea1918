//! A checkpoint that cannot be written: an unwritable folder, a read-only
//! file system, a full disk. The run stops with exit 1 and an error naming
//! the checkpoint, and a checkpoint already on disk stays readable
//! (docs/semantics.md §5.6: after an I/O error on the checkpoint the run
//! stops).
//!
//! Tests run as root in CI, where folder permissions are not enforced: the
//! unwritable-folder cases then use a path under a regular file, or a tmpfs
//! remounted read-only; the disk-full case needs a small tmpfs, and is
//! skipped (with a note) where mounting is not allowed. The journal's own
//! tests inject ENOSPC through its storage interface on every platform.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::*;

fn package(checkpoint: &str) -> String {
    package_yaml("disk_errors", &checkpoint_at(checkpoint), A_FAILING_B_C)
}

/// Whether this process may write into a folder with mode 0555 (root may).
fn permissions_enforced(dir: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o555)).expect("chmod 0555");
    let probe = dir.join(".probe");
    let enforced = std::fs::write(&probe, "").is_err();
    let _ = std::fs::remove_file(&probe);
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o755)).expect("chmod 0755");
    enforced
}

/// A tmpfs mounted on a folder, unmounted when dropped.
struct Tmpfs(PathBuf);

impl Tmpfs {
    /// Mounts a tmpfs of `size` at `dir`; `None` where that is not allowed.
    fn mount(dir: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(dir).expect("create the mount point");
        let ok = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir)
            .output()
            .is_ok_and(|o| o.status.success());
        ok.then(|| Tmpfs(dir.to_owned()))
    }

    fn remount_read_only(&self) -> bool {
        Command::new("mount")
            .args(["-o", "remount,ro"])
            .arg(&self.0)
            .output()
            .is_ok_and(|o| o.status.success())
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).output();
    }
}

#[test]
fn new_checkpoint_in_an_unwritable_folder_fails_the_run_before_anything_runs() {
    let sb = Sandbox::new();
    std::fs::create_dir(sb.join("state")).expect("mkdir state");
    let (ckpt, how) = if permissions_enforced(&sb.join("state")) {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(sb.join("state"), std::fs::Permissions::from_mode(0o555))
            .expect("chmod 0555");
        ("state/new/r.ckpt", "a folder with mode 0555")
    } else {
        // Root writes anywhere; nobody can create a folder under a file.
        sb.write("blocker", "a regular file, not a folder\n");
        ("blocker/r.ckpt", "a path under a regular file")
    };
    sb.write("package.yaml", &package(ckpt));
    let out = sb.run().output().exit(1);
    assert!(
        out.stderr.contains(ckpt) || out.stderr.contains(&sb.join(ckpt).display().to_string()),
        "the error names the checkpoint ({how})\n{out:?}"
    );
    assert!(
        out.stderr.starts_with("checkflow: failed to"),
        "one clear error ({how})\n{out:?}"
    );
    assert_eq!(sb.ledger(), Vec::<String>::new(), "nothing runs ({how})");
    assert!(!sb.exists(ckpt));
    use std::os::unix::fs::PermissionsExt;
    let _ = std::fs::set_permissions(sb.join("state"), std::fs::Permissions::from_mode(0o755));
}

#[test]
fn existing_checkpoint_in_a_folder_that_became_unwritable_stays_readable_and_untouched() {
    let sb = Sandbox::new();
    let state = sb.join("state");
    std::fs::create_dir(&state).expect("mkdir state");
    let enforced = permissions_enforced(&state);
    // As root: a tmpfs we can remount read-only instead of chmod.
    let mount = if enforced {
        None
    } else {
        match Tmpfs::mount(&state, "1m") {
            Some(m) => Some(m),
            None => {
                eprintln!("skipped: running as root and cannot mount a tmpfs");
                return;
            }
        }
    };
    sb.write("package.yaml", &package("state/r.ckpt"));
    sb.run().output().exit(1);
    assert_eq!(sb.take_ledger(), names(&["A", "B"]));
    let before = sb.read_bytes("state/r.ckpt");

    let how = match &mount {
        Some(m) => {
            assert!(m.remount_read_only(), "remount the tmpfs read-only");
            "a read-only file system"
        }
        None => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o555))
                .expect("chmod 0555");
            "a folder with mode 0555"
        }
    };
    sb.touch("fixed");
    let out = sb.run().output().exit(1);
    assert!(
        out.stderr.contains("state/r.ckpt") && out.stderr.starts_with("checkflow: failed to"),
        "a clear error naming the checkpoint ({how})\n{out:?}"
    );
    assert_eq!(
        sb.take_ledger(),
        Vec::<String>::new(),
        "nothing runs ({how})"
    );
    assert_eq!(
        sb.read_bytes("state/r.ckpt"),
        before,
        "the file is untouched ({how})"
    );
    assert_eq!(
        sb.completed("state/r.ckpt"),
        vec![("A".to_owned(), "success".to_owned())],
        "and still reads ({how})"
    );

    // Writable again: the restart goes on from the checkpoint.
    match &mount {
        Some(m) => {
            let ok = Command::new("mount")
                .args(["-o", "remount,rw"])
                .arg(&m.0)
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(ok, "remount the tmpfs read-write");
        }
        None => {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o755))
                .expect("chmod 0755");
        }
    }
    sb.run().output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["B", "C"]));
}

#[test]
fn disk_full_mid_run_stops_with_a_clear_error_and_the_checkpoint_stays_readable() {
    let sb = Sandbox::new();
    let Some(_disk) = Tmpfs::mount(&sb.join("disk"), "256k") else {
        eprintln!("skipped: cannot mount a tmpfs here (needs root)");
        return;
    };
    // The checkpoint's first record writes 64 KiB of room ahead of its
    // frames; Fill takes every free page after it; Big's record (100 KB) is
    // larger than that room and needs new pages.
    let yaml = package_yaml(
        "disk_full",
        &(checkpoint_at("disk/r.ckpt")
            + r#"variables:
  Big: { type: string, value: "" }
"#),
        r#"  - { name: A, type: process, command: "echo A >> ledger.txt" }
  - { name: Fill, type: process, command: "echo Fill >> ledger.txt; test -f disk/filler || dd if=/dev/zero of=disk/filler bs=4096 count=256 2>/dev/null; true" }
  - { name: Big, type: expression, expr: '@[User::Big] = REPLICATE("x", 100000)' }
  - { name: C, type: process, command: "echo C >> ledger.txt" }
"#,
    );
    sb.write("package.yaml", &yaml);
    let out = sb.run().output().exit(1);
    assert!(
        out.all().contains("No space left on device") && out.all().contains("disk/r.ckpt"),
        "the run reports the full disk and names the checkpoint\n{out:?}"
    );
    assert_eq!(sb.take_ledger(), names(&["A", "Fill"]), "C never starts");
    let doc = sb.show("disk/r.ckpt");
    assert_eq!(
        completed_of(&doc),
        vec![
            ("A".to_owned(), "success".to_owned()),
            ("Fill".to_owned(), "success".to_owned())
        ],
        "the records before the failed write are there: {doc:#}"
    );

    // Space again: the restart drops the torn record, restores A and Fill.
    std::fs::remove_file(sb.join("disk/filler")).expect("remove the filler");
    sb.run().output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["C"]));
    assert!(!sb.exists("disk/r.ckpt"));
}
