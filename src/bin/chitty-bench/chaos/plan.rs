//! The seeded schedule of a chaos run: a small random generator of our own (so a seed replays
//! the same choices on any build), and which disruption comes next.

use std::time::Duration;

/// SplitMix64: small, fast and good enough to pick disruptions; the same seed gives the same
/// sequence everywhere, which a crate's generator does not promise across versions.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `0..n` (0 if `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next_u64() % n as u64) as usize
        }
    }

    /// A duration between `lo` and `hi` seconds.
    pub fn secs(&mut self, lo: f64, hi: f64) -> Duration {
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        Duration::from_secs_f64(lo + (hi - lo) * unit)
    }

    /// One of `items`, by index.
    pub fn pick<T: Copy>(&mut self, items: &[T]) -> Option<T> {
        (!items.is_empty()).then(|| items[self.below(items.len())])
    }
}

/// One disruption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// A new participant, under a name not used before, on a host of its own.
    Join,
    /// A participant types `/quit`.
    Quit,
    /// A participant that quit comes back under its name (when too few are left).
    Return,
    /// `kill -9`, and a restart under the same name a few seconds later.
    Kill,
    /// SIGSTOP, and SIGCONT a few seconds later.
    Freeze,
    /// Some hosts moved to a bridge of their own, and back a few seconds later.
    Partition,
}

impl Action {
    /// Its name in the report.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Join => "join",
            Action::Quit => "quit",
            Action::Return => "return",
            Action::Kill => "kill",
            Action::Freeze => "freeze",
            Action::Partition => "partition",
        }
    }

    /// Every action, in report order.
    pub const ALL: [Action; 6] = [
        Action::Join,
        Action::Quit,
        Action::Return,
        Action::Kill,
        Action::Freeze,
        Action::Partition,
    ];
}

/// The next disruption: weighted, with what the room needs first. `live` participants run,
/// `base` is the size the run started with, `spare` hosts are free for newcomers, `returning`
/// participants have quit, and a partition is `splitting` now.
pub fn next_action(
    rng: &mut Rng,
    live: usize,
    base: usize,
    spare: usize,
    returning: usize,
    splitting: bool,
) -> Action {
    // Too few left to make a room of: someone comes (back).
    if live < (base / 2).max(3) {
        return if returning > 0 {
            Action::Return
        } else {
            Action::Join
        };
    }
    let weights = [
        (Action::Join, if spare > 0 { 2 } else { 0 }),
        (Action::Quit, if live > 3 { 2 } else { 0 }),
        (Action::Return, if returning > 0 { 1 } else { 0 }),
        (Action::Kill, 3),
        (Action::Freeze, 3),
        (Action::Partition, if splitting { 0 } else { 3 }),
    ];
    let total: usize = weights.iter().map(|(_, w)| w).sum();
    let mut r = rng.below(total);
    for (a, w) in weights {
        if r < w {
            return a;
        }
        r -= w;
    }
    Action::Kill
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A seed replays: the same seed gives the same choices, another seed others.
    #[test]
    fn a_seed_replays_the_same_schedule() {
        let run = |seed| {
            let mut rng = Rng::new(seed);
            (0..50)
                .map(|_| next_action(&mut rng, 8, 10, 2, 1, false))
                .collect::<Vec<_>>()
        };
        assert_eq!(run(7), run(7));
        assert_ne!(run(7), run(8));
    }

    /// Every kind of disruption comes up over a run, and none is chosen when it cannot be
    /// carried out.
    #[test]
    fn every_action_comes_up_and_none_that_cannot_be_done() {
        let mut rng = Rng::new(1);
        let mut seen = std::collections::HashSet::new();
        for _ in 0..1000 {
            seen.insert(next_action(&mut rng, 8, 10, 2, 1, false));
            let a = next_action(&mut rng, 8, 10, 0, 0, true);
            assert!(
                ![Action::Join, Action::Return, Action::Partition].contains(&a),
                "{a:?}"
            );
        }
        assert_eq!(seen.len(), Action::ALL.len(), "{seen:?}");
        // Too few: somebody comes back first, or joins.
        assert_eq!(next_action(&mut rng, 2, 10, 2, 1, false), Action::Return);
        assert_eq!(next_action(&mut rng, 2, 10, 2, 0, false), Action::Join);
    }

    /// Durations stay within their bounds.
    #[test]
    fn durations_stay_within_bounds() {
        let mut rng = Rng::new(3);
        for _ in 0..1000 {
            let d = rng.secs(2.0, 6.0);
            assert!(
                d >= Duration::from_secs(2) && d <= Duration::from_secs(6),
                "{d:?}"
            );
        }
    }
}
