//! What the bench has running (nodes, namespaces, data directories), kept up to date so that a
//! signal handler can remove it all: a drop does not run when a signal ends the process.

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;

use chitty_lab as lab;

/// What runs now, for [`clean_up`] on a signal: a drop does not run when the process is
/// killed by one.
pub struct Live {
    /// The processes: nodes, and the echo server of the floor.
    pub pids: Vec<u32>,
    /// The lab's namespaces.
    pub namespaces: Vec<String>,
    /// The nodes' data directories.
    pub dirs: Vec<PathBuf>,
}

static LIVE: Mutex<Live> = Mutex::new(Live {
    pids: Vec::new(),
    namespaces: Vec::new(),
    dirs: Vec::new(),
});

/// Updates the list of what runs (if its lock is not poisoned).
pub fn live(f: impl FnOnce(&mut Live)) {
    if let Ok(mut l) = LIVE.lock() {
        f(&mut l);
    }
}

/// Kills every node the bench started and removes its namespaces and data: for a signal
/// handler (Ctrl-C) that exits right after.
pub fn clean_up() {
    let Ok(mut l) = LIVE.lock() else { return };
    for pid in l.pids.drain(..) {
        let _ = Command::new("kill").args(["-9", &pid.to_string()]).status();
    }
    lab::remove(&std::mem::take(&mut l.namespaces));
    // Also those of a lab still being built.
    lab::remove_all_of_this_process();
    for d in l.dirs.drain(..) {
        let _ = std::fs::remove_dir_all(d);
    }
}
