//! Tests of ISO durations, the aggregation methods and periods.

use super::*;
use crate::model::AttributeValue;
use serde_json::{json, Value};

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn series(points: &[(Value, &str)]) -> Vec<TemporalInstance> {
    points
        .iter()
        .map(|(value, at)| {
            let mut attribute = Attribute::new(AttributeValue::Property(value.clone()));
            attribute.observed_at = Some(time(at));
            TemporalInstance::new("https://example.org/temperature", attribute)
        })
        .collect()
}

/// `(value, start, end)` of each period of one method.
fn run(
    instances: &[TemporalInstance],
    method: AggregationMethod,
    period: Option<&str>,
    window: AggregationWindow,
) -> Vec<(Value, String, String)> {
    let period = period.map(|p| IsoDuration::parse(p).unwrap());
    let mut results = aggregate(
        instances,
        TimeProperty::ObservedAt,
        &[method],
        period.as_ref(),
        window,
    );
    assert_eq!(results.len(), 1);
    let (returned, values) = results.remove(0);
    assert_eq!(returned, method);
    values
        .into_iter()
        .map(|v| {
            (
                v.value,
                crate::context::format_time(&v.bucket.start),
                crate::context::format_time(&v.bucket.end),
            )
        })
        .collect()
}

fn row(value: Value, start: &str, end: &str) -> (Value, String, String) {
    (value, start.to_owned(), end.to_owned())
}

#[test]
fn average_per_hour_over_a_few_hours() {
    let instances = series(&[
        (json!(10), "2024-04-01T09:00:00Z"),
        (json!(20), "2024-04-01T09:30:00Z"),
        (json!(30), "2024-04-01T09:59:59Z"),
        (json!(5), "2024-04-01T10:00:00Z"),
        (json!(7), "2024-04-01T12:45:00Z"),
    ]);
    let window = AggregationWindow::from(Some(TimeRel::After(time("2024-04-01T09:00:00Z"))));
    assert_eq!(
        run(&instances, AggregationMethod::Avg, Some("PT1H"), window),
        vec![
            row(json!(20.0), "2024-04-01T09:00:00Z", "2024-04-01T10:00:00Z"),
            row(json!(5.0), "2024-04-01T10:00:00Z", "2024-04-01T11:00:00Z"),
            // 11:00–12:00 holds nothing and is left out.
            row(json!(7.0), "2024-04-01T12:00:00Z", "2024-04-01T13:00:00Z"),
        ]
    );
    assert_eq!(
        run(&instances, AggregationMethod::Sum, Some("PT2H"), window),
        vec![
            row(json!(65.0), "2024-04-01T09:00:00Z", "2024-04-01T11:00:00Z"),
            row(json!(7.0), "2024-04-01T11:00:00Z", "2024-04-01T13:00:00Z"),
        ]
    );
    assert_eq!(
        run(
            &instances,
            AggregationMethod::TotalCount,
            None,
            AggregationWindow::default()
        ),
        vec![row(
            json!(5),
            "2024-04-01T09:00:00Z",
            "2024-04-01T12:45:00Z"
        )]
    );
}

#[test]
fn periods_start_at_the_window_start_even_long_before_the_data() {
    // 021_17: timerel=after, timeAt=2020-01-01T12:03:00Z, PT1H; the fuelLevel of the
    // suite's vehicle gives three hourly periods starting at xx:03 in August.
    let instances = series(&[
        (json!(67), "2020-08-01T12:03:00Z"),
        (json!(53), "2020-08-01T13:05:00Z"),
        (json!(40), "2020-08-01T14:07:00Z"),
    ]);
    let window = AggregationWindow::from(Some(TimeRel::After(time("2020-01-01T12:03:00Z"))));
    assert_eq!(
        run(&instances, AggregationMethod::Avg, Some("PT1H"), window),
        vec![
            row(json!(67.0), "2020-08-01T12:03:00Z", "2020-08-01T13:03:00Z"),
            row(json!(53.0), "2020-08-01T13:03:00Z", "2020-08-01T14:03:00Z"),
            row(json!(40.0), "2020-08-01T14:03:00Z", "2020-08-01T15:03:00Z"),
        ]
    );
    assert_eq!(
        run(
            &instances,
            AggregationMethod::Min,
            Some("P1D"),
            AggregationWindow::default()
        ),
        vec![row(
            json!(40.0),
            "2020-08-01T12:03:00Z",
            "2020-08-02T12:03:00Z"
        )]
    );
    assert_eq!(
        run(&instances, AggregationMethod::Max, Some("P1M"), window),
        vec![row(
            json!(67.0),
            "2020-08-01T12:03:00Z",
            "2020-09-01T12:03:00Z"
        )]
    );
}

#[test]
fn spread_and_counting_methods() {
    let instances = series(&[
        (json!(2), "2024-04-01T09:00:00Z"),
        (json!(4), "2024-04-01T09:01:00Z"),
        (json!(4), "2024-04-01T09:02:00Z"),
        (json!(4), "2024-04-01T09:03:00Z"),
        (json!(5), "2024-04-01T09:04:00Z"),
        (json!(5), "2024-04-01T09:05:00Z"),
        (json!(7), "2024-04-01T09:06:00Z"),
        (json!(9), "2024-04-01T09:07:00Z"),
    ]);
    let only = |method| {
        run(&instances, method, None, AggregationWindow::default())[0]
            .0
            .clone()
    };
    // Mean 5, squared deviations sum to 32: sample variance 32 / 7.
    let stddev = only(AggregationMethod::StdDev).as_f64().unwrap();
    assert!((stddev - (32.0_f64 / 7.0).sqrt()).abs() < 1e-12, "{stddev}");
    assert_eq!(only(AggregationMethod::SumSq), json!(232.0));
    assert_eq!(only(AggregationMethod::DistinctCount), json!(5));
    assert_eq!(only(AggregationMethod::TotalCount), json!(8));
    let single = series(&[(json!(3), "2024-04-01T09:00:00Z")]);
    assert_eq!(
        run(
            &single,
            AggregationMethod::StdDev,
            None,
            AggregationWindow::default()
        )[0]
        .0,
        json!(0.0)
    );
}

#[test]
fn non_numeric_values() {
    let instances = series(&[
        (json!("open"), "2024-04-01T09:00:00Z"),
        (json!("closed"), "2024-04-01T09:10:00Z"),
        (json!("open"), "2024-04-01T09:20:00Z"),
    ]);
    let window = AggregationWindow::default();
    // Numeric methods have nothing to work on.
    assert!(run(&instances, AggregationMethod::Avg, Some("PT1H"), window).is_empty());
    assert!(run(&instances, AggregationMethod::StdDev, None, window).is_empty());
    assert_eq!(
        run(&instances, AggregationMethod::DistinctCount, None, window)[0].0,
        json!(2)
    );
    assert_eq!(
        run(&instances, AggregationMethod::Min, None, window)[0].0,
        json!("closed")
    );
    assert_eq!(
        run(&instances, AggregationMethod::Max, None, window)[0].0,
        json!("open")
    );
    // Date-times compare as times, not as text.
    let times = series(&[
        (json!("2024-04-01T10:00:00+09:00"), "2024-04-01T09:00:00Z"),
        (json!("2024-04-01T02:00:00Z"), "2024-04-01T09:10:00Z"),
    ]);
    assert_eq!(
        run(&times, AggregationMethod::Max, None, window)[0].0,
        json!("2024-04-01T02:00:00Z")
    );
    assert_eq!(
        run(&times, AggregationMethod::Min, None, window)[0].0,
        json!("2024-04-01T10:00:00+09:00")
    );
    // Mixed: numbers win for min, strings are ignored by sum.
    let mixed = series(&[
        (json!("n/a"), "2024-04-01T09:00:00Z"),
        (json!(3.5), "2024-04-01T09:10:00Z"),
    ]);
    assert_eq!(
        run(&mixed, AggregationMethod::Min, None, window)[0].0,
        json!(3.5)
    );
    assert_eq!(
        run(&mixed, AggregationMethod::Sum, None, window)[0].0,
        json!(3.5)
    );
    assert_eq!(
        run(&mixed, AggregationMethod::TotalCount, None, window)[0].0,
        json!(2)
    );
    // Nothing to aggregate, nothing shown.
    assert!(run(&[], AggregationMethod::TotalCount, Some("P1D"), window).is_empty());
}

#[test]
fn iso_durations() {
    let d = |text| IsoDuration::parse(text).unwrap();
    assert_eq!(
        d("P1D"),
        IsoDuration {
            months: 0,
            days: 1,
            millis: 0
        }
    );
    assert_eq!(
        d("PT1H"),
        IsoDuration {
            months: 0,
            days: 0,
            millis: 3_600_000
        }
    );
    assert_eq!(
        d("P1M"),
        IsoDuration {
            months: 1,
            days: 0,
            millis: 0
        }
    );
    assert_eq!(
        d("P2W"),
        IsoDuration {
            months: 0,
            days: 14,
            millis: 0
        }
    );
    assert_eq!(
        d("P1Y2M3DT4H5M6.5S"),
        IsoDuration {
            months: 14,
            days: 3,
            millis: 14_706_500
        }
    );
    assert_eq!(d("PT0.25S").millis, 250);
    assert_eq!(d("PT90M").to_string(), "PT5400S");
    for bad in [
        "", "P", "PT", "1D", "P1H", "PT1D", "P1.5D", "P0D", "PT0S", "P1D1D", "P1D2M", "PxD", "P1",
        "PT1H1",
    ] {
        assert!(IsoDuration::parse(bad).is_err(), "{bad}");
    }
    // Months are calendar months: 31 January + 1 month is the end of February, and
    // the third period starts on 31 March again (no drift).
    let month = d("P1M");
    let start = time("2024-01-31T00:00:00Z");
    assert_eq!(
        month.add_times(start, 1),
        Some(time("2024-02-29T00:00:00Z"))
    );
    assert_eq!(
        month.add_times(start, 2),
        Some(time("2024-03-31T00:00:00Z"))
    );
    assert_eq!(
        d("P1Y").add_times(time("2024-02-29T12:00:00Z"), 1),
        Some(time("2025-02-28T12:00:00Z"))
    );
    assert_eq!(
        d("PT1H").add_times(start, 3),
        Some(time("2024-01-31T03:00:00Z"))
    );
}
