//! The Lamport clock (docs/PROTOCOL.md, "Clock rules").
//!
//! Every node keeps one `u64` counter. Arithmetic saturates: a clock at `u64::MAX` stays there
//! instead of wrapping or panicking, so no input can make the clock go backwards.

/// A Lamport clock: a logical counter that only ever grows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LamportClock {
    time: u64,
}

impl LamportClock {
    /// A clock at time 0, as every node starts.
    pub fn new() -> Self {
        Self::default()
    }

    /// The current time, without changing it.
    pub fn now(&self) -> u64 {
        self.time
    }

    /// Rule 1, own event: `C := C + 1`; returns the stamp the event carries.
    pub fn tick(&mut self) -> u64 {
        self.time = self.time.saturating_add(1);
        self.time
    }

    /// Rule 2, received event stamped `t`: `C := max(C, t) + 1`.
    pub fn receive(&mut self, t: u64) -> u64 {
        self.time = self.time.max(t).saturating_add(1);
        self.time
    }

    /// Adopt a peer's clock reading without counting an event: `C := max(C, t)`.
    ///
    /// Used for the hello exchange, which carries no event, so that our next event is stamped
    /// after everything the peer had seen.
    pub fn merge(&mut self, t: u64) {
        self.time = self.time.max(t);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn starts_at_zero_and_ticks_by_one() {
        let mut c = LamportClock::new();
        assert_eq!(c.now(), 0);
        assert_eq!(c.tick(), 1);
        assert_eq!(c.tick(), 2);
    }

    #[test]
    fn receive_takes_max_plus_one() {
        let mut c = LamportClock::new();
        c.tick();
        assert_eq!(c.receive(10), 11);
        assert_eq!(c.receive(3), 12);
    }

    #[test]
    fn saturates_instead_of_overflowing() {
        let mut c = LamportClock::new();
        assert_eq!(c.receive(u64::MAX), u64::MAX);
        assert_eq!(c.tick(), u64::MAX);
        c.merge(5);
        assert_eq!(c.now(), u64::MAX);
    }

    proptest! {
        /// The clock never goes backwards and every own event is stamped after everything seen.
        #[test]
        fn monotonic_and_causal(ops in proptest::collection::vec((0u8..3, any::<u64>()), 0..200)) {
            let mut c = LamportClock::new();
            let mut seen_max = 0u64;
            for (op, t) in ops {
                let before = c.now();
                match op {
                    0 => {
                        let s = c.tick();
                        prop_assert!(s > seen_max || s == u64::MAX);
                        seen_max = seen_max.max(s);
                    }
                    1 => {
                        let s = c.receive(t);
                        prop_assert!(s > t || s == u64::MAX);
                        seen_max = seen_max.max(t).max(s);
                    }
                    _ => {
                        c.merge(t);
                        seen_max = seen_max.max(t);
                    }
                }
                prop_assert!(c.now() >= before);
                prop_assert!(c.now() >= seen_max);
            }
        }
    }
}
