//! The first hour of a new user: the help and a bare `checkflow`, the help's
//! examples run as written, `checkflow new`, the install script, and the
//! messages a newcomer meets first (a missing `id`, a misspelt `--rerun`,
//! a failure path in `plan`, durations in the log and the summary).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::*;

#[test]
fn bare_checkflow_prints_the_help_with_its_commands_and_examples_and_exits_6() {
    let sb = Sandbox::new();
    let out = sb.cmd(Vec::<&str>::new()).output().exit(6);
    let all = out.all();
    for needle in ["Runs ETL packages", "Commands:", "run", "new", "Examples:"] {
        assert!(all.contains(needle), "no {needle:?} in the help\n{out:?}");
    }
    assert!(
        !all.contains("argv"),
        "the help shows an internal description\n{out:?}"
    );
    // Asked for, the help is not an error.
    sb.cmd(["--help"]).output().exit(0).stdout_has("Examples:");
}

/// The lines of `checkflow --help` that show a command, without `checkflow`
/// and without the comment after `#`.
fn help_examples() -> Vec<Vec<String>> {
    let out = Sandbox::new().cmd(["--help"]).output().exit(0);
    out.stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("checkflow "))
        .map(|l| {
            let l = l.split(" #").next().unwrap_or(l);
            l.split_whitespace().map(str::to_owned).collect()
        })
        .collect()
}

#[test]
fn help_examples_of_run_work_on_a_first_run() {
    let examples = help_examples();
    let sb = Sandbox::new();
    // `checkflow new nightly`, then the run that fails by design.
    let new = examples
        .iter()
        .find(|e| e[0] == "new")
        .expect("an example of `new`");
    sb.cmd(new).output().exit(0);
    let first = examples
        .iter()
        .find(|e| e[0] == "run" && e[1] == "nightly/package.yaml")
        .expect("an example running the new package");
    sb.cmd(first).output().exit(1).says("ready.txt");

    // The dtexec-style example, on a package that has never run (no
    // checkpoint file yet).
    sb.write(
        "nightly.yaml",
        &show_day_package("nightly", "checkpoint: { file: state/nightly.ckpt }\n"),
    );
    let run = examples
        .iter()
        .find(|e| e[0] == "run" && e[1] == "nightly.yaml")
        .expect("an example running nightly.yaml");
    sb.cmd(run).output().exit(0);
    assert_eq!(sb.take_ledger(), names(&["day=2026-11-21"]), "{run:?}");
}

#[test]
fn new_makes_a_package_that_validates_fails_once_and_restarts() {
    let sb = Sandbox::new();
    sb.cmd(["new", "demo"])
        .output()
        .exit(0)
        .stdout_has("created demo/package.yaml")
        .stdout_has("touch demo/ready.txt");
    let text = sb.read("demo/package.yaml");
    let id = text
        .lines()
        .find_map(|l| l.strip_prefix("id: "))
        .expect("an id line");
    assert!(is_uuid(id), "not a UUID: {id:?}");

    sb.cmd(["validate", "demo/package.yaml"]).output().exit(0);
    sb.cmd(["run", "demo/package.yaml"])
        .output()
        .exit(1)
        .says("checkpoint kept");
    assert!(sb.exists("demo/work/demo.ckpt"), "the checkpoint is kept");
    sb.touch("demo/ready.txt");
    sb.cmd(["plan", "demo/package.yaml"])
        .output()
        .exit(0)
        .stdout_has("restore Extract")
        .stdout_has("run     Load");
    sb.cmd(["run", "demo/package.yaml"])
        .output()
        .exit(0)
        .says("restored Extract")
        .says("loaded 3 rows");
    assert!(!sb.exists("demo/work/demo.ckpt"), "deleted on success");

    // A second package gets its own id.
    sb.cmd(["new", "other", "--dir", "more"]).output().exit(0);
    assert!(!sb.read("more/other/package.yaml").contains(id));
}

#[test]
fn new_never_replaces_a_file_nor_writes_through_a_symlink() {
    let sb = Sandbox::new();
    sb.write("demo/package.yaml", "mine\n");
    sb.cmd(["new", "demo"])
        .output()
        .exit(1)
        .stderr_has("demo/package.yaml")
        .stderr_has("already exists");
    assert_eq!(sb.read("demo/package.yaml"), "mine\n");

    sb.write("target.txt", "mine\n");
    std::fs::create_dir(sb.join("linked")).expect("create folder");
    std::os::unix::fs::symlink(sb.join("target.txt"), sb.join("linked/package.yaml"))
        .expect("symlink");
    sb.cmd(["new", "linked"]).output().exit(1);
    assert_eq!(sb.read("target.txt"), "mine\n", "written through a symlink");
    // A dangling one is no way in either.
    std::fs::create_dir(sb.join("dangling")).expect("create folder");
    std::os::unix::fs::symlink(sb.join("nowhere.txt"), sb.join("dangling/package.yaml"))
        .expect("symlink");
    sb.cmd(["new", "dangling"]).output().exit(1);
    assert!(
        !sb.exists("nowhere.txt"),
        "created through a dangling symlink"
    );

    sb.cmd(["new", "../up"])
        .output()
        .exit(6)
        .stderr_has("letters, digits");
    assert!(!sb.path().parent().expect("a parent").join("up").exists());
}

#[test]
fn install_script_puts_checkflow_on_path() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let sb = Sandbox::new();
    let dest = sb.join("bin");
    // The script as the README gives it, with the binary under test in place
    // of a release build.
    let out = Command::new("bash")
        .arg(root.join("scripts/install.sh"))
        .arg("--dir")
        .arg(&dest)
        .env("CHECKFLOW_BUILT", BIN)
        .env("PATH", "/usr/bin:/bin")
        .output()
        .expect("run scripts/install.sh");
    let said =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "install.sh failed:\n{said}");
    assert!(said.contains("is not on your PATH"), "{said}");
    // Found on PATH, by name.
    let path = format!("{}:/usr/bin:/bin", dest.display());
    let out = Command::new("sh")
        .args(["-c", "command -v checkflow && checkflow --version"])
        .env("PATH", &path)
        .output()
        .expect("run checkflow from PATH");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{said}");
    assert!(
        said.contains(&format!("{}/checkflow", dest.display())),
        "{said}"
    );
    assert!(said.contains("checkflow 0."), "{said}");
    // Installing again replaces the binary; the script then sees the folder on PATH.
    let out = Command::new("bash")
        .arg(root.join("scripts/install.sh"))
        .arg("--dir")
        .arg(&dest)
        .env("CHECKFLOW_BUILT", BIN)
        .env("PATH", &path)
        .output()
        .expect("run scripts/install.sh");
    let said = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "{said}");
    assert!(said.contains("is on your PATH"), "{said}");
}

#[test]
fn missing_id_says_how_to_make_one() {
    let sb = Sandbox::with_package(
        "name: x\ntasks:\n  - { name: A, type: process, command: \"true\" }\n",
    );
    let out = sb
        .cmd(["validate", "package.yaml"])
        .output()
        .exit(5)
        .says("missing field `id`")
        .says("checkflow new");
    let all = out.all();
    let at = all.find("add `id: ").expect("the id to add") + "add `id: ".len();
    let id = &all[at..at + 36];
    assert!(is_uuid(id), "not a UUID: {id:?}");
    // The id offered works as written.
    sb.write(
        "package.yaml",
        &format!(
            "id: {id}\nname: x\ntasks:\n  - {{ name: A, type: process, command: \"true\" }}\n"
        ),
    );
    sb.cmd(["validate", "package.yaml"]).output().exit(0);

    // An id that is not a UUID gets a new one offered the same way.
    sb.write(
        "package.yaml",
        "id: nightly\nname: x\ntasks:\n  - { name: A, type: process, command: \"true\" }\n",
    );
    let out = sb
        .cmd(["validate", "package.yaml"])
        .output()
        .exit(5)
        .says("package id \"nightly\" is not a UUID");
    let all = out.all();
    let at = all.find("e.g. `id: ").expect("an id offered") + "e.g. `id: ".len();
    assert!(is_uuid(&all[at..at + 36]), "{out:?}");
}

#[test]
fn rerun_of_a_misspelt_path_suggests_the_closest_one() {
    let sb = Sandbox::with_package(&package_yaml(
        "x",
        &checkpoint_at("x.ckpt"),
        r#"  - { name: Extract, type: process, command: "echo Extract >> ledger.txt" }
  - name: Load
    type: sequence
    tasks:
      - { name: Insert, type: process, command: "echo Insert >> ledger.txt" }
"#,
    ));
    for cmd in ["run", "plan"] {
        sb.cmd([cmd, "package.yaml", "--rerun", "Load/Insrt"])
            .output()
            .exit(6)
            .stderr_has("--rerun \"Load/Insrt\"")
            .stderr_has("did you mean \"Load/Insert\"?");
    }
    // Nothing close: no guess.
    sb.run()
        .args(["--rerun", "Zzzzzzzz"])
        .output()
        .exit(6)
        .stderr_has("no executable with that path");
    assert!(sb.ledger().is_empty(), "nothing may run");
}

#[test]
fn plan_shows_a_failure_path_as_running_only_if_its_predecessor_fails() {
    let sb = Sandbox::with_package(&package_yaml(
        "x",
        "",
        r#"  - { name: Publish, type: process, command: "true" }
  - { name: Alert, type: process, command: "true", after: [{ task: Publish, on: failure }] }
  - { name: Both, type: process, command: "true", after_logic: or,
      after: [{ task: Publish, on: failure }, { task: Alert, on: failure }] }
  - { name: Done, type: process, command: "true", after: [Publish] }
"#,
    ));
    let out = sb.cmd(["plan", "package.yaml"]).output().exit(0);
    let line = |name: &str| {
        out.stdout
            .lines()
            .find(|l| l.split_whitespace().nth(1) == Some(name))
            .unwrap_or_else(|| panic!("no line for {name}\n{out:?}"))
            .to_owned()
    };
    assert!(
        line("Alert").contains("runs if Publish fails"),
        "{}",
        line("Alert")
    );
    assert!(
        line("Both").contains("runs if Publish or Alert fails"),
        "{}",
        line("Both")
    );
    assert!(!line("Done").contains("runs if"), "{}", line("Done"));

    let doc = sb.plan();
    let alert = executable_of(&doc, "Alert");
    assert_eq!(alert["action"], "run");
    assert!(
        alert["reason"]
            .as_str()
            .is_some_and(|r| r.contains("runs if Publish fails")),
        "{alert:#}"
    );
}

#[test]
fn log_and_summary_give_each_task_the_same_duration() {
    // Parallel tasks finishing together, recorded in a checkpoint: the
    // dispatcher handles one result after another, so the time a result
    // waits is not the task's.
    let mut tasks = String::new();
    for i in 0..12 {
        tasks.push_str(&format!(
            "  - {{ name: T{i}, type: process, command: \"echo T{i} >> ledger.txt\" }}\n"
        ));
    }
    let sb = Sandbox::with_package(&format!(
        "id: {ID}\nname: d\nflow: parallel\ncheckpoint: {{ file: d.ckpt, usage: if_exists, save: true }}\ntasks:\n{tasks}"
    ));
    let out = sb
        .run()
        .args(["--log", "json", "--report", "report.json"])
        .output()
        .exit(0);
    let logged: BTreeMap<String, u64> = out
        .json_lines()
        .iter()
        .filter(|e| e["event"] == "finished")
        .map(|e| {
            (
                e["path"].as_str().unwrap_or_default().to_owned(),
                e["duration_ms"].as_u64().expect("duration_ms"),
            )
        })
        .collect();
    let report: Value = serde_json::from_str(&sb.read("report.json")).expect("report JSON");
    let summed: BTreeMap<String, u64> = report["executables"]
        .as_array()
        .expect("executables")
        .iter()
        .map(|e| {
            (
                e["path"].as_str().unwrap_or_default().to_owned(),
                e["duration_ms"].as_u64().expect("duration_ms"),
            )
        })
        .collect();
    assert_eq!(logged.len(), 12, "{out:?}");
    assert_eq!(logged, summed, "the log and the summary disagree");
}

fn is_uuid(s: &str) -> bool {
    let parts: Vec<&str> = s.split('-').collect();
    parts.len() == 5
        && parts
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(p, n)| p.len() == n && p.chars().all(|c| c.is_ascii_hexdigit()))
}

/// The README's annotated package warns about `CHECKFLOW_KEY` in `run` and
/// `plan`, as the README says it does and why; with a key it does not. Its
/// plan shows the failure path as the README prints it.
#[test]
fn readme_annotated_package_warns_about_the_key_as_the_readme_explains() {
    let readme = readme();
    let sb = Sandbox::with_package(yaml_block_after(&readme, "## A package, annotated"));
    let warning = "CHECKFLOW_KEY is not set: the values of sensitive variable(s)\nUser::ApiToken are left out of the checkpoint";
    assert!(
        readme.contains(&format!("`{warning}")),
        "the README explains the warning"
    );
    let warning = warning.replace('\n', " ");
    let out = sb
        .cmd(["plan", "package.yaml"])
        .env_remove("CHECKFLOW_KEY")
        .output()
        .exit(0)
        .says(&warning);
    for line in [
        "  run     Alert  (not recorded; runs if Publish fails)",
        "  run     Publish  (not recorded; runs if Load succeeds and `@[User::Batches] > 0` holds)",
    ] {
        assert!(out.stdout.contains(line), "no {line:?}\n{out:?}");
        assert!(readme.contains(line), "the README shows {line:?}");
    }
    sb.run()
        .env_remove("CHECKFLOW_KEY")
        .output()
        .exit(0)
        .says(&warning);
    let out = sb
        .run()
        .env("CHECKFLOW_KEY", "0123456789abcdef0123456789abcdef")
        .output()
        .exit(0);
    assert!(!out.all().contains("CHECKFLOW_KEY"), "{out:?}");
}
