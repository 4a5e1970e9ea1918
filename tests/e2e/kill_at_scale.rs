//! Issue 4, "prove it": a 50-task package (sequences, parallel containers,
//! parallel sequences, a loop with recorded iterations; at most 4 at once)
//! killed with SIGKILL at random moments at least 100 times, each run rerun
//! until the package succeeds (docs/semantics.md §5.3, §5.4, §5.6).
//!
//! Checked at every step: the checkpoint reads (`checkpoint show --json`
//! exits 0) before every rerun; nothing it records runs again; nothing it
//! recorded is ever lost; whatever a started task depends on was recorded
//! before it started; a task runs at most once per run, and runs again only
//! after a kill that hit it while it was running; in the end every task ran.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use crate::support::*;

/// One executable of the generated package.
enum Node {
    /// A process task: writes "<pid of checkflow> <name>" to the ledger when
    /// it starts, then sleeps this many milliseconds.
    Task(String, u32),
    /// A sequence container whose children run in order or all at once.
    Container {
        name: String,
        parallel: bool,
        children: Vec<Node>,
    },
    /// A foreach over items, iterations recorded; each writes its item.
    Loop { name: String, items: Vec<String> },
}

fn task(name: &str, ms: u32) -> Node {
    Node::Task(name.to_owned(), ms)
}

fn tasks(prefix: &str, n: usize, ms: impl Fn(usize) -> u32) -> Vec<Node> {
    (1..=n)
        .map(|i| task(&format!("{prefix}{i:02}"), ms(i)))
        .collect()
}

fn container(name: &str, parallel: bool, children: Vec<Node>) -> Node {
    Node::Container {
        name: name.to_owned(),
        parallel,
        children,
    }
}

/// 50 process tasks and a loop of 4.
fn package_tree() -> Vec<Node> {
    let mut top = tasks("T", 4, |i| 10 + 5 * (i as u32 % 3));
    top.push(container(
        "Fan",
        true,
        tasks("P", 10, |i| 10 + 7 * (i as u32 % 4)),
    ));
    top.push(task("M01", 10));
    top.push(container("Chain", false, tasks("S", 6, |_| 10)));
    top.push(container(
        "Fan2",
        true,
        tasks("Q", 10, |i| 5 + 9 * (i as u32 % 3)),
    ));
    top.push(task("M02", 10));
    top.push(container(
        "Mixed",
        true,
        vec![
            container("Left", false, tasks("A", 5, |_| 10)),
            container("Right", false, tasks("B", 5, |i| 5 + 5 * (i as u32 % 2))),
            task("X01", 30),
            task("X02", 15),
            task("X03", 20),
        ],
    ));
    top.push(task("M03", 10));
    top.push(Node::Loop {
        name: "Each".to_owned(),
        items: (1..=4).map(|i| format!("E{i}")).collect(),
    });
    top.extend(tasks("Z", 4, |_| 10));
    top
}

fn secs(ms: u32) -> String {
    format!("{}.{:03}", ms / 1000, ms % 1000)
}

fn yaml_of(nodes: &[Node], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for node in nodes {
        match node {
            Node::Task(name, ms) => {
                out.push_str(&format!(
                    "{pad}- {{ name: {name}, type: process, command: \"echo $PPID {name} >> ledger.txt; sleep {}\" }}\n",
                    secs(*ms)
                ));
            }
            Node::Container {
                name,
                parallel,
                children,
            } => {
                let flow = if *parallel { "parallel" } else { "sequence" };
                out.push_str(&format!(
                    "{pad}- name: {name}\n{pad}  type: sequence\n{pad}  flow: {flow}\n{pad}  tasks:\n"
                ));
                yaml_of(children, indent + 4, out);
            }
            Node::Loop { name, items } => {
                out.push_str(&format!(
                    "{pad}- name: {name}\n{pad}  type: foreach\n{pad}  items: [{}]\n{pad}  map: [User::Item]\n{pad}  checkpoint_iterations: true\n{pad}  tasks:\n",
                    items.join(", ")
                ));
                out.push_str(&format!(
                    "{pad}    - name: Work\n{pad}      type: process\n{pad}      command: \"echo placeholder\"\n{pad}      expressions:\n{pad}        command: '\"echo $PPID \" + @[User::Item] + \" >> ledger.txt; sleep 0.02\"'\n"
                ));
            }
        }
    }
}

/// What the test knows about each unit of work (a task, or a loop
/// iteration written `Loop[item]`), by the name it writes to the ledger.
struct Unit {
    /// Its path (`Loop[item]` for an iteration).
    path: String,
    /// Executables that must be recorded once it has started: whatever
    /// precedes it in a sequence, itself or any container around it.
    after: Vec<String>,
}

/// Walks the tree; `before` is what precedes the current container.
fn units_of(
    nodes: &[Node],
    parent: &str,
    parallel: bool,
    before: &[String],
) -> Vec<(String, Unit)> {
    let mut out = Vec::new();
    let mut prev: Vec<String> = before.to_vec();
    for node in nodes {
        let join = |name: &str| {
            if parent.is_empty() {
                name.to_owned()
            } else {
                format!("{parent}/{name}")
            }
        };
        let path = match node {
            Node::Task(name, _) => {
                let path = join(name);
                out.push((
                    name.clone(),
                    Unit {
                        path: path.clone(),
                        after: prev.clone(),
                    },
                ));
                path
            }
            Node::Container {
                name,
                parallel: p,
                children,
            } => {
                let path = join(name);
                out.extend(units_of(children, &path, *p, &prev));
                path
            }
            Node::Loop { name, items } => {
                let path = join(name);
                for item in items {
                    out.push((
                        item.clone(),
                        Unit {
                            path: format!("{path}[{item}]"),
                            after: prev.clone(),
                        },
                    ));
                }
                path
            }
        };
        if !parallel {
            // The next sibling starts only once this one is recorded.
            prev = before.to_vec();
            prev.push(path);
        }
    }
    out
}

/// Whether `unit` is recorded: itself, or a container (or loop) around it.
fn covered(recorded: &BTreeSet<String>, unit: &str) -> bool {
    let mut p = unit;
    loop {
        if recorded.contains(p) {
            return true;
        }
        match p.rfind(['/', '[']) {
            Some(i) => p = &p[..i],
            None => return false,
        }
    }
}

/// One run of the package: its process id, and whether we killed it.
struct Attempt {
    pid: String,
    killed: bool,
}

#[test]
fn fifty_tasks_killed_at_100_random_moments_lose_no_completion_and_rerun_nothing_recorded() {
    let tree = package_tree();
    let mut body = String::new();
    yaml_of(&tree, 2, &mut body);
    let yaml = format!(
        "id: {ID}\nname: kill_at_scale\nmax_concurrent: 4\ncheckpoint: {{ file: k.ckpt, usage: if_exists, save: true }}\nvariables:\n  Item: {{ type: string, value: \"\" }}\ntasks:\n{body}"
    );
    let units: BTreeMap<String, Unit> = units_of(&tree, "", false, &[]).into_iter().collect();
    let tasks = units.values().filter(|u| !u.path.contains('[')).count();
    assert_eq!((tasks, units.len()), (50, 54));

    let seed = seed_or(0x51_7E_D0_0D);
    let mut rng = Rng::new(seed);
    let started = Instant::now();
    let budget = started + Duration::from_secs(150);
    let (mut kills, mut rounds, mut runs, mut resumed, mut repeats) = (0, 0, 0, 0, 0);
    let mut finished_by_kill = 0;

    while kills < 100 && Instant::now() < budget {
        rounds += 1;
        let sb = Sandbox::with_package(&yaml);
        let mut attempts: Vec<Attempt> = Vec::new();
        // Per unit: the attempts (indices) that ran it.
        let mut ran: BTreeMap<String, Vec<usize>> = BTreeMap::new();
        let mut recorded_before = BTreeSet::new();
        let mut started_last: Vec<String> = Vec::new();
        let mut lines_seen = 0;
        loop {
            let a = attempts.len();
            let ctx = format!("seed {seed:#x}, round {rounds}, attempt {a}");
            // The checkpoint must read before every rerun.
            let recorded = if sb.exists("k.ckpt") {
                let out = sb.cmd(["checkpoint", "show", "k.ckpt", "--json"]).output();
                assert_eq!(out.code, Some(0), "unreadable checkpoint ({ctx})\n{out:?}");
                recorded_units(&out.json())
            } else {
                BTreeSet::new()
            };
            // Success deletes the checkpoint; a kill can land after that and
            // before the process exits. Then everything ran, and the round is over.
            if recorded.is_empty() && !recorded_before.is_empty() && !sb.exists("k.ckpt") {
                assert!(
                    units.keys().all(|u| ran.contains_key(u)),
                    "the checkpoint is gone, but not every task ran ({ctx})"
                );
                finished_by_kill += 1;
                break;
            }
            // Completions are never lost, and whatever the last run started
            // had what precedes it recorded first.
            if let Some(lost) = recorded_before.difference(&recorded).next() {
                panic!("{lost} was recorded, and is not any more ({ctx})");
            }
            for name in &started_last {
                for dep in &units[name].after {
                    assert!(
                        covered(&recorded, dep),
                        "{name} started, so {dep} must be recorded ({ctx}); recorded: {recorded:?}"
                    );
                }
            }
            resumed += usize::from(!recorded.is_empty());

            let mut run = sb.run().spawn();
            runs += 1;
            let pid = run.pid().to_string();
            // Kill once a random number of units has started, plus a random
            // few milliseconds; after 8 kills a round runs to the end.
            let kill_after = (attempts.len() < 8).then(|| (rng.below(12), rng.below(40)));
            let status = run.wait_or_kill(Duration::from_millis(2), || match kill_after {
                Some((n, ms)) if sb.ledger().len() - lines_seen >= n as usize => {
                    std::thread::sleep(Duration::from_millis(ms));
                    true
                }
                _ => false,
            });
            // A task started just before the kill may write its line a
            // moment later; its line names the run that started it anyway.
            let killed = status.is_none_or(|s| s.code().is_none());
            if killed {
                kills += 1;
                std::thread::sleep(Duration::from_millis(30));
            }
            attempts.push(Attempt { pid, killed });

            let ledger = sb.ledger();
            started_last.clear();
            // Lines whose pid names their run first; then the lines of shells
            // whose parent was already dead when they started, and which
            // were started by some killed run. Such a shell can be slow to
            // write (a loaded machine), so its line may come after the lines
            // of a later run: it goes to the latest killed run that has not
            // run that unit already.
            let mut batch: Vec<(&str, &str)> = ledger[lines_seen..]
                .iter()
                .map(|line| line.split_once(' ').expect("'<pid> <name>' lines"))
                .collect();
            batch.sort_by_key(|(ppid, _)| !attempts.iter().any(|x| x.pid == *ppid));
            for (ppid, name) in batch {
                let line = format!("{ppid} {name}");
                assert!(units.contains_key(name), "unknown ledger line {line:?}");
                let by = attempts
                    .iter()
                    .position(|x| x.pid == ppid)
                    .unwrap_or_else(|| {
                        let had = ran.get(name);
                        (0..attempts.len())
                            .rev()
                            .find(|&i| attempts[i].killed && !had.is_some_and(|r| r.contains(&i)))
                            .unwrap_or_else(|| {
                                panic!("{line:?}: no run has that pid, and no killed run is left to have started it ({ctx})")
                            })
                    });
                if by == a {
                    let path = &units[name].path;
                    assert!(
                        !covered(&recorded, path),
                        "{path} ran although recorded as complete ({ctx}); recorded: {recorded:?}"
                    );
                    started_last.push(name.to_owned());
                }
                let runs_of = ran.entry(name.to_owned()).or_default();
                assert!(
                    !runs_of.contains(&by),
                    "{name} ran twice in one run ({ctx})"
                );
                runs_of.push(by);
            }
            lines_seen = ledger.len();
            recorded_before = recorded;

            match status {
                Some(s) if s.success() => break,
                Some(s) if s.code().is_some() => {
                    let out = run.finish();
                    panic!("run failed ({ctx})\n{out:?}");
                }
                _ => {}
            }
        }

        let all: BTreeSet<&String> = units.keys().collect();
        assert_eq!(
            ran.keys().collect::<BTreeSet<_>>(),
            all,
            "every task must have run (round {rounds})"
        );
        for (name, by) in &ran {
            // Each run after the first needs a kill that hit the one before.
            for w in by.windows(2) {
                assert!(
                    attempts[w[0]].killed,
                    "{name} ran in run {} and again in run {} of round {rounds}, but run {} was not killed",
                    w[0], w[1], w[0]
                );
            }
            repeats += by.len() - 1;
        }
        assert!(!sb.exists("k.ckpt"), "success deletes the checkpoint");
    }
    eprintln!(
        "{kills} kills in {rounds} rounds, {runs} runs, {resumed} resumed, {repeats} repeated units, {finished_by_kill} kills after success, {:.1?} (seed {seed:#x})",
        started.elapsed()
    );
    assert!(
        kills >= 100,
        "only {kills} kills landed in {rounds} rounds within the time budget"
    );
}
