use super::*;
use crate::model::{Attribute, AttributeValue};
use chrono::TimeZone;
use proptest::prelude::*;
use serde_json::{json, Value};

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 1, 0, 0, 0).unwrap()
}

fn instance(value: Value, seconds: i64) -> TemporalInstance {
    let mut attribute = Attribute::new(AttributeValue::Property(value));
    attribute.observed_at = Some(start() + chrono::TimeDelta::seconds(seconds));
    TemporalInstance::new("https://ex.org/level", attribute)
}

fn close(a: &Value, b: &Value) -> bool {
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => (x - y).abs() <= 1e-6 * (1.0 + x.abs().max(y.abs())),
        _ => a == b,
    }
}

const NUMERIC_METHODS: [AggregationMethod; 7] = [
    AggregationMethod::TotalCount,
    AggregationMethod::Sum,
    AggregationMethod::Avg,
    AggregationMethod::Min,
    AggregationMethod::Max,
    AggregationMethod::StdDev,
    AggregationMethod::SumSq,
];

proptest! {
    /// Aggregating rollups gives what aggregating the instances gives, whenever the
    /// rollup path accepts the request.
    #[test]
    fn rollups_aggregate_like_the_instances(
        points in proptest::collection::vec((-1000i64..1000, 0i64..(10 * 24 * 3600)), 1..200),
        hours in prop::sample::select(vec!["PT1H", "PT3H", "P1D", "PT90M"]),
        window_hours in 0i64..48,
    ) {
        let instances: Vec<_> = points.iter().map(|(v, s)| instance(json!(*v), *s)).collect();
        let period = IsoDuration::parse(hours).unwrap();
        let window = AggregationWindow {
            start: Some(start() + chrono::TimeDelta::hours(window_hours)),
            end: Some(start() + chrono::TimeDelta::hours(window_hours + 24 * 5)),
        };
        let rollups = HourlyRollup::of_all(&instances);
        let fast = aggregate_rollups(&rollups, &NUMERIC_METHODS, Some(&period), window);
        if hours == "PT90M" {
            prop_assert!(fast.is_none());
            return Ok(());
        }
        let fast = fast.unwrap();
        // As a store does, the instances are selected by the window first.
        let (from, to) = (window.start.unwrap(), window.end.unwrap());
        let selected: Vec<_> = instances
            .iter()
            .filter(|i| i.attribute.observed_at.is_some_and(|t| from <= t && t < to))
            .collect();
        let slow = aggregate(selected, TimeProperty::ObservedAt, &NUMERIC_METHODS, Some(&period), window);
        prop_assert_eq!(fast.len(), slow.len());
        for ((m1, a), (m2, b)) in fast.iter().zip(&slow) {
            prop_assert_eq!(m1, m2);
            prop_assert_eq!(a.len(), b.len(), "{:?}", m1);
            for (x, y) in a.iter().zip(b) {
                prop_assert_eq!(x.bucket, y.bucket);
                prop_assert!(close(&x.value, &y.value), "{:?}: {} vs {}", m1, x.value, y.value);
            }
        }
    }
}

#[test]
fn rollups_refuse_what_they_cannot_answer_exactly() {
    let instances = [instance(json!(1), 10), instance(json!("high"), 20)];
    let rollups = HourlyRollup::of_all(&instances);
    let hourly = IsoDuration::parse("PT1H").unwrap();
    let aligned = AggregationWindow {
        start: Some(start()),
        end: None,
    };
    let unaligned = AggregationWindow {
        start: Some(start() + chrono::TimeDelta::minutes(5)),
        end: None,
    };
    let sum = [AggregationMethod::Sum];
    assert!(aggregate_rollups(&rollups, &sum, Some(&hourly), aligned).is_some());
    assert!(aggregate_rollups(&rollups, &sum, Some(&hourly), unaligned).is_none());
    assert!(aggregate_rollups(&rollups, &sum, None, aligned).is_none());
    assert!(aggregate_rollups(
        &rollups,
        &sum,
        Some(&IsoDuration::parse("P1M").unwrap()),
        aligned
    )
    .is_none());
    assert!(aggregate_rollups(
        &rollups,
        &[AggregationMethod::DistinctCount],
        Some(&hourly),
        aligned
    )
    .is_none());
    // A string among the values: min and max compare otherwise than on numbers.
    assert!(
        aggregate_rollups(&rollups, &[AggregationMethod::Max], Some(&hourly), aligned).is_none()
    );
}

#[test]
fn deletion_records_and_unobserved_instances_have_no_rollup() {
    let mut unobserved = instance(json!(1), 0);
    unobserved.attribute.observed_at = None;
    let mut deleted = instance(json!(NGSI_LD_NULL), 0);
    deleted.deleted_at = Some(start());
    assert_eq!(HourlyRollup::of(&unobserved), None);
    assert_eq!(HourlyRollup::of(&deleted), None);
    let merged = HourlyRollup::of_all(&[
        instance(json!(2), 1),
        instance(json!(4), 3599),
        instance(json!(8), 3600),
    ]);
    assert_eq!(merged.len(), 2);
    assert_eq!(
        (merged[0].count, merged[0].sum, merged[0].min, merged[0].max),
        (2, 6.0, Some(2.0), Some(4.0))
    );
    assert_eq!(merged[1].hour, start() + chrono::TimeDelta::hours(1));
}
