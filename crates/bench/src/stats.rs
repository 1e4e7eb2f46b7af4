//! Latency and throughput of one measured run. Every request's duration is kept and
//! sorted (an exact, HDR-like histogram: at 20 000 requests a sorted vector is cheaper
//! and more honest than bucketing), so percentiles are read straight off it.

use serde::Serialize;
use std::time::Duration;

/// What one target did under one scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Measurement {
    /// The scenario, e.g. `create`.
    pub scenario: String,
    /// What was measured, e.g. `renkei` or `bare-axum`.
    pub target: String,
    /// Operations (requests, or inserts for the raw SQLite baseline) completed.
    pub operations: usize,
    /// How many items each operation carries (100 for batch upserts), so that
    /// throughput can be stated per entity.
    pub items_per_op: usize,
    /// What one item is, e.g. `req` or `entity`.
    pub unit: String,
    pub elapsed_s: f64,
    /// Items per second over the wall-clock time of the whole run.
    pub throughput: f64,
    pub p50_ms: f64,
    pub p95_ms: f64,
    pub p99_ms: f64,
    pub max_ms: f64,
}

impl Measurement {
    /// Summarises a run: `durations` are the per-operation latencies in any order,
    /// `elapsed` the wall-clock time from the first start to the last finish.
    pub fn from_durations(
        scenario: &str,
        target: &str,
        mut durations: Vec<Duration>,
        elapsed: Duration,
        items_per_op: usize,
        unit: &str,
    ) -> Measurement {
        durations.sort_unstable();
        let operations = durations.len();
        let elapsed_s = elapsed.as_secs_f64();
        let items = (operations * items_per_op) as f64;
        let throughput = if elapsed_s > 0.0 {
            items / elapsed_s
        } else {
            0.0
        };
        Measurement {
            scenario: scenario.to_owned(),
            target: target.to_owned(),
            operations,
            items_per_op,
            unit: unit.to_owned(),
            elapsed_s,
            throughput,
            p50_ms: percentile_ms(&durations, 50.0),
            p95_ms: percentile_ms(&durations, 95.0),
            p99_ms: percentile_ms(&durations, 99.0),
            max_ms: durations.last().map_or(0.0, millis),
        }
    }
}

/// The nearest-rank percentile of sorted durations, in milliseconds (0 when empty).
fn percentile_ms(sorted: &[Duration], pct: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((pct / 100.0) * sorted.len() as f64).ceil() as usize;
    let index = rank.clamp(1, sorted.len()) - 1;
    sorted.get(index).map_or(0.0, millis)
}

fn millis(d: &Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

/// A comparison printed under the table: renkei's throughput over a baseline's.
#[derive(Debug, Clone, Serialize)]
pub struct Ratio {
    pub scenario: String,
    /// e.g. `renkei/bare-axum`.
    pub name: String,
    /// Throughput of renkei divided by throughput of the baseline (below 1: slower).
    pub throughput_ratio: f64,
    /// p50 latency of renkei divided by that of the baseline (above 1: slower).
    pub p50_ratio: f64,
}

impl Ratio {
    pub fn between(renkei: &Measurement, baseline: &Measurement) -> Ratio {
        let div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
        Ratio {
            scenario: renkei.scenario.clone(),
            name: format!("{}/{}", renkei.target, baseline.target),
            throughput_ratio: div(renkei.throughput, baseline.throughput),
            p50_ratio: div(renkei.p50_ms, baseline.p50_ms),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_use_nearest_rank_on_sorted_values() {
        let durations: Vec<Duration> = (1..=100).rev().map(Duration::from_millis).collect();
        let m = Measurement::from_durations("s", "t", durations, Duration::from_secs(2), 1, "req");
        assert_eq!(m.operations, 100);
        assert!((m.p50_ms - 50.0).abs() < 1e-9);
        assert!((m.p95_ms - 95.0).abs() < 1e-9);
        assert!((m.p99_ms - 99.0).abs() < 1e-9);
        assert!((m.max_ms - 100.0).abs() < 1e-9);
        assert!((m.throughput - 50.0).abs() < 1e-9);
    }

    #[test]
    fn items_per_op_scales_throughput_and_empty_runs_are_zero() {
        let m = Measurement::from_durations(
            "s",
            "t",
            vec![Duration::from_millis(1); 10],
            Duration::from_secs(1),
            100,
            "entity",
        );
        assert!((m.throughput - 1000.0).abs() < 1e-9);
        let empty = Measurement::from_durations("s", "t", vec![], Duration::ZERO, 1, "req");
        assert_eq!(empty.p99_ms, 0.0);
        assert_eq!(empty.throughput, 0.0);
    }
}
