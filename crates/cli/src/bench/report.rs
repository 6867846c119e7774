//! What one phase measured: joined from the acknowledgements and outcomes, printed, and
//! written as CSV.

use std::time::{Duration, Instant};

use anyhow::{Context, Result};

use super::drive::Tracked;
use super::{Options, Pace};

/// What one phase measured.
#[derive(Debug, Default)]
pub(super) struct PhaseReport {
    pub(super) sent: u64,
    pub(super) publish_errors: u64,
    pub(super) first_error: Option<String>,
    pub(super) approved: u64,
    pub(super) rejected: u64,
    /// Orders acknowledged by the broker without an outcome in time.
    pub(super) unfinished: Vec<String>,
    pub(super) elapsed: Duration,
    pub(super) publishing: Duration,
    /// Finished orders / (first acknowledgement .. last outcome).
    pub(super) throughput: f64,
    /// Publish (acknowledgement) to outcome, in ms, sorted.
    pub(super) latencies_ms: Vec<f64>,
    /// The order that took longest, and how long (ms): where to look for the tail.
    pub(super) slowest: Option<(String, f64)>,
    /// Every order: (id, acknowledged ms after the phase's first, latency ms, outcome).
    pub(super) timeline: Vec<(String, f64, Option<f64>, &'static str)>,
}

/// Writes the phases' orders to `path` as CSV, in the order they were acknowledged.
pub(super) fn write_csv(path: &std::path::Path, phases: &[(&str, &PhaseReport)]) -> Result<()> {
    use std::fmt::Write as _;
    let mut text = String::from("phase,order_id,acked_ms,latency_ms,outcome\n");
    for (label, report) in phases {
        let mut rows: Vec<_> = report.timeline.iter().collect();
        rows.sort_by(|a, b| a.1.total_cmp(&b.1));
        for (order, acked, latency, outcome) in rows {
            let latency = latency.map(|ms| format!("{ms:.1}")).unwrap_or_default();
            // Writing to a String cannot fail.
            let _ = writeln!(text, "{label},{order},{acked:.1},{latency},{outcome}");
        }
    }
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
    eprintln!("every order: {}", path.display());
    Ok(())
}

impl PhaseReport {
    /// Joins the acknowledgements and outcomes `tracked` holds: counts, latencies, the
    /// slowest order, the timeline and the throughput.
    pub(super) fn tally(&mut self, tracked: &Tracked) {
        let first_ack = tracked.acked.values().min().copied();
        let since_first =
            |at: &Instant| first_ack.map_or(0.0, |first| ms(at.saturating_duration_since(first)));
        let mut last_outcome: Option<Instant> = None;
        for (key, acked) in &tracked.acked {
            let outcome = tracked.outcome.get(key);
            let latency = outcome.map(|(at, _)| ms(at.saturating_duration_since(*acked)));
            let label = match outcome {
                Some((_, true)) => "approved",
                Some((_, false)) => "rejected",
                None => "unfinished",
            };
            self.timeline
                .push((key.clone(), since_first(acked), latency, label));
            let (Some((at, approved)), Some(latency)) = (outcome, latency) else {
                self.unfinished.push(key.clone());
                continue;
            };
            self.latencies_ms.push(latency);
            if self
                .slowest
                .as_ref()
                .is_none_or(|(_, most)| latency > *most)
            {
                self.slowest = Some((key.clone(), latency));
            }
            last_outcome = Some(last_outcome.map_or(*at, |l| l.max(*at)));
            if *approved {
                self.approved += 1;
            } else {
                self.rejected += 1;
            }
        }
        self.latencies_ms.sort_by(f64::total_cmp);
        self.throughput = match (first_ack, last_outcome) {
            (Some(first), Some(last)) if last > first => {
                self.finished() as f64 / last.duration_since(first).as_secs_f64()
            }
            _ => 0.0,
        };
    }

    pub(super) fn finished(&self) -> u64 {
        self.approved + self.rejected
    }

    pub(super) fn percentile(&self, p: f64) -> f64 {
        percentile(&self.latencies_ms, p)
    }

    pub(super) fn latency_line(&self) -> String {
        if self.latencies_ms.is_empty() {
            return "p50 - ms, p95 - ms, p99 - ms, max - ms (no order finished)".into();
        }
        format!(
            "p50 {:.0} ms, p95 {:.0} ms, p99 {:.0} ms, max {:.0} ms",
            self.percentile(50.0),
            self.percentile(95.0),
            self.percentile(99.0),
            self.percentile(100.0)
        )
    }
}

fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

/// Nearest-rank percentile of sorted values.
pub(super) fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

pub(super) fn print_report(
    label: &str,
    pace: Pace,
    options: &Options,
    report: &PhaseReport,
) -> Result<()> {
    out!("");
    match pace {
        // A paced phase's label says its rate.
        Pace::Max => out!("== {label} (max, {} in flight)", options.concurrency),
        Pace::Rate(_) => out!("== {label}"),
    }
    out!(
        "orders sent:   {} (acknowledged by the broker; publish errors: {})",
        report.sent,
        report.publish_errors
    );
    if let Some(error) = &report.first_error {
        out!("first publish error: {error}");
    }
    out!(
        "finished:      {} (approved {}, rejected {}), unfinished {}",
        report.finished(),
        report.approved,
        report.rejected,
        report.unfinished.len()
    );
    out!(
        "elapsed:       {:.1} s (publishing {:.1} s)",
        report.elapsed.as_secs_f64(),
        report.publishing.as_secs_f64()
    );
    out!(
        "throughput:    {:.1} orders/s (finished orders / first publish to last outcome)",
        report.throughput
    );
    out!(
        "latency:       {} (publish to outcome)",
        report.latency_line()
    );
    if let Some((order, latency)) = &report.slowest {
        out!("slowest:       {order}, {latency:.0} ms: its hops with ftgo order show {order}");
    }
    if !report.unfinished.is_empty() {
        let mut examples: Vec<&str> = report.unfinished.iter().map(String::as_str).collect();
        examples.sort_unstable();
        examples.truncate(5);
        out!(
            "unfinished:    {} order(s) without OrderApproved or OrderRejected within {} after the last publish, e.g. {}",
            report.unfinished.len(),
            humantime::format_duration(options.timeout),
            examples.join(", ")
        );
        out!(
            "  see how far one got: ftgo order show {}; are the services running? deploy/local/services status; \
             their groups' lag: ftgo topics",
            examples.first().copied().unwrap_or("ORDER_ID")
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_are_nearest_rank() {
        let values: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&values, 50.0), 50.0);
        assert_eq!(percentile(&values, 99.0), 99.0);
        assert_eq!(percentile(&values, 100.0), 100.0);
        assert_eq!(percentile(&[7.0], 50.0), 7.0);
        assert_eq!(percentile(&[], 50.0), 0.0);
    }

    #[test]
    fn the_csv_lists_every_order_in_the_order_it_was_acknowledged() {
        let report = PhaseReport {
            timeline: vec![
                ("b".into(), 20.0, None, "unfinished"),
                ("a".into(), 10.0, Some(105.25), "approved"),
            ],
            ..PhaseReport::default()
        };
        let path = std::env::temp_dir().join(format!("ftgo-bench-{}.csv", std::process::id()));
        write_csv(&path, &[("half", &report)]).expect("written");
        let text = std::fs::read_to_string(&path).expect("readable");
        let _ = std::fs::remove_file(&path);
        assert_eq!(
            text,
            "phase,order_id,acked_ms,latency_ms,outcome\n\
             half,a,10.0,105.2,approved\n\
             half,b,20.0,,unfinished\n"
        );
    }
}
