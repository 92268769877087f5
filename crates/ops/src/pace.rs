//! The write policy both chats share: frames leave by need, not by clock.
//!
//! A socket's [`Pace`] watches how often frames reach it. A socket that
//! gets fewer than [`BUSY_FRAMES_PER_DELAY`] frames per `WRITE_DELAY_MS`
//! on average is quiet: each frame leaves at once, and holding it would buy
//! nothing but latency (there is nothing to batch it with). A busy socket
//! writes at most once per delay, and whatever came meanwhile leaves in
//! that one write: one wake-up and one system call for many frames.

use std::time::{Duration, Instant};

/// More frames per delay than this, on average, and a socket is busy:
/// holding its frames for a delay then batches several per write.
pub const BUSY_FRAMES_PER_DELAY: u64 = 3;

/// How often frames reach one socket: a moving average of the gaps
/// between them, over about the last eight.
#[derive(Debug, Default, Clone)]
pub struct Pace {
    last_frame: Option<Instant>,
    /// Zero until the first frame.
    mean_gap_micros: u64,
}

impl Pace {
    /// Counts one frame for the socket, arriving (or taken from a queue) now.
    pub fn frame(&mut self, now: Instant, delay: Duration) {
        let delay = micros(delay);
        // A long silence counts as one delay, so that a burst after it is
        // noticed within a few frames.
        let gap = self
            .last_frame
            .map_or(delay, |last| micros(now.duration_since(last)).min(delay));
        self.last_frame = Some(now);
        self.mean_gap_micros = if self.mean_gap_micros == 0 {
            gap.max(1)
        } else {
            (self.mean_gap_micros * 7 + gap) / 8
        };
    }

    /// Whether the socket's frames come often enough to be worth holding.
    pub fn is_busy(&self, delay: Duration) -> bool {
        self.mean_gap_micros != 0 && self.mean_gap_micros * BUSY_FRAMES_PER_DELAY < micros(delay)
    }
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    const DELAY: Duration = Duration::from_millis(20);

    fn pace_of(gap: Duration, frames: u32) -> Pace {
        let mut pace = Pace::default();
        let start = Instant::now();
        for frame in 0..frames {
            pace.frame(start + gap * frame, DELAY);
        }
        pace
    }

    #[test]
    fn a_new_socket_is_quiet() {
        assert!(!Pace::default().is_busy(DELAY));
        assert!(!pace_of(Duration::ZERO, 1).is_busy(DELAY));
    }

    #[test]
    fn frames_far_apart_keep_a_socket_quiet() {
        // An everyday chat: frames about a delay apart, or a little less.
        assert!(!pace_of(Duration::from_millis(12), 50).is_busy(DELAY));
        assert!(!pace_of(Duration::from_secs(5), 50).is_busy(DELAY));
    }

    #[test]
    fn frames_close_together_make_a_socket_busy_within_a_few() {
        assert!(pace_of(Duration::from_millis(5), 24).is_busy(DELAY));
        assert!(pace_of(Duration::ZERO, 12).is_busy(DELAY));
        assert!(
            !pace_of(Duration::ZERO, 3).is_busy(DELAY),
            "a pair is no load"
        );
    }

    #[test]
    fn a_busy_socket_that_goes_quiet_is_quiet_again_soon() {
        let mut pace = pace_of(Duration::ZERO, 20);
        assert!(pace.is_busy(DELAY));
        let later = Instant::now() + Duration::from_secs(1);
        for frame in 0..16 {
            pace.frame(later + Duration::from_secs(frame), DELAY);
        }
        assert!(!pace.is_busy(DELAY));
    }

    #[test]
    fn no_delay_means_never_busy() {
        assert!(!pace_of(Duration::ZERO, 20).is_busy(Duration::ZERO));
    }
}
