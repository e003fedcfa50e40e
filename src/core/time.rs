//! Wall-clock time as events carry it: when their author said them (docs/PROTOCOL.md, section 5,
//! `time`).
//!
//! The core never reads a clock: the net layer reads the system clock and hands the value in with
//! every call that may emit an event (the room's). The time is only shown, never
//! used for ordering (that is the Lamport stamp's job), so a peer whose clock is off is shown as it
//! claims, and nothing else changes.

use std::time::{SystemTime, UNIX_EPOCH};

/// The latest time an event may carry: 9999-12-31T23:59:59.999Z, in milliseconds since the Unix
/// epoch. Any later one has no four-digit year, so no RFC 3339 form.
pub const MAX_WALL_MILLIS: u64 = 253_402_300_799_999;

/// A moment in UTC, in milliseconds since the Unix epoch, from 1970 to the end of year 9999.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct WallTime(u64);

impl WallTime {
    /// The Unix epoch, 1970-01-01T00:00:00Z.
    pub const EPOCH: WallTime = WallTime(0);
    /// The latest time there is: [`MAX_WALL_MILLIS`].
    pub const MAX: WallTime = WallTime(MAX_WALL_MILLIS);

    /// `ms` milliseconds after the Unix epoch, or `None` past [`MAX_WALL_MILLIS`].
    pub fn from_unix_millis(ms: u64) -> Option<Self> {
        (ms <= MAX_WALL_MILLIS).then_some(Self(ms))
    }

    /// A system time, clamped to the representable range (a clock set before 1970 gives the
    /// epoch). Only a conversion: the caller reads the clock.
    pub fn from_system(t: SystemTime) -> Self {
        let ms = t
            .duration_since(UNIX_EPOCH)
            .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
            .unwrap_or(0);
        Self(ms.min(MAX_WALL_MILLIS))
    }

    /// Milliseconds since the Unix epoch.
    pub fn unix_millis(self) -> u64 {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn times_are_bounded_and_system_times_clamped() {
        assert_eq!(
            WallTime::from_unix_millis(MAX_WALL_MILLIS),
            Some(WallTime::MAX)
        );
        assert_eq!(WallTime::from_unix_millis(MAX_WALL_MILLIS + 1), None);
        assert_eq!(WallTime::from_unix_millis(u64::MAX), None);
        let t = UNIX_EPOCH + Duration::from_millis(1_795_613_371_123);
        assert_eq!(WallTime::from_system(t).unix_millis(), 1_795_613_371_123);
        assert_eq!(
            WallTime::from_system(UNIX_EPOCH - Duration::from_secs(1)),
            WallTime::EPOCH
        );
        if let Some(far) = UNIX_EPOCH.checked_add(Duration::from_secs(1 << 40)) {
            assert_eq!(WallTime::from_system(far), WallTime::MAX);
        }
    }
}
