//! Recovery on a cluster: a `kill -9` announced, and (in the lab) a node cut off the bridge,
//! messages it misses, the link repaired, and the time until every `/history` is the same.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::cluster::Cluster;
use crate::error::BenchError;
use crate::load::tag_of;
use crate::node::name;
use crate::report::Partition;

/// Whether `v` announces `user` lost.
fn is_lost(v: &Value, user: &str) -> bool {
    v["type"] == "leave" && v["user"] == user && v["reason"] == "lost"
}

impl Cluster {
    /// Kills the last node (`kill -9`) and times until every other node has announced it lost.
    pub fn kill_last(&mut self, timeout: Duration) -> Result<Duration, BenchError> {
        let last = self.procs.len() - 1;
        let killed = Instant::now();
        let _ = self.procs[last].child.kill();
        // When each node printed the announcement.
        let mut done: Vec<Option<Instant>> = vec![None; last];
        while done.iter().any(Option::is_none) {
            if killed.elapsed() > timeout {
                return Err(BenchError::Timeout(format!(
                    "{} was not announced lost everywhere",
                    name(last)
                )));
            }
            self.wait_lines(Duration::from_millis(5));
            for (i, lines) in self.pending.iter_mut().enumerate().take(last) {
                if let Some((t, _)) = lines.iter().find(|(_, v)| is_lost(v, &name(last))) {
                    done[i].get_or_insert(*t);
                }
                lines.clear();
            }
        }
        Ok(done
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(killed)
            .saturating_duration_since(killed))
    }

    /// Every node's `/history`, as comparable keys.
    fn histories(&mut self, timeout: Duration) -> Result<Vec<Vec<String>>, BenchError> {
        for p in &mut self.pending {
            p.clear();
        }
        for p in &mut self.procs {
            p.send("/history")?;
        }
        let n = self.procs.len();
        let mut out: Vec<Vec<String>> = vec![Vec::new(); n];
        let mut done = vec![false; n];
        let until = Instant::now() + timeout;
        while done.iter().any(|d| !d) {
            if Instant::now() > until {
                return Err(BenchError::Timeout("a /history never ended".into()));
            }
            self.wait_lines(Duration::from_millis(20));
            for (i, lines) in self.pending.iter_mut().enumerate() {
                for (_, v) in lines.drain(..) {
                    if done[i] {
                        continue;
                    }
                    if v["type"] == "history_end" {
                        done[i] = true;
                    } else if v["type"] == "history" {
                        out[i].push(format!(
                            "{} {} {} {} {}",
                            v["event"], v["lamport"], v["peer"], v["text"], v["reason"]
                        ));
                    }
                }
            }
        }
        Ok(out)
    }

    /// Cuts the last node off, lets node 0 send `missed` messages, repairs the link, and times
    /// until everyone agrees again.
    pub fn partition(
        &mut self,
        missed: usize,
        size: usize,
        timeout: Duration,
        progress: &mut dyn FnMut(&str),
    ) -> Result<Partition, BenchError> {
        let cut = self.procs.len() - 1;
        let lab = self
            .lab
            .as_ref()
            .ok_or_else(|| BenchError::Other("a partition needs --netns".into()))?;
        progress(&format!("recovery: cutting {} off the bridge", name(cut)));
        let t_cut = Instant::now();
        lab.set_link(cut + 1, false).map_err(BenchError::Lab)?;
        // Both sides notice: node 0 announces the cut-off node lost, and it announces node 0.
        let (mut rest_saw, mut cut_saw) = (None, None);
        while rest_saw.is_none() || cut_saw.is_none() {
            if t_cut.elapsed() > timeout {
                return Err(BenchError::Timeout(
                    "the partition was never noticed".into(),
                ));
            }
            self.wait_lines(Duration::from_millis(20));
            let when = |lines: &[(Instant, Value)], who: &str| {
                lines.iter().find(|(_, v)| is_lost(v, who)).map(|(t, _)| *t)
            };
            rest_saw = rest_saw.or(when(&self.pending[0], &name(cut)));
            cut_saw = cut_saw.or(when(&self.pending[cut], &name(0)));
            for p in &mut self.pending {
                p.clear();
            }
        }
        let noticed = rest_saw
            .max(cut_saw)
            .unwrap_or(t_cut)
            .saturating_duration_since(t_cut);
        progress(&format!(
            "recovery: {} messages while {} is cut off",
            missed,
            name(cut)
        ));
        let load = self.load(1, missed, 500.0, size, "p", Some(cut), timeout)?;
        if load.latencies.len() < load.expected {
            return Err(BenchError::Timeout(format!(
                "{} of {} deliveries during the partition",
                load.latencies.len(),
                load.expected
            )));
        }
        progress("recovery: repairing the link");
        let lab = self
            .lab
            .as_ref()
            .ok_or_else(|| BenchError::Other("a partition needs --netns".into()))?;
        let t_heal = Instant::now();
        lab.set_link(cut + 1, true).map_err(BenchError::Lab)?;
        let mut got: HashSet<String> = HashSet::new();
        let mut learned = vec![0usize; self.procs.len()];
        let mut caught_up = None;
        // Every other node sees the cut-off node join again (they had announced it lost).
        let mut rejoined = vec![false; self.procs.len()];
        rejoined[cut] = true;
        loop {
            if t_heal.elapsed() > timeout {
                return Err(BenchError::Timeout(format!(
                    "after the repair: {} of {missed} missed messages shown, rejoin seen by {:?}",
                    got.len(),
                    rejoined
                )));
            }
            self.wait_lines(Duration::from_millis(10));
            for (i, lines) in self.pending.iter_mut().enumerate() {
                for (t, v) in lines.drain(..) {
                    let ty = v["type"].as_str().unwrap_or_default();
                    if !["join", "message", "leave"].contains(&ty) {
                        continue;
                    }
                    learned[i] += 1;
                    if ty == "join" && i != cut && v["user"] == name(cut).as_str() {
                        rejoined[i] = true;
                    }
                    if i == cut
                        && ty == "message"
                        && let Some(tag) = tag_of(&v)
                        && tag.starts_with('p')
                    {
                        got.insert(tag.to_owned());
                        if got.len() == missed {
                            caught_up = Some(t.saturating_duration_since(t_heal));
                        }
                    }
                }
            }
            if caught_up.is_some() && rejoined.iter().all(|r| *r) {
                break;
            }
        }
        // Then compare transcripts until they agree.
        loop {
            let h = self.histories(timeout)?;
            if h.iter().all(|x| *x == h[0]) {
                return Ok(Partition {
                    noticed,
                    caught_up: caught_up.unwrap_or_default(),
                    identical: t_heal.elapsed(),
                    missed_by_cut: learned[cut],
                    missed_by_rest: learned[..cut].iter().copied().max().unwrap_or(0),
                    transcript: h[0].len(),
                });
            }
            if t_heal.elapsed() > timeout {
                return Err(BenchError::Timeout(
                    "the transcripts never became identical".into(),
                ));
            }
        }
    }
}
