//! What happens to our git processes when the server process dies.
//!
//! git is started with `posix_spawn`, so it can't be given `PR_SET_PDEATHSIG` (that needs
//! code between fork and exec). Most git exits by itself when we die: its stdin reaches EOF
//! or its next write to us fails (upload-pack, cat-file, a receive-pack still reading the
//! pack). What survives is git that doesn't talk to us for a while — a receive-pack waiting
//! for a slow pre-receive hook, a long computation — and it can hold locks and quarantine
//! directories meanwhile.
//!
//! So every git we start carries [`OWNER_ENV`]`=<pid>.<start time>`, naming the server
//! process that started it (pid plus its start time in clock ticks since boot: unique per
//! boot even when pids are reused). The environment is inherited by git's own children
//! (hooks, pack-objects) and is readable in `/proc/<pid>/environ` by the same user.
//! [`kill_orphans`] finds processes whose owner is no longer running and kills their process
//! groups (each git we start leads its own group): SIGTERM first, so git removes its
//! temporary files and quarantine on the way out, then SIGKILL.

use std::path::Path;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The environment variable naming the server process that started a git.
pub const OWNER_ENV: &str = "GITRPC_OWNER";

/// A process, identified across pid reuse: its pid and its start time (clock ticks after
/// boot, `/proc/<pid>/stat` field 22).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Owner {
    pub pid: i32,
    pub start: u64,
}

/// What `/proc/<pid>/stat` says about a process (read with the `procfs` crate).
struct Stat {
    zombie: bool,
    pgrp: i32,
    start: u64,
}

fn stat(pid: i32) -> Option<Stat> {
    let s = procfs::process::Process::new(pid).ok()?.stat().ok()?;
    Some(Stat {
        zombie: matches!(s.state, 'Z' | 'X' | 'x'),
        pgrp: s.pgrp,
        start: s.starttime,
    })
}

/// The pids of every process (`/proc/<pid>`).
fn all_pids() -> Vec<i32> {
    procfs::process::all_processes()
        .map(|all| all.flatten().map(|p| p.pid()).collect())
        .unwrap_or_default()
}

impl Owner {
    /// This process. Looked up again after a fork (the child is another owner).
    pub fn current() -> Owner {
        static CACHE: Mutex<Option<Owner>> = Mutex::new(None);
        let pid = std::process::id() as i32;
        let mut cache = CACHE.lock().unwrap_or_else(|p| p.into_inner());
        match *cache {
            Some(o) if o.pid == pid => o,
            _ => {
                let o = Owner::of(pid).unwrap_or(Owner { pid, start: 0 });
                *cache = Some(o);
                o
            }
        }
    }

    /// The running (not zombie) process `pid`, if there is one.
    pub fn of(pid: i32) -> Option<Owner> {
        let s = stat(pid)?;
        (!s.zombie).then_some(Owner {
            pid,
            start: s.start,
        })
    }

    /// Is this process still running (and not a new process that got the same pid)?
    pub fn is_alive(&self) -> bool {
        Owner::of(self.pid) == Some(*self)
    }

    /// `<pid>.<start>`: the value of [`OWNER_ENV`], also used in names of our directories.
    pub fn tag(&self) -> String {
        format!("{}.{}", self.pid, self.start)
    }

    pub fn parse(tag: &str) -> Option<Owner> {
        let (pid, start) = tag.split_once('.')?;
        let pid: i32 = pid.parse().ok()?;
        (pid > 0).then_some(Owner {
            pid,
            start: start.parse().ok()?,
        })
    }
}

/// The owner named in a process's environment, if any.
fn owner_of_process(pid: i32) -> Option<Owner> {
    let env = procfs::process::Process::new(pid).ok()?.environ().ok()?;
    Owner::parse(env.get(std::ffi::OsStr::new(OWNER_ENV))?.to_str()?)
}

fn is_git(pid: i32) -> bool {
    procfs::process::Process::new(pid)
        .and_then(|p| p.exe())
        .ok()
        .and_then(|p| Some(p.file_name()?.to_string_lossy().starts_with("git")))
        .unwrap_or(false)
}

/// A process group left by a server process that died.
#[derive(Clone, Debug)]
pub struct Orphan {
    pub pgid: i32,
    /// The server process that started it.
    pub owner: Owner,
    /// Command lines of the group's tagged processes (for the log).
    pub commands: Vec<String>,
}

/// Process groups of git started by a server process that is no longer running. A group
/// counts when one of its processes is tagged with a dead owner and its leader is either
/// gone (the group outlived the git that made it) or itself a git tagged with a dead owner;
/// a group led by anything else (say, a daemon a hook started with `setsid`) is left alone.
pub fn find_orphans() -> Vec<Orphan> {
    let me = Owner::current();
    // SAFETY: getpgrp(2) can't fail.
    let my_group = unsafe { libc::getpgrp() };
    let mut out: Vec<Orphan> = Vec::new();
    for pid in all_pids() {
        let Some(owner) = owner_of_process(pid) else {
            continue;
        };
        if owner == me || owner.is_alive() {
            continue;
        }
        let Some(st) = stat(pid) else { continue };
        if st.zombie || st.pgrp <= 1 || st.pgrp == my_group {
            continue;
        }
        if let Some(o) = out.iter_mut().find(|o| o.pgid == st.pgrp) {
            o.commands.push(cmdline(pid));
            continue;
        }
        let leader_ok = match Owner::of(st.pgrp) {
            None => true,
            Some(_) => {
                is_git(st.pgrp)
                    && owner_of_process(st.pgrp).is_some_and(|o| o != me && !o.is_alive())
            }
        };
        if leader_ok {
            out.push(Orphan {
                pgid: st.pgrp,
                owner,
                commands: vec![cmdline(pid)],
            });
        }
    }
    out
}

fn cmdline(pid: i32) -> String {
    procfs::process::Process::new(pid)
        .and_then(|p| p.cmdline())
        .map(|args| args.join(" "))
        .unwrap_or_default()
}

fn group_alive(pgid: i32) -> bool {
    // SAFETY: signal 0 only checks that the group exists.
    unsafe { libc::kill(-pgid, 0) == 0 }
}

/// Kill the groups [`find_orphans`] finds: SIGTERM, up to `grace` for them to exit, then
/// SIGKILL. Blocks (call it off the async runtime). Returns what was killed.
pub fn kill_orphans(grace: Duration) -> Vec<Orphan> {
    let orphans = find_orphans();
    if orphans.is_empty() {
        return orphans;
    }
    for o in &orphans {
        crate::process::kill_group(o.pgid, libc::SIGTERM);
    }
    let deadline = Instant::now() + grace;
    while Instant::now() < deadline && orphans.iter().any(|o| group_has_live(o.pgid)) {
        std::thread::sleep(Duration::from_millis(20));
    }
    for o in &orphans {
        if group_alive(o.pgid) {
            crate::process::kill_group(o.pgid, libc::SIGKILL);
        }
    }
    orphans
}

/// Does the group still have a process that isn't a zombie? (Orphans are reaped by init or a
/// subreaper, not by us, so their zombies may linger for a moment.)
fn group_has_live(pgid: i32) -> bool {
    if !group_alive(pgid) {
        return false;
    }
    all_pids()
        .into_iter()
        .filter_map(stat)
        .any(|s| s.pgrp == pgid && !s.zombie)
}

/// The owner encoded in a name we made with [`owned_name`]: `<prefix>-<pid>.<start>-<rest>`.
pub fn owner_in_name(name: &str) -> Option<Owner> {
    let mut parts = name.rsplitn(3, '-');
    let _rest = parts.next()?;
    let tag = parts.next()?;
    parts.next()?;
    Owner::parse(tag)
}

/// A name for a file or directory this process owns: `<prefix>-<pid>.<start>-<suffix>`, so a
/// later sweep can tell whether its owner still runs ([`owner_in_name`]).
pub fn owned_name(prefix: &str, suffix: &str) -> String {
    format!("{prefix}-{}-{suffix}", Owner::current().tag())
}

/// Is `path` (a name made by [`owned_name`]) owned by a process that is still running?
/// `None` when the name carries no owner.
pub fn owner_running(path: &Path) -> Option<bool> {
    let name = path.file_name()?.to_str()?;
    owner_in_name(name).map(|o| o.is_alive())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owners() {
        let me = Owner::current();
        assert_eq!(me.pid, std::process::id() as i32);
        assert!(me.start > 0);
        assert!(me.is_alive());
        assert_eq!(Owner::parse(&me.tag()), Some(me));
        let reused = Owner {
            pid: me.pid,
            start: me.start + 1,
        };
        assert!(!reused.is_alive(), "same pid, another start: not us");
        assert_eq!(Owner::parse("x.1"), None);
        assert_eq!(Owner::parse("-3.1"), None);
        let name = owned_name("create", "00ff");
        assert_eq!(owner_in_name(&name), Some(me));
        assert_eq!(owner_running(Path::new(&name)), Some(true));
        assert_eq!(owner_in_name("create-00ff"), None);
        assert_eq!(owner_in_name("hooks-1a2b3c"), None);
    }
}
