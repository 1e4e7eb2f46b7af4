//! The targets issues 2 and 4 set for renkei, checked against what this run measured. This
//! is reporting, not asserting: a missed target is printed as "not met" and the run
//! still succeeds, because absolute numbers depend on the machine (the ratios to the
//! baselines measured alongside are what carries over).

use serde::Serialize;

/// Which side of the target value counts as met.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Bound {
    AtLeast,
    AtMost,
}

impl Bound {
    pub fn symbol(self) -> &'static str {
        match self {
            Bound::AtLeast => "≥",
            Bound::AtMost => "≤",
        }
    }
}

/// One target and how this run fared against it.
#[derive(Debug, Clone, Serialize)]
pub struct Goal {
    /// What is measured, e.g. `create renkei throughput`.
    pub what: String,
    pub measured: f64,
    pub bound: Bound,
    pub target: f64,
    /// e.g. `req/s`, `ms`, `x bare-axum`, `MiB`.
    pub unit: String,
    pub met: bool,
}

impl Goal {
    pub fn new(what: &str, measured: f64, bound: Bound, target: f64, unit: &str) -> Goal {
        // A NaN (a baseline that measured nothing) compares false: not met.
        let met = match bound {
            Bound::AtLeast => measured >= target,
            Bound::AtMost => measured <= target,
        };
        Goal {
            what: what.to_owned(),
            measured,
            bound,
            target,
            unit: unit.to_owned(),
            met,
        }
    }

    pub fn at_least(what: &str, measured: f64, target: f64, unit: &str) -> Goal {
        Goal::new(what, measured, Bound::AtLeast, target, unit)
    }

    pub fn at_most(what: &str, measured: f64, target: f64, unit: &str) -> Goal {
        Goal::new(what, measured, Bound::AtMost, target, unit)
    }

    /// The target as written in notes, e.g. `≥10000 req/s`.
    pub fn describe_target(&self) -> String {
        format!(
            "{}{} {}",
            self.bound.symbol(),
            format_number(self.target),
            self.unit
        )
    }
}

/// Whole numbers without decimals, small ones with up to three.
pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        format!("{x:.0}")
    } else if x.abs() >= 100.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bounds_decide_met_and_nan_is_never_met() {
        assert!(Goal::at_least("a", 10.0, 10.0, "req/s").met);
        assert!(!Goal::at_least("a", 9.9, 10.0, "req/s").met);
        assert!(Goal::at_most("p95", 9.0, 10.0, "ms").met);
        assert!(!Goal::at_most("p95", 10.5, 10.0, "ms").met);
        assert!(!Goal::at_least("r", f64::NAN, 0.5, "x").met);
        assert!(!Goal::at_most("r", f64::NAN, 0.5, "x").met);
        assert_eq!(
            Goal::at_least("a", 1.0, 10000.0, "req/s").describe_target(),
            "≥10000 req/s"
        );
        assert_eq!(format_number(0.25), "0.250");
        assert_eq!(format_number(143.05), "143.1");
    }
}
