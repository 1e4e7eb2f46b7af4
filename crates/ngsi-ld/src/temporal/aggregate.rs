//! The aggregation of one attribute's history (clause 4.5.19): instances are put in
//! consecutive periods of `aggrPeriodDuration` and each requested method is computed
//! per period.
//!
//! Choices where the specification leaves room, to keep answers predictable:
//! - periods start at the window's start (`timeAt` of `after` and `between`), else at
//!   the earliest instance; without a duration there is one period, from that start to
//!   the window's end or else the latest instance;
//! - periods holding no instance are left out, so a window starting years before the
//!   data does not produce thousands of empty entries;
//! - `totalCount` and `distinctCount` count every value; `sum`, `avg`, `stddev` and
//!   `sumsq` use the numeric values only and are left out of a period without any;
//!   `min` and `max` compare numbers, else date-time strings by time, else strings
//!   by code point, else booleans (false before true);
//! - `stddev` is the sample standard deviation (n − 1), 0 for a single value.

use super::query::AggregationMethod;
use super::{IsoDuration, TemporalInstance, TimeProperty, TimeRel};
use crate::model::{AttributeValue, RelationshipObject};
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::cmp::Ordering;
use std::collections::{BTreeMap, HashSet};

/// The bounds periods are laid in: the query's window, each side open when absent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AggregationWindow {
    pub start: Option<DateTime<Utc>>,
    pub end: Option<DateTime<Utc>>,
}

impl From<Option<TimeRel>> for AggregationWindow {
    fn from(timerel: Option<TimeRel>) -> Self {
        AggregationWindow {
            start: timerel.and_then(|t| t.start()),
            end: timerel.and_then(|t| t.end()),
        }
    }
}

/// One period: from `start` (included) to `end` (excluded).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Bucket {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// The result of one method over one period: `[value, start, end]` in the answer.
#[derive(Debug, Clone, PartialEq)]
pub struct AggregatedValue {
    pub value: Value,
    pub bucket: Bucket,
}

/// Aggregates one series (the instances of one attribute and dataset id) with each
/// method, over consecutive periods of `period` within `window`. Instances without
/// `time_property` are not counted. The result has one entry per method, in the order
/// given, each listing its non-empty periods in time order.
pub fn aggregate<'a>(
    instances: impl IntoIterator<Item = &'a TemporalInstance>,
    time_property: TimeProperty,
    methods: &[AggregationMethod],
    period: Option<&IsoDuration>,
    window: AggregationWindow,
) -> Vec<(AggregationMethod, Vec<AggregatedValue>)> {
    let timed: Vec<(DateTime<Utc>, Value)> = instances
        .into_iter()
        .filter_map(|i| {
            Some((
                i.time(time_property)?,
                aggregation_value(&i.attribute.value),
            ))
        })
        .collect();
    let buckets = fill_buckets(&timed, period, window);
    methods
        .iter()
        .map(|&method| {
            let results = buckets
                .iter()
                .filter_map(|(bucket, values)| {
                    Some(AggregatedValue {
                        value: compute(method, values)?,
                        bucket: *bucket,
                    })
                })
                .collect();
            (method, results)
        })
        .collect()
}

/// The values of each non-empty period, in time order.
fn fill_buckets<'a>(
    timed: &'a [(DateTime<Utc>, Value)],
    period: Option<&IsoDuration>,
    window: AggregationWindow,
) -> Vec<(Bucket, Vec<&'a Value>)> {
    let Some(earliest) = timed.iter().map(|(t, _)| *t).min() else {
        return Vec::new();
    };
    let origin = window.start.unwrap_or(earliest);
    let Some(period) = period else {
        let latest = timed.iter().map(|(t, _)| *t).max().unwrap_or(earliest);
        let bucket = Bucket {
            start: origin,
            end: window.end.unwrap_or(latest),
        };
        return vec![(bucket, timed.iter().map(|(_, v)| v).collect())];
    };
    let mut by_index: BTreeMap<u32, Vec<&Value>> = BTreeMap::new();
    for (time, value) in timed {
        if let Some(index) = bucket_index(period, origin, *time) {
            by_index.entry(index).or_default().push(value);
        }
    }
    by_index
        .into_iter()
        .filter_map(|(index, values)| {
            let bucket = Bucket {
                start: period.add_times(origin, index)?,
                end: period.add_times(origin, index.checked_add(1)?)?,
            };
            Some((bucket, values))
        })
        .collect()
}

/// The `k` such that `origin + k·period <= time < origin + (k+1)·period`: guessed from
/// the nominal length, then corrected against the calendar.
fn bucket_index(period: &IsoDuration, origin: DateTime<Utc>, time: DateTime<Utc>) -> Option<u32> {
    let elapsed = (time - origin).num_milliseconds();
    if elapsed < 0 {
        return None;
    }
    let guess = (elapsed as f64 / period.nominal_millis()).floor();
    let mut index = if guess >= f64::from(u32::MAX) {
        u32::MAX - 1
    } else {
        guess as u32
    };
    while index > 0 && period.add_times(origin, index)? > time {
        index -= 1;
    }
    while period.add_times(origin, index.checked_add(1)?)? <= time {
        index += 1;
    }
    Some(index)
}

/// What the methods look at in an instance: the value, object, language map, … of
/// its kind.
fn aggregation_value(value: &AttributeValue) -> Value {
    match value {
        AttributeValue::Property(v)
        | AttributeValue::GeoProperty(v)
        | AttributeValue::JsonProperty(v) => v.clone(),
        AttributeValue::Relationship { object, .. } => match object {
            RelationshipObject::One(o) => json!(o),
            RelationshipObject::Many(os) => json!(os),
        },
        AttributeValue::LanguageProperty(map) => json!(map),
        AttributeValue::VocabProperty(terms) => json!(terms),
        AttributeValue::ListProperty(items) => Value::Array(items.clone()),
        AttributeValue::ListRelationship(items) => json!(items),
    }
}

fn compute(method: AggregationMethod, values: &[&Value]) -> Option<Value> {
    let numbers: Vec<f64> = values.iter().filter_map(|v| v.as_f64()).collect();
    let count = numbers.len() as f64;
    let sum: f64 = numbers.iter().sum();
    match method {
        AggregationMethod::TotalCount => Some(json!(values.len())),
        AggregationMethod::DistinctCount => {
            let distinct: HashSet<String> = values.iter().map(|v| v.to_string()).collect();
            Some(json!(distinct.len()))
        }
        AggregationMethod::Sum => (!numbers.is_empty()).then(|| json!(sum)),
        AggregationMethod::Avg => (!numbers.is_empty()).then(|| json!(sum / count)),
        AggregationMethod::SumSq => {
            (!numbers.is_empty()).then(|| json!(numbers.iter().map(|x| x * x).sum::<f64>()))
        }
        AggregationMethod::StdDev => {
            if numbers.is_empty() {
                return None;
            }
            if numbers.len() == 1 {
                return Some(json!(0.0));
            }
            let mean = sum / count;
            let squares: f64 = numbers.iter().map(|x| (x - mean) * (x - mean)).sum();
            Some(json!((squares / (count - 1.0)).sqrt()))
        }
        AggregationMethod::Min => extreme(values, &numbers, Ordering::Less),
        AggregationMethod::Max => extreme(values, &numbers, Ordering::Greater),
    }
}

/// The least (`Less`) or greatest (`Greater`) value, by the first kind of values the
/// period has: numbers, date-times, strings, booleans.
fn extreme(values: &[&Value], numbers: &[f64], wanted: Ordering) -> Option<Value> {
    fn pick<T: Clone>(
        items: &[T],
        wanted: Ordering,
        cmp: impl Fn(&T, &T) -> Ordering,
    ) -> Option<T> {
        items.iter().cloned().reduce(|best, next| {
            if cmp(&next, &best) == wanted {
                next
            } else {
                best
            }
        })
    }
    if !numbers.is_empty() {
        return pick(numbers, wanted, f64::total_cmp).map(|n| json!(n));
    }
    let strings: Vec<&str> = values.iter().filter_map(|v| v.as_str()).collect();
    if !strings.is_empty() {
        let times: Option<Vec<(DateTime<Utc>, &str)>> = strings
            .iter()
            .map(|s| {
                DateTime::parse_from_rfc3339(s)
                    .ok()
                    .map(|t| (t.with_timezone(&Utc), *s))
            })
            .collect();
        return match times {
            Some(times) => pick(&times, wanted, |a, b| a.0.cmp(&b.0)).map(|(_, s)| json!(s)),
            None => pick(&strings, wanted, |a, b| a.cmp(b)).map(|s| json!(s)),
        };
    }
    let booleans: Vec<bool> = values.iter().filter_map(|v| v.as_bool()).collect();
    pick(&booleans, wanted, bool::cmp).map(|b| json!(b))
}
