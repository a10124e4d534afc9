//! Where a start spends its time: named laps, logged at debug level as one line
//! (`LOG_LEVEL=debug`), so an operator or the benchmark can see which read costs
//! what without a profiler. Taking a lap is one monotonic clock read.
use std::time::{Duration, Instant};

/// Laps of one pass, in the order taken.
#[derive(Debug)]
pub struct PhaseTimer {
    what: &'static str,
    started: Instant,
    last: Instant,
    laps: Vec<(&'static str, Duration)>,
}

impl PhaseTimer {
    /// Starts timing `what` (e.g. "observe").
    pub fn start(what: &'static str) -> PhaseTimer {
        let now = Instant::now();
        PhaseTimer {
            what,
            started: now,
            last: now,
            laps: Vec::new(),
        }
    }

    /// Ends the current phase as `phase`.
    pub fn lap(&mut self, phase: &'static str) {
        let now = Instant::now();
        self.laps.push((phase, now.duration_since(self.last)));
        self.last = now;
    }

    /// The laps taken so far as `phase=<µs>` words, then the total.
    pub fn summary(&self) -> String {
        let mut words: Vec<String> = self
            .laps
            .iter()
            .map(|(phase, took)| format!("{phase}={}µs", took.as_micros()))
            .collect();
        words.push(format!(
            "total={}µs",
            self.last.duration_since(self.started).as_micros()
        ));
        words.join(" ")
    }

    /// Logs [`PhaseTimer::summary`] at debug level.
    pub fn log(&self) {
        if tracing::enabled!(tracing::Level::DEBUG) {
            tracing::debug!(phases = %self.summary(), "{} timings", self.what);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_names_every_lap_in_order_then_the_total() {
        let mut timer = PhaseTimer::start("observe");
        timer.lap("list");
        timer.lap("probe");
        let summary = timer.summary();
        let words: Vec<&str> = summary.split(' ').collect();
        assert_eq!(words.len(), 3, "{summary}");
        assert!(words[0].starts_with("list="), "{summary}");
        assert!(words[1].starts_with("probe="), "{summary}");
        assert!(words[2].starts_with("total="), "{summary}");
    }
}
