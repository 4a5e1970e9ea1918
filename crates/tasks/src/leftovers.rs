//! Processes a task left running when its run was killed: the tag every
//! process a task starts carries, and the ending of a task's leftovers
//! before the task runs again.
//!
//! A task's process tree is tagged through the environment
//! ([`checkflow_plan::ProcessScope`]): every descendant inherits the tag,
//! whatever process group or session it moves to, so no write to disk is
//! needed per process. Before a `process` or `package` task starts, the run
//! looks for live processes carrying the task's tag from another run (on
//! Linux, by reading `/proc/*/environ`, once per run, on the first such task)
//! and ends them: SIGTERM to each and to the process groups they lead, a
//! grace of [`GRACE`], then SIGKILL, and it waits until none is left. A task
//! whose leftovers cannot be ended fails instead of running beside them.
//!
//! Limits: a process that clears its environment (`env -i`), or runs as
//! another user whose `/proc/PID/environ` we cannot read, is not found; on
//! systems without `/proc` (macOS, the BSDs, Windows) nothing is found, and
//! only the process group kill of a cancelled task and the parent-death
//! signal (Linux) stand between a killed run and its processes.

use checkflow_plan::{LogLevel, ProcessScope, RunCx, TAG_ENV, TaskError};
use std::collections::{BTreeSet, HashMap};
use std::process::Command;
use std::time::{Duration, Instant};

/// How long leftovers get to end on SIGTERM before they are killed.
pub(crate) const GRACE: Duration = Duration::from_secs(5);
/// How long killed leftovers get to disappear before the task fails.
const KILL_WAIT: Duration = Duration::from_secs(10);
/// How often the ending checks what is still alive.
const TICK: Duration = Duration::from_millis(25);

/// Tags `cmd` as a process of the task running in `cx` (when the run holds a
/// checkpoint's lock; otherwise an inherited tag passes through unchanged).
pub(crate) fn tag(cmd: &mut Command, cx: &dyn RunCx) {
    let Some((scope, path)) = cx.processes() else {
        return;
    };
    let entry = scope.entry(path);
    // Keep the tags of the runs above this one (checkflow started by a task
    // of another checkflow), so each of them still finds this process.
    let value = match std::env::var(TAG_ENV) {
        Ok(inherited) if !inherited.trim().is_empty() => format!("{} {entry}", inherited.trim()),
        _ => entry,
    };
    cmd.env(TAG_ENV, value);
}

/// Makes the child get `signal` when the thread that started it dies (Linux;
/// elsewhere nothing). Tasks ask for SIGTERM: the first line of defence when
/// checkflow is killed, so the child stops as on Ctrl-C instead of running
/// on alone. It reaches only the child itself, not the processes it starts:
/// those are found by their tag on the next run. (The thread that starts a
/// child waits for it, so it lives as long as the child does.) A worker asks
/// for SIGKILL for its runs, which die with it as with their machine.
#[cfg(target_os = "linux")]
pub fn die_with_parent(cmd: &mut Command, signal: libc::c_int) {
    use std::os::unix::process::CommandExt;
    // SAFETY: getpid(2) has no preconditions.
    let parent = unsafe { libc::getpid() };
    // SAFETY: prctl(2), getppid(2) and _exit(2) are async-signal-safe and
    // touch no memory of the parent; the closure runs in the forked child
    // before exec.
    unsafe {
        cmd.pre_exec(move || {
            if libc::prctl(libc::PR_SET_PDEATHSIG, signal) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            // The parent died between the fork and the prctl: the signal
            // will never come, so stop here as it would have.
            if libc::getppid() != parent {
                libc::_exit(128 + signal);
            }
            Ok(())
        });
    }
}

#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(_cmd: &mut Command, _signal: i32) {}

/// Ends the processes an earlier, killed run of the task in `cx` left
/// running, and says so in the run log; returns once none is alive. Fails
/// (and the task must not start) if some cannot be ended.
pub(crate) fn end_before_run(cx: &dyn RunCx) -> Result<(), TaskError> {
    let Some((scope, path)) = cx.processes() else {
        return Ok(());
    };
    let tag = scope.tag(path);
    let found = {
        let mut found = scope.found().lock().unwrap_or_else(|e| e.into_inner());
        found
            .get_or_insert_with(|| search(scope, None))
            .remove(&tag)
    };
    if found.is_none() {
        return Ok(());
    }
    let ended = end(scope, &tag).map_err(|alive| {
        TaskError::new(format!(
            "end the processes task \"{path}\" left running in an earlier run that was killed: pids {} are still alive {}s after SIGKILL, and the task does not run beside them",
            list(&alive),
            KILL_WAIT.as_secs()
        ))
    })?;
    if ended.is_empty() {
        // They ended on their own since the search.
        return Ok(());
    }
    cx.log(
        LogLevel::Warn,
        &format!(
            "warning: ended {} process(es) that task \"{path}\" left running in an earlier run that was killed (pids {}) before running it again",
            ended.len(),
            list(&ended)
        ),
    );
    Ok(())
}

fn list(pids: &BTreeSet<u32>) -> String {
    pids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// Ends every process with `tag` from another run, and any they start
/// meanwhile. Returns all it ended, or the ones still alive when it gave up.
///
/// It looks again before signalling anything: the search that found the tag
/// may be long past, and a pid found then may name another process now.
fn end(scope: &ProcessScope, tag: &str) -> Result<BTreeSet<u32>, BTreeSet<u32>> {
    let tagged = || -> BTreeSet<u32> {
        search(scope, Some(tag))
            .remove(tag)
            .unwrap_or_default()
            .into_iter()
            .collect()
    };
    let mut alive = tagged();
    let mut ended = alive.clone();
    let mut termed = BTreeSet::new();
    let term_until = Instant::now() + GRACE;
    let mut kill_until = None;
    while !alive.is_empty() {
        let now = Instant::now();
        if kill_until.is_none() && now >= term_until {
            kill_until = Some(now + KILL_WAIT);
        }
        if kill_until.is_some() {
            // Past the grace: kill whatever is left, again each round, since
            // a process may have started another before it died.
            signal(&alive, Signal::Kill);
        } else {
            let new: BTreeSet<u32> = alive.difference(&termed).copied().collect();
            signal(&new, Signal::Term);
            termed.extend(new);
        }
        let _ = checkflow_plan::failpoint("process-after-leftover-signal");
        std::thread::sleep(TICK);
        alive = tagged();
        ended.extend(alive.iter().copied());
        if !alive.is_empty() && kill_until.is_some_and(|t| Instant::now() >= t) {
            return Err(alive);
        }
    }
    Ok(ended)
}

#[derive(Clone, Copy)]
enum Signal {
    Term,
    Kill,
}

/// Sends `sig` to each process, and to its process group when the group
/// belongs to the task's tree: its leader is one of `pids`, or is gone (a
/// group outlives its leader, and its number is not reused meanwhile). Our
/// own group is never signalled.
#[cfg(unix)]
fn signal(pids: &BTreeSet<u32>, sig: Signal) {
    let sig = match sig {
        Signal::Term => libc::SIGTERM,
        Signal::Kill => libc::SIGKILL,
    };
    // SAFETY: getpgrp(2), getpgid(2) and kill(2) have no memory-safety
    // preconditions.
    unsafe {
        let ours = libc::getpgrp();
        for &pid in pids {
            let Ok(pid) = i32::try_from(pid) else {
                continue;
            };
            let group = libc::getpgid(pid);
            libc::kill(pid, sig);
            let leader_gone = || {
                libc::kill(group, 0) == -1
                    && std::io::Error::last_os_error().raw_os_error() == Some(libc::ESRCH)
            };
            if group > 1
                && group != ours
                && (u32::try_from(group).is_ok_and(|g| pids.contains(&g)) || leader_gone())
            {
                libc::kill(-group, sig);
            }
        }
    }
}

#[cfg(not(unix))]
fn signal(_pids: &BTreeSet<u32>, _sig: Signal) {}

/// Live processes carrying a tag of `scope`'s checkpoint from another run
/// (only `only`, if given), by tag. Zombies have no environment left and are
/// not found; neither are this process and its ancestors.
#[cfg(target_os = "linux")]
fn search(scope: &ProcessScope, only: Option<&str>) -> HashMap<String, Vec<u32>> {
    let mut found: HashMap<String, Vec<u32>> = HashMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return found;
    };
    let skip = ancestors();
    let needle = format!("{TAG_ENV}=");
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if skip.contains(&pid) {
            continue;
        }
        // Gone meanwhile, or another user's: either way not ours to end.
        let Ok(env) = std::fs::read(format!("/proc/{pid}/environ")) else {
            continue;
        };
        let Some(value) = env
            .split(|b| *b == 0)
            .find_map(|var| var.strip_prefix(needle.as_bytes()))
        else {
            continue;
        };
        let Ok(value) = std::str::from_utf8(value) else {
            continue;
        };
        let mut tags: Vec<&str> = value
            .split_ascii_whitespace()
            .filter_map(|e| scope.leftover_tag(e))
            .filter(|t| only.is_none_or(|o| o == *t))
            .collect();
        tags.dedup();
        for t in tags {
            found.entry(t.to_string()).or_default().push(pid);
        }
    }
    found
}

#[cfg(not(target_os = "linux"))]
fn search(_scope: &ProcessScope, _only: Option<&str>) -> HashMap<String, Vec<u32>> {
    HashMap::new()
}

/// This process and its ancestors: never taken for leftovers, even if they
/// carry an old tag (checkflow started by a task of a run that was killed).
#[cfg(target_os = "linux")]
fn ancestors() -> BTreeSet<u32> {
    let mut out = BTreeSet::new();
    let mut pid = std::process::id();
    while pid > 1 && out.insert(pid) {
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            break;
        };
        // "PID (COMM) STATE PPID ...": COMM may hold spaces and parentheses.
        let Some(ppid) = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_ascii_whitespace().nth(1))
            .and_then(|p| p.parse().ok())
        else {
            break;
        };
        pid = ppid;
    }
    out
}
