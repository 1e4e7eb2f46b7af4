//! Hourly rollups: the count, sum, sum of squares, minimum and maximum of one
//! attribute series (name and dataset id) over the instances observed within one UTC
//! hour. Stores keep them beside the history, updated with every instance written, so
//! that an aggregation over whole hours reads one row per hour instead of every
//! instance ([`aggregate_rollups`]); the answers are the same as [`super::aggregate`]
//! gives from the instances.

use super::aggregate::{AggregatedValue, AggregationWindow, Bucket};
use super::query::AggregationMethod;
use super::{IsoDuration, TemporalInstance};
use crate::model::{Attribute, AttributeValue, Attributes};
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use serde_json::json;
use std::collections::BTreeMap;

/// The numbers of one series over one hour.
#[derive(Debug, Clone, PartialEq)]
pub struct HourlyRollup {
    /// The expanded attribute name.
    pub name: String,
    pub dataset_id: Option<String>,
    /// The start of the hour (whole hour, UTC).
    pub hour: DateTime<Utc>,
    /// Instances observed in the hour, numeric or not.
    pub count: u64,
    /// Of those, the ones whose value is a number; the rest are over these only.
    pub numeric_count: u64,
    pub sum: f64,
    pub sum_sq: f64,
    pub min: Option<f64>,
    pub max: Option<f64>,
}

impl HourlyRollup {
    /// The rollup of one instance, `None` when it has no `observedAt` or is a deletion
    /// record (neither counts in an aggregation on `observedAt`).
    pub fn of(instance: &TemporalInstance) -> Option<HourlyRollup> {
        if instance.deleted_at.is_some() {
            return None;
        }
        HourlyRollup::of_attribute(&instance.name, &instance.attribute)
    }

    /// The rollup of one instance of the attribute `name` that is not a deletion
    /// record, `None` when it has no `observedAt`.
    pub fn of_attribute(name: &str, attribute: &Attribute) -> Option<HourlyRollup> {
        let observed = attribute.observed_at?;
        let number = match &attribute.value {
            AttributeValue::Property(v) => v.as_f64(),
            _ => None,
        };
        Some(HourlyRollup {
            name: name.to_owned(),
            dataset_id: attribute.dataset_id.clone(),
            hour: hour_of(observed),
            count: 1,
            numeric_count: u64::from(number.is_some()),
            sum: number.unwrap_or(0.0),
            sum_sq: number.map_or(0.0, |n| n * n),
            min: number,
            max: number,
        })
    }

    /// Adds another rollup of the same series and hour into this one.
    pub fn merge(&mut self, other: &HourlyRollup) {
        self.count += other.count;
        self.numeric_count += other.numeric_count;
        self.sum += other.sum;
        self.sum_sq += other.sum_sq;
        self.min = pick(self.min, other.min, f64::min);
        self.max = pick(self.max, other.max, f64::max);
    }

    /// The rollups of instances, one per series and hour, in (name, dataset id, hour)
    /// order: what a store must hold for these instances.
    pub fn of_all<'a>(
        instances: impl IntoIterator<Item = &'a TemporalInstance>,
    ) -> Vec<HourlyRollup> {
        HourlyRollup::merged(instances.into_iter().filter_map(HourlyRollup::of))
    }

    /// The rollups of an entity's attributes as instances recorded at its creation:
    /// [`Self::of_all`] of the instances [`super::instances_of_change`] gives for it,
    /// without making them.
    pub fn of_entity(attributes: &Attributes) -> Vec<HourlyRollup> {
        HourlyRollup::merged(attributes.iter().flat_map(|(name, instances)| {
            instances
                .iter()
                .filter_map(|attribute| HourlyRollup::of_attribute(name, attribute))
        }))
    }

    /// Rollups merged per series and hour, in (name, dataset id, hour) order.
    fn merged(all: impl IntoIterator<Item = HourlyRollup>) -> Vec<HourlyRollup> {
        let mut rollups: BTreeMap<(String, Option<String>, DateTime<Utc>), HourlyRollup> =
            BTreeMap::new();
        for rollup in all {
            let key = (rollup.name.clone(), rollup.dataset_id.clone(), rollup.hour);
            match rollups.get_mut(&key) {
                Some(existing) => existing.merge(&rollup),
                None => {
                    rollups.insert(key, rollup);
                }
            }
        }
        rollups.into_values().collect()
    }
}

fn pick(a: Option<f64>, b: Option<f64>, f: fn(f64, f64) -> f64) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(f(a, b)),
        (a, b) => a.or(b),
    }
}

/// The start of the UTC hour `time` falls in.
pub fn hour_of(time: DateTime<Utc>) -> DateTime<Utc> {
    time.duration_trunc(TimeDelta::hours(1)).unwrap_or(time)
}

/// The aggregation of one series from its hourly rollups, when they suffice to give
/// exactly what [`super::aggregate`] would give from the instances on `observedAt`:
/// the window starts on a whole hour, ends on one (or is open), the period is a whole
/// number of hours with no calendar part, and the methods are among totalCount, sum,
/// avg, min, max, stddev and sumsq (min and max only over numbers alone). `None` when
/// it cannot; then aggregate the instances.
pub fn aggregate_rollups(
    rollups: &[HourlyRollup],
    methods: &[AggregationMethod],
    period: Option<&IsoDuration>,
    window: AggregationWindow,
) -> Option<Vec<(AggregationMethod, Vec<AggregatedValue>)>> {
    let start = window.start?;
    let whole_hour = |t: DateTime<Utc>| hour_of(t) == t;
    if !whole_hour(start) || !window.end.is_none_or(whole_hour) {
        return None;
    }
    let hours = period?.whole_hours()?;
    if hours == 0 || methods.contains(&AggregationMethod::DistinctCount) {
        return None;
    }
    let extremes = methods
        .iter()
        .any(|m| matches!(m, AggregationMethod::Min | AggregationMethod::Max));
    if extremes && rollups.iter().any(|r| r.numeric_count != r.count) {
        return None;
    }
    let span = TimeDelta::hours(i64::try_from(hours).ok()?);
    let mut buckets: BTreeMap<i64, HourlyRollup> = BTreeMap::new();
    for rollup in rollups {
        if rollup.hour < start || window.end.is_some_and(|end| rollup.hour >= end) {
            continue;
        }
        let index = (rollup.hour - start).num_seconds() / span.num_seconds();
        match buckets.get_mut(&index) {
            Some(bucket) => bucket.merge(rollup),
            None => {
                buckets.insert(index, rollup.clone());
            }
        }
    }
    let results = methods
        .iter()
        .map(|&method| {
            let values = buckets
                .iter()
                .filter_map(|(&index, total)| {
                    let bucket_start = start + span * i32::try_from(index).ok()?;
                    Some(AggregatedValue {
                        value: compute(method, total)?,
                        bucket: Bucket {
                            start: bucket_start,
                            end: bucket_start + span,
                        },
                    })
                })
                .collect();
            (method, values)
        })
        .collect();
    Some(results)
}

fn compute(method: AggregationMethod, total: &HourlyRollup) -> Option<serde_json::Value> {
    let n = total.numeric_count as f64;
    let numeric = total.numeric_count > 0;
    match method {
        AggregationMethod::TotalCount => Some(json!(total.count)),
        AggregationMethod::Sum => numeric.then(|| json!(total.sum)),
        AggregationMethod::Avg => numeric.then(|| json!(total.sum / n)),
        AggregationMethod::SumSq => numeric.then(|| json!(total.sum_sq)),
        AggregationMethod::StdDev => numeric.then(|| {
            if total.numeric_count == 1 {
                return json!(0.0);
            }
            let variance = (total.sum_sq - total.sum * total.sum / n) / (n - 1.0);
            json!(variance.max(0.0).sqrt())
        }),
        AggregationMethod::Min => total.min.map(|m| json!(m)),
        AggregationMethod::Max => total.max.map(|m| json!(m)),
        AggregationMethod::DistinctCount => None,
    }
}
