//! Presenting the results: an aligned plain-text table for people, a JSON document
//! for tools (and for comparing runs), the targets block, and the process's memory.

use crate::error::BenchError;
use crate::goals::{format_number, Goal};
use crate::stats::{Measurement, Ratio};
use serde::Serialize;
use std::fmt::Write as _;
use std::path::Path;

/// Everything one run measured.
#[derive(Debug, Serialize)]
pub struct Report {
    pub backend: String,
    pub requests: usize,
    pub query_requests: usize,
    /// Shelters loaded for `query`/`retrieve` and sent by `batch-upsert`.
    pub entities: usize,
    pub concurrency: usize,
    pub cores: usize,
    pub measurements: Vec<Measurement>,
    pub ratios: Vec<Ratio>,
    pub notes: Vec<String>,
    pub goals: Vec<Goal>,
    /// What the `memory` scenario found, when it ran.
    pub memory: Option<MemoryUse>,
    /// Peak resident set size of the whole process (renkei, baselines and client), KiB.
    pub peak_rss_kib: Option<u64>,
}

/// The `memory` scenario's readings of the process's resident set (`VmRSS`).
#[derive(Debug, Clone, Serialize)]
pub struct MemoryUse {
    /// Entities renkei held when the second reading was taken.
    pub entities: usize,
    /// Right after renkei started over an empty store, before loading (the baseline).
    pub rss_before_kib: u64,
    /// After loading and a few queries.
    pub rss_after_kib: u64,
}

/// The peak resident set size (`VmHWM`) in KiB, where `/proc` provides it.
pub fn peak_rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_status_kib(&status, "VmHWM:")
}

/// Reads a `Key:   1234 kB` line of a `/proc/PID/status` text.
pub fn status_kib(status: &str, key: &str) -> Option<u64> {
    parse_status_kib(status, key)
}

/// Reads a `Key:   1234 kB` line of `/proc/self/status`.
fn parse_status_kib(status: &str, key: &str) -> Option<u64> {
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.trim_start_matches(key)
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

/// KiB as MiB, for printing.
pub fn mib(kib: u64) -> f64 {
    kib as f64 / 1024.0
}

impl Report {
    /// The table, ratios and notes as aligned plain text.
    pub fn to_table(&self) -> String {
        let header = [
            "scenario",
            "target",
            "ops",
            "throughput",
            "p50 ms",
            "p95 ms",
            "p99 ms",
            "max ms",
        ];
        let rows: Vec<[String; 8]> = self
            .measurements
            .iter()
            .map(|m| {
                [
                    m.scenario.clone(),
                    m.target.clone(),
                    m.operations.to_string(),
                    format!("{:.0} {}/s", m.throughput, m.unit),
                    format!("{:.2}", m.p50_ms),
                    format!("{:.2}", m.p95_ms),
                    format!("{:.2}", m.p99_ms),
                    format!("{:.2}", m.max_ms),
                ]
            })
            .collect();
        let mut widths = header.map(str::len);
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        let mut out = String::new();
        let _ = writeln!(
            out,
            "renkei-bench: backend={} requests={} query-requests={} entities={} concurrency={} cores={}",
            self.backend,
            self.requests,
            self.query_requests,
            self.entities,
            self.concurrency,
            self.cores
        );
        let line = |out: &mut String, cells: &[&str]| {
            let mut text = String::new();
            for (i, (cell, w)) in cells.iter().zip(widths).enumerate() {
                // Names align left, numbers right.
                let pad = w.saturating_sub(cell.chars().count());
                if i < 2 {
                    let _ = write!(text, "{cell}{}  ", " ".repeat(pad));
                } else {
                    let _ = write!(text, "{}{cell}  ", " ".repeat(pad));
                }
            }
            let _ = writeln!(out, "{}", text.trim_end());
        };
        line(&mut out, &header);
        for row in &rows {
            line(&mut out, &row.each_ref().map(String::as_str));
        }
        if !self.ratios.is_empty() {
            let _ = writeln!(
                out,
                "\nratios (throughput: above 1 = renkei faster; p50: below 1 = renkei faster)"
            );
            let width = self
                .ratios
                .iter()
                .map(|r| r.scenario.len() + r.name.len() + 1)
                .max()
                .unwrap_or(0);
            for r in &self.ratios {
                let name = format!("{} {}", r.scenario, r.name);
                let _ = writeln!(
                    out,
                    "  {name:<width$}  throughput {:>8.3}x   p50 {:>8.3}x",
                    r.throughput_ratio, r.p50_ratio
                );
            }
        }
        for note in &self.notes {
            let _ = writeln!(out, "note: {note}");
        }
        if let Some(m) = &self.memory {
            let _ = writeln!(
                out,
                "memory: RSS {:.1} MiB with {} entities loaded, {:.1} MiB after start-up (+{:.1} MiB)",
                mib(m.rss_after_kib),
                m.entities,
                mib(m.rss_before_kib),
                mib(m.rss_after_kib.saturating_sub(m.rss_before_kib))
            );
        }
        match self.peak_rss_kib {
            Some(kib) => {
                let _ = writeln!(out, "peak RSS (VmHWM): {:.1} MiB", mib(kib));
            }
            None => {
                let _ = writeln!(out, "peak RSS: unavailable (no /proc/self/status)");
            }
        }
        self.write_goals(&mut out);
        out
    }

    /// The targets block: one line per target, measured value, target, met or not.
    fn write_goals(&self, out: &mut String) {
        if self.goals.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "\ntargets (issues 2 and 4; reported, not asserted: {} of {} met)",
            self.goals.iter().filter(|g| g.met).count(),
            self.goals.len()
        );
        let rows: Vec<[String; 4]> = self
            .goals
            .iter()
            .map(|g| {
                [
                    g.what.clone(),
                    format!("{} {}", format_number(g.measured), g.unit),
                    g.describe_target(),
                    if g.met { "met" } else { "NOT MET" }.to_owned(),
                ]
            })
            .collect();
        let mut widths = [0usize; 4];
        for row in &rows {
            for (w, cell) in widths.iter_mut().zip(row) {
                *w = (*w).max(cell.chars().count());
            }
        }
        for [what, measured, target, verdict] in &rows {
            let pad = |cell: &str, w: usize| " ".repeat(w.saturating_sub(cell.chars().count()));
            let _ = writeln!(
                out,
                "  {what}{}  {}{measured}  target {target}{}  {verdict}",
                pad(what, widths[0]),
                pad(measured, widths[1]),
                pad(target, widths[2]),
            );
        }
    }

    /// Writes the report as JSON to `path`, creating its directory if needed.
    pub fn write_json(&self, path: &Path) -> Result<(), BenchError> {
        let io = |what, source| BenchError::Io {
            what,
            path: path.to_path_buf(),
            source,
        };
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| io("creating the directory of", e))?;
        }
        let text = serde_json::to_string_pretty(self)
            .map_err(|e| io("serialising the report for", std::io::Error::other(e)))?;
        std::fs::write(path, text + "\n").map_err(|e| io("writing", e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn status_lines_are_read_in_kib() {
        let status = "Name:\tx\nVmHWM:\t   12345 kB\nVmRSS:\t  678 kB\n";
        assert_eq!(parse_status_kib(status, "VmHWM:"), Some(12345));
        assert_eq!(parse_status_kib(status, "VmRSS:"), Some(678));
        assert_eq!(parse_status_kib("Name:\tx\n", "VmRSS:"), None);
        assert_eq!(parse_status_kib("VmRSS:\tlots kB\n", "VmRSS:"), None);
    }

    #[test]
    fn table_has_a_row_per_measurement_and_json_round_trips() {
        let m = |t: &str| {
            Measurement::from_durations(
                "create",
                t,
                vec![Duration::from_millis(2); 4],
                Duration::from_secs(1),
                1,
                "req",
            )
        };
        let (r, a) = (m("renkei"), m("bare-axum"));
        let report = Report {
            backend: "sqlite".into(),
            requests: 4,
            query_requests: 1,
            entities: 10,
            concurrency: 2,
            cores: 2,
            ratios: vec![Ratio::between(&r, &a)],
            measurements: vec![r, a],
            notes: vec!["n".into()],
            goals: vec![
                Goal::at_least("create renkei throughput", 12000.0, 10000.0, "req/s"),
                Goal::at_most("memory RSS", 200.0, 143.1, "MiB"),
            ],
            memory: Some(MemoryUse {
                entities: 10,
                rss_before_kib: 1024,
                rss_after_kib: 3072,
            }),
            peak_rss_kib: Some(2048),
        };
        let table = report.to_table();
        assert!(table.contains("bare-axum"));
        assert!(table.contains("create renkei/bare-axum"));
        assert!(table.contains("peak RSS (VmHWM): 2.0 MiB"));
        assert!(table.contains("targets (issues 2 and 4; reported, not asserted: 1 of 2 met)"));
        let lines: Vec<&str> = table.lines().collect();
        assert!(lines
            .iter()
            .any(|l| l.contains("create renkei throughput") && l.ends_with("  met")));
        assert!(lines
            .iter()
            .any(|l| l.contains("memory RSS") && l.ends_with("NOT MET")));
        assert!(table
            .contains("RSS 3.0 MiB with 10 entities loaded, 1.0 MiB after start-up (+2.0 MiB)"));
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/r.json");
        report.write_json(&path).unwrap();
        let back: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back["measurements"][1]["target"], "bare-axum");
        assert_eq!(back["peak_rss_kib"], 2048);
        assert_eq!(back["goals"][1]["bound"], "at_most");
        assert_eq!(back["goals"][1]["met"], false);
    }
}
