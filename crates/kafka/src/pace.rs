//! How fast a partition's task gets through its records, and so whether what waits for it is
//! worth pausing the partition for.
//!
//! Pausing a partition is not free: librdkafka drops what it had prefetched for it, and after
//! resuming the first records take 0.05–1 s to come back. So a partition is paused when what
//! waits would keep its task busy for long (a slow handler: its memory is what the pause
//! saves), not merely because many records wait for a task that gets through them in
//! moments (a burst, which the buffer absorbs).

use std::time::{Duration, Instant};

/// The shortest time over which a pace is measured.
const SAMPLE: Duration = Duration::from_millis(100);

/// A task's pace: records finished per second while it had records to work on, smoothed.
#[derive(Debug, Default)]
pub(crate) struct Pace {
    rate: Option<f64>,
    /// When the current sample began, and how many records were finished by then.
    sample: Option<(Instant, u64)>,
}

impl Pace {
    /// Looks at the task at `now`: `finished` records so far, `waiting` not yet finished. Only
    /// time in which it had work counts: an idle task's pace says nothing of its speed.
    pub fn observe(&mut self, now: Instant, finished: u64, waiting: usize) {
        if waiting == 0 {
            self.sample = None;
            return;
        }
        let Some((began, finished_then)) = self.sample else {
            self.sample = Some((now, finished));
            return;
        };
        let elapsed = now.saturating_duration_since(began);
        if elapsed < SAMPLE {
            return;
        }
        let rate = finished.saturating_sub(finished_then) as f64 / elapsed.as_secs_f64();
        self.rate = Some(self.rate.map_or(rate, |before| (before + rate) / 2.0));
        self.sample = Some((now, finished));
    }

    /// How long the task would take to finish `waiting` records at its pace; `None` until the
    /// pace is measured. A task that finished nothing while it had work would take forever.
    pub fn time_for(&self, waiting: usize) -> Option<Duration> {
        let rate = self.rate?;
        if waiting == 0 {
            return Some(Duration::ZERO);
        }
        if rate <= 0.0 {
            return Some(Duration::MAX);
        }
        Some(Duration::try_from_secs_f64(waiting as f64 / rate).unwrap_or(Duration::MAX))
    }
}

/// Whether a partition with `waiting` records not yet finished should be paused: at `bound`
/// always (the memory a task may tie up), and from a twentieth of it when its task would take
/// longer than `work` to get through them.
pub(crate) fn should_pause(waiting: usize, bound: usize, work: Duration, pace: &Pace) -> bool {
    waiting >= bound
        || (waiting >= (bound / 20).max(1) && pace.time_for(waiting).is_some_and(|t| t > work))
}

/// Whether a partition paused with `paused_at` records waiting should be fetched again: when
/// half of them are done and what is left would keep its task busy for at most half of `work`
/// (so the rest outlasts the refetch, and the partition is not paused again at once).
pub(crate) fn should_resume(waiting: usize, paused_at: usize, work: Duration, pace: &Pace) -> bool {
    waiting <= paused_at / 2 && pace.time_for(waiting).is_none_or(|t| t <= work / 2)
}

#[cfg(test)]
mod tests {
    use super::*;

    const WORK: Duration = Duration::from_secs(5);

    fn measured(records_per_second: u64) -> Pace {
        let start = Instant::now();
        let mut pace = Pace::default();
        pace.observe(start, 0, 10);
        pace.observe(start + Duration::from_secs(1), records_per_second, 10);
        pace
    }

    #[test]
    fn a_fast_task_absorbs_a_burst_up_to_the_bound() {
        let pace = measured(50_000);
        assert!(!should_pause(19_999, 20_000, WORK, &pace));
        assert!(should_pause(20_000, 20_000, WORK, &pace));
    }

    #[test]
    fn a_slow_task_is_paused_once_what_waits_outlasts_the_work_bound() {
        let pace = measured(500); // 2 ms a record
        assert!(!should_pause(2_500, 20_000, WORK, &pace), "5 s of work");
        assert!(should_pause(2_501, 20_000, WORK, &pace));
        // Never for a handful of records, however slow.
        assert!(!should_pause(999, 20_000, WORK, &measured(1)));
    }

    #[test]
    fn a_paused_partition_resumes_with_half_the_work_bound_left() {
        // Paused at the bound by a task of 500 records/s: 20,000 records, 40 s of work.
        let pace = measured(500);
        assert!(!should_resume(10_000, 20_000, WORK, &pace), "20 s left");
        assert!(!should_resume(1_251, 20_000, WORK, &pace));
        assert!(should_resume(1_250, 20_000, WORK, &pace), "2.5 s left");
        assert!(
            !should_pause(1_250, 20_000, WORK, &pace),
            "not paused again at once"
        );
        // A fast one resumes at half of what waited.
        let fast = measured(50_000);
        assert!(!should_resume(10_001, 20_000, WORK, &fast));
        assert!(should_resume(10_000, 20_000, WORK, &fast));
        // A stuck one waits until it moves.
        assert!(!should_resume(100, 20_000, WORK, &measured(0)));
        assert!(should_resume(0, 20_000, WORK, &measured(0)), "nothing left");
    }

    #[test]
    fn an_unmeasured_task_is_paused_only_at_the_bound() {
        let pace = Pace::default();
        assert_eq!(pace.time_for(10), None);
        assert!(!should_pause(19_999, 20_000, WORK, &pace));
        assert!(should_pause(20_000, 20_000, WORK, &pace));
    }

    #[test]
    fn a_stuck_task_takes_forever() {
        let pace = measured(0);
        assert_eq!(pace.time_for(1), Some(Duration::MAX));
        assert!(should_pause(1_000, 20_000, WORK, &pace));
    }

    #[test]
    fn idle_time_does_not_count() {
        let start = Instant::now();
        let mut pace = Pace::default();
        pace.observe(start, 0, 10);
        pace.observe(start + Duration::from_millis(200), 100, 10); // 500/s
        pace.observe(start + Duration::from_secs(5), 100, 0); // idle for seconds
        pace.observe(start + Duration::from_secs(6), 100, 10);
        pace.observe(start + Duration::from_millis(6_200), 200, 10); // 500/s again
        let time = pace.time_for(500).expect("measured");
        assert!(
            time.abs_diff(Duration::from_secs(1)) < Duration::from_millis(1),
            "{time:?}"
        );
    }

    #[test]
    fn the_pace_follows_a_change_within_a_few_samples() {
        let start = Instant::now();
        let mut pace = Pace::default();
        pace.observe(start, 0, 10);
        let mut finished = 0;
        for tenth in 1..=10 {
            finished += 1_000; // 10,000/s
            pace.observe(start + Duration::from_millis(100 * tenth), finished, 10);
        }
        for tenth in 11..=20 {
            finished += 10; // 100/s
            pace.observe(start + Duration::from_millis(100 * tenth), finished, 10);
        }
        let time = pace.time_for(100).expect("measured");
        assert!(time > Duration::from_millis(900), "{time:?}");
    }
}
