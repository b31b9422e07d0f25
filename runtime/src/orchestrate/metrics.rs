//! In-process metrics the orchestrator keeps for `/metrics`.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

const BOUNDS: [f64; 12] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.05, 0.25, 1.0, 10.0, 60.0,
];

/// A Prometheus histogram of task run durations, in seconds.
#[derive(Default)]
pub struct Histogram {
    counts: [AtomicU64; BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl Histogram {
    pub fn observe(&self, seconds: f64) {
        let i = BOUNDS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(BOUNDS.len());
        self.counts[i].fetch_add(1, Ordering::Relaxed);
        self.sum_nanos
            .fetch_add((seconds * 1e9) as u64, Ordering::Relaxed);
    }

    /// Appends the histogram in Prometheus text format.
    pub fn render(&self, out: &mut String) {
        let name = "weir_task_run_duration_seconds";
        let _ = writeln!(
            out,
            "# HELP {name} Task run durations, first attempt to final state."
        );
        let _ = writeln!(out, "# TYPE {name} histogram");
        let mut total = 0;
        for (i, bound) in BOUNDS.iter().enumerate() {
            total += self.counts[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {total}");
        }
        total += self.counts[BOUNDS.len()].load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {total}");
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {total}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_are_cumulative() {
        let h = Histogram::default();
        h.observe(0.00005);
        h.observe(0.003);
        h.observe(100.0);
        let mut out = String::new();
        h.render(&mut out);
        assert!(
            out.contains("weir_task_run_duration_seconds_bucket{le=\"0.0001\"} 1"),
            "{out}"
        );
        assert!(
            out.contains("weir_task_run_duration_seconds_bucket{le=\"0.005\"} 2"),
            "{out}"
        );
        assert!(
            out.contains("weir_task_run_duration_seconds_bucket{le=\"+Inf\"} 3"),
            "{out}"
        );
        assert!(
            out.contains("weir_task_run_duration_seconds_count 3"),
            "{out}"
        );
    }
}
