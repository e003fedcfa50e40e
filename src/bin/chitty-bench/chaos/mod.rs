//! The chaos scenario: participants on hosts in network namespaces talk at a steady rate
//! while a seeded schedule joins newcomers, makes participants quit and come back, kills them
//! (`kill -9`) and restarts them under the same name, freezes them (SIGSTOP, SIGCONT) and
//! splits the network in two and heals it. At the end every live participant's `/history`
//! must be the same and hold every line whose author was alive a second after it was written,
//! and nobody may have crashed. (docs/RELIABILITY.md)
//!
//! One thread drives it all: each tick it reads what the participants printed, carries out
//! what is due, and writes the next chat line.

pub mod plan;
pub mod report;

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use chitty_lab::Lab;
use serde_json::Value;

use crate::cleanup::live;
use crate::cluster::check_neighbour_table;
use crate::error::BenchError;
use crate::load::tag_of;
use crate::node::{Proc, name, rss_kib};
use plan::{Action, Rng, next_action};
use report::ChaosReport;

/// What a chaos run does.
#[derive(Debug, Clone)]
pub struct ChaosConfig {
    /// The chitty-node binary.
    pub node_bin: PathBuf,
    /// Participants at the start (and the size the room is kept near).
    pub nodes: usize,
    /// How long the disruptions go on.
    pub duration: Duration,
    /// The schedule's seed.
    pub seed: u64,
    /// Chat lines per second, all participants together.
    pub rate: f64,
    /// How long to wait for any one thing (start-up, the final convergence is six times it).
    pub timeout: Duration,
    /// Where each participant's stderr goes (`n3.2.err` for its third run), if anywhere.
    pub stderr_dir: Option<PathBuf>,
}

/// How far back a disruption explains a `lost` line.
const EXPLAINS: Duration = Duration::from_secs(20);

/// How long a participant runs undisturbed before it may be killed or made to quit: time to
/// find its peers, so its lines have reached someone.
const SETTLED: Duration = Duration::from_secs(5);

/// A line written less than this before its author was killed need not survive.
const GRACE: Duration = Duration::from_secs(1);

/// Where a participant is.
#[derive(Debug, Clone, PartialEq)]
enum State {
    /// Running and talking.
    Running,
    /// Stopped (SIGSTOP) until then.
    Frozen(Instant),
    /// Killed; restarted then.
    Killed(Instant),
    /// Told to `/quit` then; waiting for it to exit.
    Quitting(Instant),
    /// Quit; may come back.
    Quit,
    /// Exited or hung on its own.
    Crashed,
}

/// One participant: a name on a host, run again and again.
struct Member {
    name: String,
    /// Its host in the lab, from 1.
    host: usize,
    proc: Option<Proc>,
    state: State,
    /// Its last start or thaw.
    calm_since: Instant,
    /// How many times it was started.
    runs: usize,
    /// When it was started, killed, frozen, thawed or quit.
    disrupted: Vec<(Instant, &'static str)>,
}

/// A line written to a participant.
struct Sent {
    from: usize,
    at: Instant,
    /// Written less than [`GRACE`] before its author was killed.
    excused: bool,
}

/// A split of the network: these members' hosts on the second bridge, from `since` to
/// `until` (then the end, once healed).
struct Split {
    members: Vec<usize>,
    since: Instant,
    until: Instant,
}

/// A chaos run in progress.
struct Chaos<'a> {
    cfg: &'a ChaosConfig,
    lab: Lab,
    data: PathBuf,
    /// Hosts in the lab: the starting participants' and the newcomers'.
    hosts: usize,
    members: Vec<Member>,
    rng: Rng,
    sent: HashMap<String, Sent>,
    /// Splits over, and the one now, if any.
    splits: Vec<Split>,
    splitting: bool,
    done: HashMap<Action, usize>,
    /// Which participants each screen shows present.
    present: Vec<HashSet<String>>,
    /// (screen, tag) of each delivery.
    delivered: HashSet<(usize, String)>,
    spurious_leaves: usize,
    spurious_joins: usize,
    /// A few of the spurious lines.
    examples: Vec<String>,
    max_rss: u64,
    /// Lines of `/history` being gathered, per member.
    history: Vec<Option<Vec<Value>>>,
    crashed: Vec<String>,
}

/// Runs a chaos scenario; `progress` hears of each disruption.
pub fn run(cfg: &ChaosConfig, progress: &mut dyn FnMut(&str)) -> Result<ChaosReport, BenchError> {
    let spare = (cfg.nodes / 2).max(1);
    let hosts = cfg.nodes + spare;
    check_neighbour_table(hosts)?;
    let data = std::env::temp_dir().join(format!("chitty-chaos-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    live(|l| l.dirs.push(data.clone()));
    let lab = Lab::bridge(hosts).map_err(BenchError::Lab)?;
    let ns = lab.namespaces();
    live(|l| l.namespaces.extend(ns));
    let mut c = Chaos {
        cfg,
        lab,
        data,
        hosts,
        members: Vec::new(),
        rng: Rng::new(cfg.seed),
        sent: HashMap::new(),
        splits: Vec::new(),
        splitting: false,
        done: HashMap::new(),
        present: Vec::new(),
        delivered: HashSet::new(),
        spurious_leaves: 0,
        spurious_joins: 0,
        examples: Vec::new(),
        max_rss: 0,
        history: Vec::new(),
        crashed: Vec::new(),
    };
    let result = c.go(progress);
    c.clean_up();
    result
}

impl Chaos<'_> {
    fn go(&mut self, progress: &mut dyn FnMut(&str)) -> Result<ChaosReport, BenchError> {
        progress(&format!(
            "chaos: {} nodes on {} hosts, seed {}",
            self.cfg.nodes, self.hosts, self.cfg.seed
        ));
        for _ in 0..self.cfg.nodes {
            self.add_member()?;
        }
        self.wait_all_joined()?;
        progress("chaos: everyone has joined; disruptions begin");
        let start = Instant::now();
        let gap = Duration::from_secs_f64(1.0 / self.cfg.rate.max(0.01));
        let mut next_talk = start;
        let mut next_action_at = start + self.rng.secs(2.0, 6.0);
        let mut next_rss = start;
        let mut k = 0usize;
        while start.elapsed() < self.cfg.duration {
            self.pump();
            self.due(progress)?;
            let now = Instant::now();
            if now >= next_action_at {
                self.act(progress)?;
                next_action_at = now + self.rng.secs(2.0, 6.0);
            }
            if now >= next_talk {
                self.talk(k);
                k += 1;
                next_talk += gap;
            }
            if now >= next_rss {
                self.sample_rss();
                next_rss = now + Duration::from_secs(2);
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        progress("chaos: time is up: healing, thawing, restarting; waiting for one transcript");
        let healed = self.end_disruptions()?;
        let timeout = self.cfg.timeout * 6;
        let mut identical = None;
        let mut last = Vec::new();
        while healed.elapsed() < timeout {
            let h = self.histories(timeout)?;
            self.sample_rss();
            if !h.is_empty() && h.iter().all(|x| keys(x) == keys(&h[0])) {
                identical = Some(healed.elapsed());
                last = h.into_iter().next().unwrap_or_default();
                break;
            }
            last = h.into_iter().next().unwrap_or_default();
            let pause = Instant::now() + Duration::from_secs(1);
            while Instant::now() < pause {
                self.pump();
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        self.check_crashes();
        Ok(self.report(start, identical, &last))
    }

    /// Starts a newcomer on the next free host.
    fn add_member(&mut self) -> Result<(), BenchError> {
        let i = self.members.len();
        let now = Instant::now();
        self.members.push(Member {
            name: name(i),
            host: i + 1,
            proc: None,
            state: State::Running,
            calm_since: now,
            runs: 0,
            disrupted: Vec::new(),
        });
        self.present.push(HashSet::new());
        self.history.push(None);
        self.spawn(i)
    }

    /// (Re)starts member `i` under its name on its host.
    fn spawn(&mut self, i: usize) -> Result<(), BenchError> {
        let m = &mut self.members[i];
        let mut cmd = Lab::command(self.lab.host(m.host), &self.cfg.node_bin.to_string_lossy());
        cmd.args(["--json", "--username", &m.name]);
        let err = self
            .cfg
            .stderr_dir
            .as_ref()
            .map(|d| d.join(format!("{}.{}.err", m.name, m.runs)));
        m.proc = Some(Proc::spawn(cmd, &self.data, err)?);
        m.runs += 1;
        m.state = State::Running;
        let now = Instant::now();
        m.calm_since = now;
        m.disrupted.push((now, "start"));
        // A new run's screen starts empty.
        self.present[i].clear();
        Ok(())
    }

    /// Waits until every starting participant has seen every other join.
    fn wait_all_joined(&mut self) -> Result<(), BenchError> {
        let until = Instant::now() + self.cfg.timeout;
        let n = self.members.len();
        while self.present.iter().any(|p| p.len() < n) {
            if Instant::now() > until {
                let seen: Vec<usize> = self.present.iter().map(HashSet::len).collect();
                return Err(BenchError::Timeout(format!(
                    "chaos start: joins seen per node: {seen:?}"
                )));
            }
            self.pump();
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(())
    }

    /// Reads what every participant printed and takes note of it.
    fn pump(&mut self) {
        let mut got = Vec::new();
        for (i, m) in self.members.iter().enumerate() {
            if let Some(p) = &m.proc {
                while let Ok((t, v)) = p.lines.try_recv() {
                    got.push((i, t, v));
                }
            }
        }
        for (i, t, v) in got {
            self.observe(i, t, v);
        }
    }

    /// Takes note of one line printed by member `x` at `t`.
    fn observe(&mut self, x: usize, t: Instant, v: Value) {
        let ty = v["type"].as_str().unwrap_or_default();
        if ty == "history" || ty == "history_end" {
            if let Some(h) = &mut self.history[x] {
                h.push(v);
            }
            return;
        }
        let user = v["user"].as_str().unwrap_or_default().to_owned();
        let live_line = v["sync"] != true;
        match ty {
            "message" => {
                if let Some(tag) = tag_of(&v)
                    && let Some(s) = self.sent.get(tag)
                    && s.from != x
                {
                    self.delivered.insert((x, tag.to_owned()));
                }
            }
            "join" => {
                let was_present = !self.present[x].insert(user);
                if was_present && live_line {
                    self.spurious_joins += 1;
                    self.example(x, &v);
                }
            }
            "leave" => {
                self.present[x].remove(&user);
                if live_line
                    && v["reason"] == "lost"
                    && let Some(y) = self.members.iter().position(|m| m.name == user)
                    && !self.explained(x, y, t)
                {
                    self.spurious_leaves += 1;
                    self.example(x, &v);
                }
            }
            _ => {}
        }
    }

    /// Keeps a few spurious lines for the report, with the screen that showed them.
    fn example(&mut self, x: usize, v: &Value) {
        if self.examples.len() < 6 {
            self.examples
                .push(format!("on {}: {v}", self.members[x].name));
        }
    }

    /// Whether something in the [`EXPLAINS`] window before `t` explains screen `x` showing
    /// `y` lost: either was disrupted, or a split kept them apart.
    fn explained(&self, x: usize, y: usize, t: Instant) -> bool {
        let from = t.checked_sub(EXPLAINS).unwrap_or(t);
        let recent = |m: &Member| m.disrupted.iter().any(|(d, _)| *d >= from && *d <= t);
        if recent(&self.members[x]) || recent(&self.members[y]) {
            return true;
        }
        self.splits.iter().any(|s| {
            s.since <= t && s.until >= from && (s.members.contains(&x) != s.members.contains(&y))
        })
    }

    /// Carries out what is due now: thaws, restarts, the end of a split, exits after `/quit`.
    fn due(&mut self, progress: &mut dyn FnMut(&str)) -> Result<(), BenchError> {
        let now = Instant::now();
        for i in 0..self.members.len() {
            match self.members[i].state.clone() {
                State::Frozen(until) if now >= until => self.thaw(i),
                State::Killed(at) if now >= at => {
                    progress(&format!("chaos: restarting {}", self.members[i].name));
                    self.spawn(i)?;
                }
                State::Quitting(since) => self.reap_quit(i, since),
                _ => {}
            }
        }
        if self.splitting
            && let Some(s) = self.splits.last()
            && now >= s.until
        {
            progress("chaos: healing the split");
            self.heal()?;
        }
        self.check_crashes();
        Ok(())
    }

    /// A participant told to quit: exited well, exited badly, or hung.
    fn reap_quit(&mut self, i: usize, since: Instant) {
        let m = &mut self.members[i];
        let Some(p) = &mut m.proc else { return };
        match p.child.try_wait() {
            Ok(Some(status)) if status.success() => {
                m.state = State::Quit;
                m.proc = None;
            }
            Ok(Some(status)) => {
                self.crashed
                    .push(format!("{}: after /quit, {status}", m.name));
                m.state = State::Crashed;
                m.proc = None;
            }
            Ok(None) if since.elapsed() > self.cfg.timeout => {
                self.crashed.push(format!(
                    "{}: still running {:?} after /quit",
                    m.name, self.cfg.timeout
                ));
                m.state = State::Crashed;
                m.proc = None;
            }
            _ => {}
        }
    }

    /// A participant that exited without being told to has crashed.
    fn check_crashes(&mut self) {
        for m in &mut self.members {
            if !matches!(m.state, State::Running | State::Frozen(_)) {
                continue;
            }
            let Some(p) = &mut m.proc else { continue };
            if let Ok(Some(status)) = p.child.try_wait() {
                self.crashed
                    .push(format!("{}: exited on its own, {status}", m.name));
                m.state = State::Crashed;
                m.proc = None;
            }
        }
    }

    /// Members that may be disturbed now: running, settled, not cut off by a split, and none
    /// at all for [`SETTLED`] after a heal (a line written in a split lives only on its side
    /// until the sides meet again: its author killed or quitting there, or just after the heal
    /// before they met, takes it along, and nobody else could have had it).
    fn settled(&self) -> Vec<usize> {
        let now = Instant::now();
        let cut: &[usize] = match (self.splitting, self.splits.last()) {
            (true, Some(s)) => &s.members,
            _ => &[],
        };
        let healing = !self.splitting
            && self
                .splits
                .last()
                .is_some_and(|s| now.saturating_duration_since(s.until) < SETTLED);
        if healing {
            return Vec::new();
        }
        (0..self.members.len())
            .filter(|i| {
                let m = &self.members[*i];
                m.state == State::Running
                    && now.saturating_duration_since(m.calm_since) >= SETTLED
                    && !cut.contains(i)
            })
            .collect()
    }

    /// Carries out the next disruption of the schedule.
    fn act(&mut self, progress: &mut dyn FnMut(&str)) -> Result<(), BenchError> {
        let live = self
            .members
            .iter()
            .filter(|m| {
                matches!(
                    m.state,
                    State::Running | State::Frozen(_) | State::Killed(_)
                )
            })
            .count();
        let returning: Vec<usize> = (0..self.members.len())
            .filter(|i| self.members[*i].state == State::Quit)
            .collect();
        let spare = self.hosts - self.members.len();
        let action = next_action(
            &mut self.rng,
            live,
            self.cfg.nodes,
            spare,
            returning.len(),
            self.splitting,
        );
        let now = Instant::now();
        let what = match action {
            Action::Join if spare > 0 => {
                self.add_member()?;
                Some(self.members.len() - 1)
            }
            Action::Return => match self.rng.pick(&returning) {
                Some(i) => {
                    self.spawn(i)?;
                    Some(i)
                }
                None => None,
            },
            Action::Quit => {
                let s = self.settled();
                let i = self.rng.pick(&s);
                if let Some(i) = i {
                    let m = &mut self.members[i];
                    if let Some(p) = &mut m.proc {
                        let _ = p.send("/quit");
                    }
                    m.state = State::Quitting(now);
                    m.disrupted.push((now, "quit"));
                }
                i
            }
            Action::Kill => {
                let s = self.settled();
                let i = self.rng.pick(&s);
                if let Some(i) = i {
                    let restart = now + self.rng.secs(1.0, 5.0);
                    let m = &mut self.members[i];
                    m.proc = None; // dropping it is kill -9 and wait
                    m.state = State::Killed(restart);
                    m.disrupted.push((now, "kill"));
                    for s in self.sent.values_mut() {
                        if s.from == i && now.saturating_duration_since(s.at) < GRACE {
                            s.excused = true;
                        }
                    }
                }
                i
            }
            Action::Freeze => {
                let s = self.settled();
                let i = self.rng.pick(&s);
                if let Some(i) = i {
                    let until = now + self.rng.secs(3.0, 12.0);
                    signal(&self.members[i], "-STOP");
                    let m = &mut self.members[i];
                    m.state = State::Frozen(until);
                    m.disrupted.push((now, "freeze"));
                }
                i
            }
            Action::Partition => {
                let on: Vec<usize> = (0..self.members.len())
                    .filter(|i| !matches!(self.members[*i].state, State::Quit | State::Crashed))
                    .collect();
                let size = 1 + self.rng.below((on.len() / 2).max(1));
                let mut pool = on;
                let mut group = Vec::new();
                while group.len() < size && !pool.is_empty() {
                    group.push(pool.swap_remove(self.rng.below(pool.len())));
                }
                group.sort_unstable();
                let hosts: Vec<usize> = group.iter().map(|i| self.members[*i].host).collect();
                self.lab.split(&hosts).map_err(BenchError::Lab)?;
                let until = now + self.rng.secs(5.0, 20.0);
                progress(&format!(
                    "chaos: split off {:?} for {:.0} s",
                    group
                        .iter()
                        .map(|i| &self.members[*i].name)
                        .collect::<Vec<_>>(),
                    until.saturating_duration_since(now).as_secs_f64()
                ));
                self.splits.push(Split {
                    members: group,
                    since: now,
                    until,
                });
                self.splitting = true;
                *self.done.entry(action).or_default() += 1;
                return Ok(());
            }
            Action::Join => None,
        };
        if let Some(i) = what {
            *self.done.entry(action).or_default() += 1;
            progress(&format!(
                "chaos: {} {}",
                action.as_str(),
                self.members[i].name
            ));
        }
        Ok(())
    }

    /// SIGCONT for a frozen member.
    fn thaw(&mut self, i: usize) {
        signal(&self.members[i], "-CONT");
        let now = Instant::now();
        let m = &mut self.members[i];
        m.state = State::Running;
        m.calm_since = now;
        m.disrupted.push((now, "thaw"));
    }

    /// Puts every host back on one bridge; the split ends now.
    fn heal(&mut self) -> Result<(), BenchError> {
        self.lab.heal().map_err(BenchError::Lab)?;
        if let Some(s) = self.splits.last_mut() {
            s.until = Instant::now();
        }
        self.splitting = false;
        Ok(())
    }

    /// One chat line from a running participant, `c{k}` its tag.
    fn talk(&mut self, k: usize) {
        let talkers: Vec<usize> = (0..self.members.len())
            .filter(|i| self.members[*i].state == State::Running)
            .collect();
        let Some(i) = self.rng.pick(&talkers) else {
            return;
        };
        let tag = format!("c{k}");
        let m = &mut self.members[i];
        let Some(p) = &mut m.proc else { return };
        if p.send(&format!("{tag} from {}", m.name)).is_ok() {
            self.sent.insert(
                tag,
                Sent {
                    from: i,
                    at: Instant::now(),
                    excused: false,
                },
            );
        }
    }

    /// The most memory any running member holds now.
    fn sample_rss(&mut self) {
        for m in &self.members {
            if let Some(p) = &m.proc {
                self.max_rss = self.max_rss.max(rss_kib(p.pid()));
            }
        }
    }

    /// Heals a split, thaws, restarts the killed, lets those quitting finish; returns when.
    fn end_disruptions(&mut self) -> Result<Instant, BenchError> {
        if self.splitting {
            self.heal()?;
        }
        for i in 0..self.members.len() {
            match self.members[i].state {
                State::Frozen(_) => self.thaw(i),
                State::Killed(_) => self.spawn(i)?,
                _ => {}
            }
        }
        let until = Instant::now() + self.cfg.timeout;
        while Instant::now() < until
            && self
                .members
                .iter()
                .any(|m| matches!(m.state, State::Quitting(_)))
        {
            self.pump();
            for i in 0..self.members.len() {
                if let State::Quitting(since) = self.members[i].state {
                    self.reap_quit(i, since);
                }
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(Instant::now())
    }

    /// Every running member's `/history`.
    fn histories(&mut self, timeout: Duration) -> Result<Vec<Vec<Value>>, BenchError> {
        let running: Vec<usize> = (0..self.members.len())
            .filter(|i| self.members[*i].state == State::Running)
            .collect();
        for i in &running {
            self.history[*i] = Some(Vec::new());
            if let Some(p) = &mut self.members[*i].proc {
                p.send("/history")?;
            }
        }
        let until = Instant::now() + timeout;
        let ended = |h: &Option<Vec<Value>>| {
            h.as_ref()
                .and_then(|h| h.last())
                .is_some_and(|v| v["type"] == "history_end")
        };
        while !running.iter().all(|i| ended(&self.history[*i])) {
            if Instant::now() > until {
                return Err(BenchError::Timeout("a /history never ended".into()));
            }
            self.pump();
            std::thread::sleep(Duration::from_millis(10));
        }
        Ok(running
            .iter()
            .map(|i| {
                let mut h = self.history[*i].take().unwrap_or_default();
                h.pop();
                h
            })
            .collect())
    }

    /// What happened to the author of line `tag` around it, for a report of a missing line:
    /// when it was written (seconds into the run), the author's disruptions and splits from
    /// 5 s before it on.
    fn whereabouts(&self, tag: &str, start: Instant) -> String {
        let Some(s) = self.sent.get(tag) else {
            return tag.to_string();
        };
        let secs = |t: Instant| t.saturating_duration_since(start).as_secs_f64();
        let from = s.at.checked_sub(Duration::from_secs(5)).unwrap_or(s.at);
        let m = &self.members[s.from];
        let mut then: Vec<String> = m
            .disrupted
            .iter()
            .filter(|(t, _)| *t >= from)
            .map(|(t, what)| format!("{what} {:.1}", secs(*t)))
            .collect();
        for sp in self.splits.iter().filter(|sp| sp.members.contains(&s.from)) {
            if sp.until >= from {
                then.push(format!("split {:.1}-{:.1}", secs(sp.since), secs(sp.until)));
            }
        }
        format!(
            "{tag} by {} at {:.1} s; then: {}",
            m.name,
            secs(s.at),
            then.join(", ")
        )
    }

    /// The report, from the final transcript `last`.
    fn report(&self, start: Instant, identical: Option<Duration>, last: &[Value]) -> ChaosReport {
        let mut count: HashMap<&str, usize> = HashMap::new();
        for v in last.iter().filter(|v| v["event"] == "message") {
            if let Some(tag) = tag_of(v) {
                *count.entry(tag).or_default() += 1;
            }
        }
        let mut missing: Vec<&String> = self
            .sent
            .iter()
            .filter(|(tag, s)| !s.excused && !count.contains_key(tag.as_str()))
            .map(|(tag, _)| tag)
            .collect();
        missing.sort_by_key(|t| t[1..].parse::<usize>().unwrap_or(0));
        ChaosReport {
            seed: self.cfg.seed,
            nodes: self.cfg.nodes,
            duration: self.cfg.duration.min(start.elapsed()),
            actions: Action::ALL
                .iter()
                .map(|a| (a.as_str(), self.done.get(a).copied().unwrap_or(0)))
                .collect(),
            sent: self.sent.len(),
            required: self.sent.values().filter(|s| !s.excused).count(),
            missing_count: missing.len(),
            missing_why: missing
                .iter()
                .take(10)
                .map(|t| self.whereabouts(t, start))
                .collect(),
            missing: missing.into_iter().take(10).cloned().collect(),
            deliveries: self.delivered.len(),
            identical: identical.is_some(),
            converged: identical,
            transcript: last.len(),
            transcript_duplicates: count.values().filter(|c| **c > 1).count(),
            live_at_end: self
                .members
                .iter()
                .filter(|m| m.state == State::Running)
                .count(),
            crashed: self.crashed.clone(),
            max_rss_kib: self.max_rss,
            spurious_leaves: self.spurious_leaves,
            spurious_joins: self.spurious_joins,
            spurious_examples: self.examples.clone(),
        }
    }

    /// Kills every member, removes the lab and the data.
    fn clean_up(&mut self) {
        for m in &mut self.members {
            if matches!(m.state, State::Frozen(_)) {
                signal(m, "-CONT");
            }
            m.proc = None;
        }
        let ns = self.lab.namespaces();
        live(|l| l.namespaces.retain(|n| !ns.contains(n)));
        chitty_lab::remove(&ns);
        let _ = std::fs::remove_dir_all(&self.data);
        let data = self.data.clone();
        live(|l| l.dirs.retain(|d| *d != data));
    }
}

/// Sends a signal (`-STOP`, `-CONT`) to a member's process.
fn signal(m: &Member, sig: &str) {
    if let Some(p) = &m.proc {
        let _ = Command::new("kill")
            .args([sig, &p.pid().to_string()])
            .status();
    }
}

/// What must be the same on every screen: `(event, lamport, peer, text, reason, by)`.
fn keys(history: &[Value]) -> Vec<String> {
    history
        .iter()
        .map(|v| {
            format!(
                "{} {} {} {} {} {}",
                v["event"], v["lamport"], v["peer"], v["text"], v["reason"], v["by"]
            )
        })
        .collect()
}

/// A duration as the command line gives it: `90`, `90s`, `10m`, `1h`.
pub fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (num, unit) = match s.find(|c: char| !c.is_ascii_digit() && c != '.') {
        Some(k) => s.split_at(k),
        None => (s, "s"),
    };
    let n: f64 = num.parse().ok()?;
    let secs = match unit {
        "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return None,
    };
    (secs.is_finite() && secs > 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Durations read as people write them; nonsense is refused.
    #[test]
    fn durations_read_as_people_write_them() {
        assert_eq!(parse_duration("90"), Some(Duration::from_secs(90)));
        assert_eq!(parse_duration("60s"), Some(Duration::from_secs(60)));
        assert_eq!(parse_duration("10m"), Some(Duration::from_secs(600)));
        assert_eq!(parse_duration("1.5m"), Some(Duration::from_secs(90)));
        for bad in ["", "m", "10x", "-5s", "0", "ten"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }
}
