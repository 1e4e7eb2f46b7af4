use super::*;
use crate::model::{Attribute, AttributeValue};
use chrono::TimeZone;
use serde_json::json;

fn hour(h: i64) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap() + chrono::TimeDelta::hours(h)
}

fn series(name: &str, hours: impl IntoIterator<Item = i64>) -> Vec<TemporalInstance> {
    hours
        .into_iter()
        .map(|h| {
            let mut a = Attribute::new(AttributeValue::Property(json!(h)));
            a.observed_at = Some(hour(h));
            TemporalInstance::new(name, a)
        })
        .collect()
}

fn query(params: &[(&str, &str)]) -> TemporalQuery {
    TemporalQuery::from_params(params.iter().copied()).unwrap()
}

#[test]
fn short_histories_are_not_cut() {
    let mut histories = vec![series("a", 0..5)];
    assert_eq!(paginate(&mut histories, &query(&[]), 5), None);
    assert_eq!(histories[0].len(), 5);
}

#[test]
fn forward_pages_cut_every_series_at_the_earliest_cut() {
    // a: hours 0..20, b: hours 0..40 step 2; a limit of 10 cuts a at 9 and b at 18.
    let mut histories = vec![[series("a", 0..20), series("b", (0..20).map(|h| h * 2))].concat()];
    let range = paginate(&mut histories, &query(&[]), 10).unwrap();
    assert_eq!(
        range,
        ContentRange {
            start: hour(0),
            end: hour(9),
            size: None
        }
    );
    assert!(histories[0]
        .iter()
        .all(|i| i.attribute.observed_at <= Some(hour(9))));
    assert_eq!(histories[0].len(), 10 + 5);
    assert!(range
        .header_value()
        .starts_with("date-time 2020-01-01T00:00:00Z-2020-01-01T09:00:00Z/*"));
}

#[test]
fn a_window_start_is_the_range_start() {
    let mut histories = vec![series("a", 5..30)];
    let q = query(&[("timerel", "after"), ("timeAt", "2020-01-01T01:00:00Z")]);
    let range = paginate(&mut histories, &q, 10).unwrap();
    assert_eq!((range.start, range.end), (hour(1), hour(14)));
}

#[test]
fn backward_pages_with_last_n_run_from_the_window_end_and_give_the_size() {
    let mut histories = vec![series("a", 0..20), series("b", 0..20)];
    let q = query(&[
        ("lastN", "20"),
        ("timerel", "before"),
        ("timeAt", "2020-01-03T00:00:00Z"),
    ]);
    let range = paginate(&mut histories, &q, 10).unwrap();
    assert_eq!(
        range,
        ContentRange {
            start: hour(48),
            end: hour(10),
            size: Some(20)
        }
    );
    assert!(histories.iter().all(|h| h.len() == 10));
    let mut histories = vec![series("a", 0..20)];
    let range = paginate(&mut histories, &query(&[("lastN", "20")]), 10).unwrap();
    assert_eq!((range.start, range.end), (hour(19), hour(10)));
}
