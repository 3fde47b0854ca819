//! The dynamic AppendEntries batch size of one follower, modelled on TCP congestion control.
//!
//! A large batch amortises per-message cost while replication works, but a lost or rejected
//! batch wastes everything in it (and, with pipelining, every batch sent after it). So the
//! leader keeps a window per follower that bounds both the entries of one append and the
//! entries in flight (sent, not yet acknowledged) to that follower: it starts at one entry and
//! doubles on every acknowledged append while below a threshold (slow start), then grows by
//! one entry per acknowledgement (congestion avoidance). A failure (a rejection, or a stalled pipeline whose
//! appends are presumed lost) halves the threshold and restarts the window at one entry. The
//! configured `max_entries_per_append` is a hard cap throughout; `max_bytes_per_append` still
//! limits each batch independently.

/// Entries per AppendEntries that a leader sends one follower right now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct AppendWindow {
    /// Current batch size in entries; always in `1..=cap`.
    size: usize,
    /// Slow-start threshold: below it the window doubles, at or above it grows by one.
    threshold: usize,
    /// Hard cap (`max_entries_per_append`).
    cap: usize,
}

impl AppendWindow {
    /// A window that starts at one entry with an unbounded threshold (the cap).
    pub(crate) fn new(cap: usize) -> AppendWindow {
        assert!(cap >= 1, "the cap is validated to be at least one entry");
        AppendWindow {
            size: 1,
            threshold: cap,
            cap,
        }
    }

    /// Entries the next append may carry.
    pub(crate) fn size(&self) -> usize {
        self.size
    }

    /// Current slow-start threshold.
    #[cfg(test)]
    pub(crate) fn threshold(&self) -> usize {
        self.threshold
    }

    /// An append was acknowledged: grow.
    pub(crate) fn on_success(&mut self) {
        self.size = if self.size < self.threshold {
            (self.size * 2).min(self.threshold)
        } else {
            self.size + 1
        }
        .min(self.cap);
        self.check();
    }

    /// An append was rejected or presumed lost: halve the threshold and restart at one.
    pub(crate) fn on_failure(&mut self) {
        self.threshold = (self.size / 2).max(1);
        self.size = 1;
        self.check();
    }

    fn check(&self) {
        assert!(
            self.size >= 1 && self.size <= self.cap,
            "window out of range"
        );
        assert!(self.threshold >= 1 && self.threshold <= self.cap);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slow_start_doubles_up_to_the_cap() {
        let mut w = AppendWindow::new(100);
        let sizes: Vec<usize> = (0..9)
            .map(|_| {
                w.on_success();
                w.size()
            })
            .collect();
        assert_eq!(sizes, vec![2, 4, 8, 16, 32, 64, 100, 100, 100]);
    }

    #[test]
    fn failure_halves_the_threshold_and_restarts() {
        let mut w = AppendWindow::new(1000);
        for _ in 0..5 {
            w.on_success();
        }
        assert_eq!(w.size(), 32);
        w.on_failure();
        assert_eq!((w.size(), w.threshold()), (1, 16));
        let sizes: Vec<usize> = (0..7)
            .map(|_| {
                w.on_success();
                w.size()
            })
            .collect();
        // Doubling stops at the threshold, then growth is additive.
        assert_eq!(sizes, vec![2, 4, 8, 16, 17, 18, 19]);
        w.on_failure();
        w.on_failure();
        assert_eq!((w.size(), w.threshold()), (1, 1));
        w.on_success();
        assert_eq!(w.size(), 2, "additive growth from a threshold of one");
    }
}
