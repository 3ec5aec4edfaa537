//! The one place where the transports convert between the runtime's clock and the core's
//! [`Instant`].
//!
//! The core counts microseconds from an epoch the adapter chooses; each transport task takes the
//! moment it starts as its epoch. The clock read is tokio's rather than `std::time::Instant`
//! directly: it is the same monotonic clock, but tokio's test utilities can pause and advance
//! it, and `sleep_until` takes tokio's type anyway.

use cellwarden_core::Instant;
use tokio::time::Instant as TokioInstant;

/// Converts between tokio's monotonic clock and core time since a fixed epoch.
#[derive(Clone, Copy, Debug)]
pub struct Clock {
    epoch: TokioInstant,
}

impl Clock {
    /// A clock whose epoch (core time zero) is now.
    pub fn start() -> Clock {
        Clock { epoch: TokioInstant::now() }
    }

    /// A clock whose epoch is `epoch`, so that two tasks can share one time line.
    pub fn with_epoch(epoch: TokioInstant) -> Clock {
        Clock { epoch }
    }

    /// The epoch.
    pub fn epoch(&self) -> TokioInstant {
        self.epoch
    }

    /// Now, in core time.
    pub fn now(&self) -> Instant {
        self.to_core(TokioInstant::now())
    }

    /// A moment of the runtime's clock in core time; moments before the epoch map to zero.
    pub fn to_core(&self, at: TokioInstant) -> Instant {
        let elapsed = at.saturating_duration_since(self.epoch);
        // u64 microseconds last 584 000 years: the conversion saturates only in theory.
        Instant::from_micros(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX))
    }

    /// A core deadline as a moment of the runtime's clock, for `sleep_until`.
    pub fn to_runtime(&self, at: Instant) -> TokioInstant {
        let offset = std::time::Duration::from_micros(at.as_micros());
        // Far-future deadlines that overflow the platform's clock become "an hour from now":
        // a sleep that long ends only by being replaced by a nearer deadline.
        self.epoch
            .checked_add(offset)
            .unwrap_or_else(|| TokioInstant::now() + std::time::Duration::from_secs(3600))
    }
}

/// Sleeps until `deadline`, or forever without one (a `select!` branch that never fires).
pub async fn sleep_until_some(deadline: Option<TokioInstant>) {
    match deadline {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn conversions_round_trip_to_the_microsecond() {
        let clock = Clock::with_epoch(TokioInstant::now());
        let at = Instant::from_micros(1_234_567);
        assert_eq!(clock.to_core(clock.to_runtime(at)), at);
        assert_eq!(clock.to_core(clock.epoch()), Instant::ZERO);
    }

    #[test]
    fn moments_before_the_epoch_are_zero() {
        let epoch = TokioInstant::now() + std::time::Duration::from_secs(5);
        let clock = Clock::with_epoch(epoch);
        assert_eq!(clock.to_core(epoch - std::time::Duration::from_secs(1)), Instant::ZERO);
    }
}
