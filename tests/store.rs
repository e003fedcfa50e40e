//! History on disk, through the real binary on loopback: a node killed mid-burst comes back
//! with its history and heals the rest by sync; a hub keeps a room across a restart with every
//! client gone; `/search` and `--export`; `--no-store`; and the bad cases (a damaged database,
//! one in use) each with its clear message, losing nothing.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Dir, Node, TIMEOUT};
use serde_json::Value;

const LOOPBACK: [&str; 3] = ["--no-mdns", "--listen", "/ip4/127.0.0.1/tcp/0"];

fn node(name: &str, dir: &Dir, extra: &[&str]) -> Node {
    let mut args: Vec<&str> = LOOPBACK.to_vec();
    args.extend(["--data-dir", dir.s()]);
    args.extend(extra);
    Node::spawn(name, &args)
}

/// Runs alice under `--data-dir dir` with nothing on stdin, to her end.
fn run_alice(dir: &Path) -> std::process::Output {
    Command::new(common::bin())
        .args(["--json", "--username", "alice", "--data-dir"])
        .arg(dir)
        .args(LOOPBACK)
        .stdin(std::process::Stdio::null())
        .output()
        .expect("chitty-node runs")
}

/// What two screens' `/history` must agree on.
fn essence(h: &[Value]) -> Vec<(u64, String, String, String)> {
    h.iter()
        .map(|v| {
            (
                v["lamport"].as_u64().unwrap_or(0),
                v["peer"].as_str().unwrap_or_default().to_owned(),
                v["event"].as_str().unwrap_or_default().to_owned(),
                v["text"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

/// Asks both for `/history` until they agree (sync rounds run every few seconds).
fn wait_same_history(a: &mut Node, b: &mut Node) -> Vec<Value> {
    let until = std::time::Instant::now() + TIMEOUT;
    loop {
        let (ha, hb) = (a.history(), b.history());
        if essence(&ha) == essence(&hb) {
            return ha;
        }
        assert!(
            std::time::Instant::now() < until,
            "histories differ:\n{}: {:?}\n{}: {:?}",
            a.name,
            essence(&ha),
            b.name,
            essence(&hb)
        );
        // Something to wait for rather than a sleep: a round of sync shows up as caught-up
        // lines, or nothing within a second.
        b.watch(std::time::Duration::from_secs(1));
    }
}

/// bob is killed (SIGKILL) in the middle of a burst of his own lines; restarted under his name,
/// he first shows the end of what he had stored, marked as stored, then catches up with what
/// he missed, and his `/history` ends equal to alice's.
#[test]
fn a_node_killed_mid_burst_comes_back_with_its_history_and_heals_by_sync() {
    let (da, db) = (Dir::new("kill-a"), Dir::new("kill-b"));
    let mut a = node("alice", &da, &[]);
    let addr = a.loopback_addr();
    let mut b = node("bob", &db, &["--connect", &addr]);
    b.wait_join("bob");
    a.wait_join("bob");
    for i in 0..10 {
        a.send(&format!("before {i}"));
    }
    b.wait_message("alice", "before 9");
    // Stored by now: a search is answered after the writes queued before it.
    b.send("/search before");
    let end = b.wait_for("bob's search", |v| v["type"] == "search_end");
    assert_eq!(end["count"], 10, "{end}");
    for i in 0..60 {
        b.send(&format!("burst {i}"));
    }
    a.wait_message("bob", "burst 3");
    b.signal("KILL");
    b.wait_exit();
    a.send("while bob was away");
    let mut b = node("bob", &db, &["--connect", &addr]);
    let stored = b.wait_for("alice's line read back from the store", |v| {
        v["text"] == "before 9" && v["stored"] == true
    });
    assert_eq!(stored["type"], "message");
    // Live (alice's queue for want of a peer) or by sync, whichever comes first.
    b.wait_for("the line said while bob was away", |v| {
        v["text"] == "while bob was away"
    });
    let h = wait_same_history(&mut a, &mut b);
    let texts: Vec<&str> = h.iter().filter_map(|v| v["text"].as_str()).collect();
    assert!(texts.contains(&"before 0"), "{texts:?}");
    assert!(texts.contains(&"burst 3"), "{texts:?}");
    // Each line once.
    let mut dedup = texts.clone();
    dedup.sort_unstable();
    dedup.dedup();
    assert_eq!(dedup.len(), texts.len(), "{texts:?}");
}

/// A hub keeps a room across a restart with every client gone, and serves it to a newcomer.
#[test]
fn a_hub_restarted_with_nobody_online_serves_the_stored_room() {
    let (dh, da, dc) = (Dir::new("hub-h"), Dir::new("hub-a"), Dir::new("hub-c"));
    let hub = |dh: &Dir| {
        let mut cmd = Command::new(common::bin());
        cmd.args(["--json", "--relay", "--listen", "/ip4/127.0.0.1/tcp/0"])
            .args(["--data-dir", dh.s()]);
        Node::start("hub", cmd)
    };
    let mut h = hub(&dh);
    let addr = h.loopback_addr();
    let mut a = node("alice", &da, &["--connect", &addr]);
    h.wait_for("the hub sees alice join", |v| {
        v["type"] == "join" && v["user"] == "alice"
    });
    a.send("for whoever comes later");
    h.wait_for("the hub takes alice's line", |v| {
        v["text"] == "for whoever comes later"
    });
    a.send("/quit");
    a.wait_exit();
    h.signal("TERM");
    h.wait_exit();
    drop(h);
    let mut h = hub(&dh);
    let addr = h.loopback_addr();
    let mut c = node("carol", &dc, &["--connect", &addr]);
    c.wait_for("carol catches up from the restarted hub", |v| {
        v["text"] == "for whoever comes later" && v["sync"] == true
    });
}

/// `/search` finds stored messages with every word, newest first; `--export` prints the stored
/// transcript in order and exits.
#[test]
fn search_and_export_give_the_stored_lines() {
    let da = Dir::new("search");
    let mut a = node("alice", &da, &[]);
    a.wait_join("alice");
    for line in ["the quick brown fox", "a lazy dog", "Quick thinking"] {
        a.send(line);
        a.wait_message("alice", line);
    }
    a.send("/search quick");
    let end = a.wait_for("the search's end", |v| v["type"] == "search_end");
    assert_eq!(end["count"], 2, "{end}");
    let found: Vec<String> = a
        .seen()
        .iter()
        .filter(|v| v["type"] == "search")
        .map(|v| v["text"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(found, vec!["Quick thinking", "the quick brown fox"]);
    a.send("/search zebra");
    let end = a.wait_for("an empty search", |v| {
        v["type"] == "search_end" && v["query"] == "zebra"
    });
    assert_eq!(end["count"], 0);
    a.send("/search");
    a.wait_for("a search without words is refused", |v| {
        v["type"] == "error" && v["message"].as_str().is_some_and(|m| m.contains("/search"))
    });
    a.send("/quit");
    assert!(a.wait_exit().success());

    let out = Command::new(common::bin())
        .args(["--username", "alice", "--export", "--data-dir", da.s()])
        .output()
        .expect("--export runs");
    assert!(out.status.success(), "{out:?}");
    let lines: Vec<Value> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect();
    let kinds: Vec<&str> = lines.iter().filter_map(|v| v["type"].as_str()).collect();
    assert_eq!(kinds, ["join", "message", "message", "message", "leave"]);
    assert!(lines.iter().all(|v| v["stored"] == true));
    let stamps: Vec<u64> = lines.iter().filter_map(|v| v["lamport"].as_u64()).collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "{stamps:?}");

    // A room with nothing stored: said so, with the rooms there are, exit 1.
    let out = Command::new(common::bin())
        .args(["--username", "alice", "--export", "--room", "elsewhere"])
        .args(["--data-dir", da.s()])
        .output()
        .expect("--export runs");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("rooms stored: chitty-chat"), "{err}");
    // Nothing stored under another name: said so, exit 1.
    let out = Command::new(common::bin())
        .args(["--username", "nobody", "--export", "--data-dir", da.s()])
        .output()
        .expect("--export runs");
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("no history database"));
    // With --no-store: a usage error.
    let out = Command::new(common::bin())
        .args(["--username", "alice", "--export", "--no-store"])
        .output()
        .expect("chitty-node runs");
    assert_eq!(out.status.code(), Some(2), "{out:?}");
}

/// `--no-store` keeps nothing: no database is made, and a restart shows nothing stored.
#[test]
fn no_store_keeps_nothing_on_disk() {
    let da = Dir::new("no-store");
    let mut a = node("alice", &da, &["--no-store"]);
    a.wait_join("alice");
    a.send("gone with the process");
    a.wait_message("alice", "gone with the process");
    a.send("/quit");
    a.wait_exit();
    assert!(!da.0.join("history").exists(), "no database directory");
    let mut a = node("alice", &da, &["--no-store"]);
    a.wait_join("alice");
    a.send("/search gone");
    a.wait_for("no store to search", |v| {
        v["type"] == "error"
            && v["message"]
                .as_str()
                .is_some_and(|m| m.contains("no history is stored"))
    });
    assert!(!a.seen().iter().any(|v| v["stored"] == true));
}

/// A damaged database: exit 1 with what to do, and the file left as it was.
#[test]
fn a_damaged_database_stops_the_node_with_what_to_do() {
    let da = Dir::new("damaged");
    let db = da.0.join("history").join("alice.db");
    std::fs::create_dir_all(db.parent().expect("a parent")).expect("mkdir");
    let junk = vec![0x42u8; 4096];
    std::fs::write(&db, &junk).expect("write");
    let out = run_alice(da.0.as_path());
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("damaged") && err.contains("move it away"),
        "{err}"
    );
    assert!(!err.contains("panicked"), "{err}");
    assert_eq!(std::fs::read(&db).expect("read"), junk, "left as it was");
}

/// Two nodes of one name on one machine: under the default data directory the second runs
/// without a store and says so; under an explicit `--data-dir`, it is an error (exit 1). The
/// first keeps storing.
#[test]
fn a_database_in_use_is_never_written_by_two_processes() {
    let shared = Dir::new("in-use");
    let spawn_default = || {
        let mut cmd = Command::new(common::bin());
        cmd.args(["--json", "--username", "alice"])
            .args(LOOPBACK)
            .env("XDG_DATA_HOME", shared.s());
        Node::start("alice", cmd)
    };
    let mut first = spawn_default();
    first.wait_join("alice");
    let mut second = spawn_default();
    second.wait_join("alice");
    second.wait_stderr("keeps no history on disk");
    second.send("/search anything");
    second.wait_for("the second has nothing to search", |v| v["type"] == "error");

    let explicit = shared.0.join("chitty-node");
    let out = run_alice(&explicit);
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use"), "{err}");

    first.send("still stored");
    first.wait_message("alice", "still stored");
    first.send("/search stored");
    let end = first.wait_for("the first still stores", |v| v["type"] == "search_end");
    assert_eq!(end["count"], 1, "{end}");
}

/// Runs `sh -c script` in a mount namespace of its own (so a tmpfs mounted there is seen by
/// nobody else), with `input` on stdin; `None` (and the reason printed) where that needs
/// what this machine lacks (root, `unshare`).
fn in_own_mounts(script: &str, input: &str) -> Option<std::process::Output> {
    // SAFETY: geteuid has no preconditions.
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("skipped: mounting a small disk needs root");
        return None;
    }
    if Command::new("unshare").arg("--version").output().is_err() {
        eprintln!("skipped: no unshare(1)");
        return None;
    }
    let mut child = Command::new("unshare")
        .args(["-m", "sh", "-c", script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("unshare runs");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().expect("piped stdin");
        let _ = stdin.write_all(input.as_bytes());
    }
    Some(child.wait_with_output().expect("it ends"))
}

/// A disk that fills up while the node runs: a warning that says so, every line still shown,
/// no panic, a normal exit. A disk already full, or mounted read-only, at start: exit 1 with
/// what to do.
#[test]
fn a_full_or_read_only_disk_is_said_clearly_and_loses_no_line() {
    let dir = Dir::new("small-disk");
    let disk = dir.0.join("disk");
    std::fs::create_dir_all(&disk).expect("mkdir");
    let key = dir.0.join("key");
    let bin = common::bin();
    let run = |mount: &str, fill: bool| {
        format!(
            "mount -t tmpfs -o {mount} tmpfs {d} && {pad} exec {bin} --json --username filler --no-mdns --identity {k} --data-dir {d}",
            d = disk.display(),
            k = key.display(),
            pad = if fill {
                format!(
                    "dd if=/dev/zero of={}/pad bs=1k count=64 2>/dev/null;",
                    disk.display()
                )
            } else {
                String::new()
            },
        )
    };
    // Fills up as it goes: 160 KiB, 1000 lines of 100 characters (alone in the room, a node
    // queues up to 1024).
    let lines: String = (0..1000)
        .map(|i| format!("{i:04} {}\n", "many words ".repeat(9)))
        .collect();
    let Some(out) = in_own_mounts(&run("size=160k", false), &lines) else {
        return;
    };
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{out:?}");
    assert!(err.contains("the disk is full"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
    let shown = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter(|l| l.contains("\"type\":\"message\""))
        .count();
    assert_eq!(shown, 1000, "every line shown");
    // Full before the start; mounted read-only.
    for (script, says) in [
        (run("size=64k", true), "the disk is full"),
        (run("ro", false), "cannot be written"),
    ] {
        let out = in_own_mounts(&script, "/quit\n").expect("could run above");
        assert_eq!(out.status.code(), Some(1), "{out:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains(says) && err.contains("--no-store"), "{err}");
    }
}

/// A room's archive of `n` events, written straight into the database at `path` as a hub or a
/// node would have stored them: a join and messages from each of three authors, a tenth of a
/// second apart (within any rate), ending `now`.
fn fill(path: &Path, n: u64) {
    use chitty_node::core::event::{Body, Event, Text, Username};
    use chitty_node::core::sign::Signer;
    use chitty_node::core::time::WallTime;
    use chitty_node::store::{Store, Stored};
    use libp2p::identity::Keypair;
    let keys: Vec<Keypair> = (0..3).map(|_| Keypair::generate_ed25519()).collect();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("a clock after 1970")
        .as_millis() as u64;
    let mut store = Store::open(path).expect("a new database");
    let mut batch = Vec::new();
    for i in 0..n {
        let k = (i % 3) as usize;
        let e = Event {
            author: keys[k].public().to_peer_id(),
            seq: i / 3 + 1,
            lamport: i + 1,
            time: WallTime::from_unix_millis(now - (n - i) * 100).expect("a time"),
            user: Username::new(format!("old{k}")).expect("a name"),
            body: if i < 3 {
                Body::Join
            } else {
                Body::Message(Text::new(format!("old line {i}")).expect("a text"))
            },
        };
        batch.push(Stored::of(&keys[k].sign_event(e, "chitty-chat")));
    }
    store.append(&batch).expect("written");
}

/// A history larger than memory holds (the store answers for the rest): a hub started on an
/// archive of 3,000 events serves all of it to a newcomer, in pages read from its database,
/// and the newcomer's `/history`, stored on its own disk, holds all of it after a restart.
#[test]
fn a_history_larger_than_memory_is_served_and_shown_from_the_store() {
    const N: u64 = 3000;
    let (dh, dc) = (Dir::new("big-h"), Dir::new("big-c"));
    fill(&chitty_node::store::hub_path(&dh.0), N);
    let mut cmd = Command::new(common::bin());
    cmd.args(["--json", "--relay", "--listen", "/ip4/127.0.0.1/tcp/0"])
        .args(["--data-dir", dh.s()]);
    let mut h = Node::start("hub", cmd);
    let addr = h.loopback_addr();
    let mut c = node("carol", &dc, &["--connect", &addr]);
    c.wait_for("carol catches up to the archive's oldest line", |v| {
        v["text"] == "old line 3" && v["sync"] == true
    });
    c.wait_for("and to its newest", |v| {
        v["text"] == format!("old line {}", N - 1).as_str()
    });
    c.wait_join("carol");
    let old = |h: &[Value]| {
        h.iter()
            .filter(|v| v["user"].as_str().is_some_and(|u| u.starts_with("old")))
            .count() as u64
    };
    assert_eq!(old(&c.history()), N, "every archived event, once");
    c.send("/quit");
    c.wait_exit();
    drop(c);
    let mut c = node("carol", &dc, &[]);
    c.wait_for("carol's stored tail", |v| v["stored"] == true);
    let h = c.history();
    assert_eq!(old(&h), N, "all of it, from memory and the store");
    let stamps: Vec<u64> = h.iter().filter_map(|v| v["lamport"].as_u64()).collect();
    assert!(stamps.windows(2).all(|w| w[0] <= w[1]), "in order");
}
