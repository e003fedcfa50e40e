//! What a chaos run found ([`ChaosReport`]), as one JSON object or a readable table, and
//! whether it passed.

use std::time::Duration;

use serde_json::{Value, json};

use crate::stats::ms;

/// What a chaos run found.
#[derive(Debug, Clone, Default)]
pub struct ChaosReport {
    /// The seed that replays the schedule.
    pub seed: u64,
    /// Participants at the start.
    pub nodes: usize,
    /// How long the disruptions went on.
    pub duration: Duration,
    /// Disruptions carried out, per kind, in [`super::plan::Action::ALL`] order.
    pub actions: Vec<(&'static str, usize)>,
    /// Chat lines written to the participants.
    pub sent: usize,
    /// Lines every live transcript must hold: all but those written less than a second before
    /// their author was killed.
    pub required: usize,
    /// Required lines missing from the final transcript (a few of their tags).
    pub missing: Vec<String>,
    /// For each of `missing`: its author, when it was written, what befell its author.
    pub missing_why: Vec<String>,
    /// How many were missing in all.
    pub missing_count: usize,
    /// Lines shown live (or caught up) by a participant other than their author.
    pub deliveries: usize,
    /// Whether every live participant ended with the same `/history`.
    pub identical: bool,
    /// From the last heal (and thaw and restart) until every `/history` was the same.
    pub converged: Option<Duration>,
    /// Events in the transcript they agree on.
    pub transcript: usize,
    /// Lines that appear more than once in it.
    pub transcript_duplicates: usize,
    /// Participants running at the end.
    pub live_at_end: usize,
    /// Participants that exited or hung without being told to, with why.
    pub crashed: Vec<String>,
    /// The most memory any one participant held, sampled every 2 s, KiB.
    pub max_rss_kib: u64,
    /// `lost` lines shown about someone who was not disrupted, nor cut off from the one who
    /// showed it, in the 20 s before.
    pub spurious_leaves: usize,
    /// `join` lines shown about someone the screen already showed present.
    pub spurious_joins: usize,
    /// A few of those lines, with the screen that showed them.
    pub spurious_examples: Vec<String>,
}

impl ChaosReport {
    /// Whether the run passed: one transcript everywhere, nothing required missing, no
    /// crash, nothing shown twice.
    pub fn passed(&self) -> bool {
        self.identical
            && self.missing_count == 0
            && self.crashed.is_empty()
            && self.transcript_duplicates == 0
    }

    /// Why it did not pass, one reason a line.
    pub fn failures(&self) -> Vec<String> {
        let mut v = Vec::new();
        if !self.identical {
            v.push("the live transcripts never became identical".to_owned());
        }
        if self.missing_count > 0 {
            v.push(format!(
                "{} required line(s) missing, e.g. {:?}",
                self.missing_count, self.missing_why
            ));
        }
        if !self.crashed.is_empty() {
            v.push(format!("crashed: {}", self.crashed.join("; ")));
        }
        if self.transcript_duplicates > 0 {
            v.push(format!(
                "{} line(s) twice in the transcript",
                self.transcript_duplicates
            ));
        }
        v
    }

    /// As one JSON object.
    pub fn json(&self) -> Value {
        let actions: serde_json::Map<String, Value> = self
            .actions
            .iter()
            .map(|(k, n)| ((*k).to_owned(), json!(n)))
            .collect();
        json!({
            "scenario": "chaos",
            "seed": self.seed,
            "nodes": self.nodes,
            "duration_s": self.duration.as_secs_f64(),
            "actions": actions,
            "sent": self.sent,
            "required": self.required,
            "missing": self.missing_count,
            "missing_tags": self.missing,
            "missing_why": self.missing_why,
            "deliveries": self.deliveries,
            "identical": self.identical,
            "converged_ms": self.converged.map(ms),
            "transcript": self.transcript,
            "transcript_duplicates": self.transcript_duplicates,
            "live_at_end": self.live_at_end,
            "crashed": self.crashed,
            "max_rss_kib": self.max_rss_kib,
            "spurious_leaves": self.spurious_leaves,
            "spurious_joins": self.spurious_joins,
            "spurious_examples": self.spurious_examples,
            "passed": self.passed(),
        })
    }

    /// As a readable table.
    pub fn table(&self) -> String {
        let mut t = String::new();
        let mut line = |k: &str, v: String| t.push_str(&format!("{k:<30}{v}\n"));
        line(
            "chaos",
            format!(
                "{} nodes, {:.0} s, seed {}",
                self.nodes,
                self.duration.as_secs_f64(),
                self.seed
            ),
        );
        line(
            "disruptions",
            self.actions
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect::<Vec<_>>()
                .join(", "),
        );
        line(
            "lines sent / required",
            format!("{} / {}", self.sent, self.required),
        );
        line("deliveries", self.deliveries.to_string());
        line(
            "identical transcripts",
            match self.converged {
                Some(d) => format!("yes, {:.0} ms after the last heal", ms(d)),
                None => "NO".to_owned(),
            },
        );
        line(
            "transcript",
            format!(
                "{} events, {} duplicated",
                self.transcript, self.transcript_duplicates
            ),
        );
        line(
            "required lines missing",
            if self.missing_count == 0 {
                "0".to_owned()
            } else {
                format!(
                    "{} (e.g. {})",
                    self.missing_count,
                    self.missing_why.join("; ")
                )
            },
        );
        line("live at the end", self.live_at_end.to_string());
        line(
            "crashed",
            if self.crashed.is_empty() {
                "none".to_owned()
            } else {
                self.crashed.join("; ")
            },
        );
        line("max RSS of a node", format!("{} KiB", self.max_rss_kib));
        line("spurious lost lines", self.spurious_leaves.to_string());
        line("spurious join lines", self.spurious_joins.to_string());
        for e in &self.spurious_examples {
            line("  e.g.", e.clone());
        }
        line(
            "result",
            if self.passed() {
                "passed".to_owned()
            } else {
                format!("FAILED: {}", self.failures().join("; "))
            },
        );
        t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A run passes only when everything holds, and each failure is said.
    #[test]
    fn a_run_passes_only_when_everything_holds() {
        let good = ChaosReport {
            identical: true,
            converged: Some(Duration::from_secs(1)),
            ..Default::default()
        };
        assert!(good.passed(), "{:?}", good.failures());
        assert_eq!(good.json()["passed"], true);
        let bad = ChaosReport {
            missing_count: 2,
            missing: vec!["c1".into(), "c9".into()],
            missing_why: vec!["c1 by n0 at 1.0 s; then: ".into()],
            crashed: vec!["n3: exited with signal 6".into()],
            ..good.clone()
        };
        assert!(!bad.passed());
        assert_eq!(bad.failures().len(), 2, "{:?}", bad.failures());
        assert!(bad.table().contains("FAILED"), "{}", bad.table());
        assert_eq!(bad.json()["missing"], 2);
    }
}
