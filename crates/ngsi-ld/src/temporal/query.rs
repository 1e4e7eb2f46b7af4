//! The temporal query parameters of Retrieve and Query Temporal Evolution (clauses
//! 5.7.3, 5.7.4, 6.19.3.1 and 6.18.3.2) read into a [`TemporalQuery`], and the
//! selection of instances it asks for: the time window on the chosen time property,
//! then the last N instances.
//!
//! Windows are half-open so that they fit together: `before` is `t < timeAt`, `after`
//! is `t >= timeAt`, `between` is `timeAt <= t < endTimeAt`.

use super::{IsoDuration, TemporalInstance, TimeProperty};
use crate::NgsiError;
use chrono::{DateTime, Utc};
use std::collections::HashMap;

/// The time window of a temporal query (`timerel` with `timeAt` and `endTimeAt`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeRel {
    Before(DateTime<Utc>),
    After(DateTime<Utc>),
    Between(DateTime<Utc>, DateTime<Utc>),
}

impl TimeRel {
    /// Whether `time` falls in the window.
    pub fn contains(&self, time: DateTime<Utc>) -> bool {
        match *self {
            TimeRel::Before(at) => time < at,
            TimeRel::After(at) => time >= at,
            TimeRel::Between(start, end) => start <= time && time < end,
        }
    }

    /// The first instant of the window, when it has one.
    pub fn start(&self) -> Option<DateTime<Utc>> {
        match *self {
            TimeRel::Before(_) => None,
            TimeRel::After(at) | TimeRel::Between(at, _) => Some(at),
        }
    }

    /// The instant the window ends (excluded), when it has one.
    pub fn end(&self) -> Option<DateTime<Utc>> {
        match *self {
            TimeRel::Before(at) | TimeRel::Between(_, at) => Some(at),
            TimeRel::After(_) => None,
        }
    }
}

/// An aggregation function of the aggregated temporal representation (clause 4.5.19).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AggregationMethod {
    TotalCount,
    DistinctCount,
    Sum,
    Avg,
    Min,
    Max,
    StdDev,
    SumSq,
}

impl AggregationMethod {
    pub const ALL: [AggregationMethod; 8] = [
        AggregationMethod::TotalCount,
        AggregationMethod::DistinctCount,
        AggregationMethod::Sum,
        AggregationMethod::Avg,
        AggregationMethod::Min,
        AggregationMethod::Max,
        AggregationMethod::StdDev,
        AggregationMethod::SumSq,
    ];

    /// The name in `aggrMethods` and the member of the aggregated attribute.
    pub fn as_str(self) -> &'static str {
        match self {
            AggregationMethod::TotalCount => "totalCount",
            AggregationMethod::DistinctCount => "distinctCount",
            AggregationMethod::Sum => "sum",
            AggregationMethod::Avg => "avg",
            AggregationMethod::Min => "min",
            AggregationMethod::Max => "max",
            AggregationMethod::StdDev => "stddev",
            AggregationMethod::SumSq => "sumsq",
        }
    }

    pub fn parse(name: &str) -> Option<AggregationMethod> {
        Self::ALL.into_iter().find(|m| m.as_str() == name)
    }
}

/// What the aggregated representation computes: the methods in the order asked, over
/// consecutive periods of `period` (one period over the whole window without it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregation {
    pub methods: Vec<AggregationMethod>,
    pub period: Option<IsoDuration>,
}

/// Which temporal representation an answer uses (clauses 4.5.7, 4.5.8, 4.5.19).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TemporalForm {
    /// Every attribute as the array of its instances.
    #[default]
    Normalized,
    /// `options=temporalValues`: `values` (`objects`, `languageMaps`, …) as
    /// `[value, time]` pairs.
    TemporalValues,
    /// `options=aggregatedValues`: one member per method of `[value, start, end]`.
    Aggregated(Aggregation),
}

/// The temporal part of a Retrieve or Query Temporal Evolution request.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TemporalQuery {
    /// The time window; `None` asks for the whole history.
    pub timerel: Option<TimeRel>,
    /// The time the window and the ordering apply to (`observedAt` by default).
    pub time_property: TimeProperty,
    /// Only the last N instances of each attribute (and dataset id).
    pub last_n: Option<usize>,
    pub form: TemporalForm,
}

fn bad(detail: impl Into<String>) -> NgsiError {
    NgsiError::bad_request_data(detail)
}

const TEMPORAL_PARAMETERS: &[&str] = &[
    "timerel",
    "timeAt",
    "endTimeAt",
    "timeproperty",
    "lastN",
    "aggrMethods",
    "aggrPeriodDuration",
];

impl TemporalQuery {
    /// Reads the temporal parameters from a request's query parameters, given as
    /// decoded (name, value) pairs; the other parameters (`type`, `q`, `attrs`, …) are
    /// left to the caller, and so are the other `options`/`format` values (`sysAttrs`,
    /// `keyValues`, …), which it must check itself. Empty values count as absent.
    ///
    /// Every refusal is a `BadRequestData` naming the parameter: an unknown `timerel`
    /// or `timeproperty`, `timerel` without `timeAt`, `between` without `endTimeAt` or
    /// with `endTimeAt` not after `timeAt`, `timeAt` without `timerel`, a `lastN` that
    /// is not a positive integer, both `temporalValues` and `aggregatedValues`,
    /// `aggregatedValues` without `aggrMethods`, `aggrMethods` or `aggrPeriodDuration`
    /// without `aggregatedValues`, an unknown method or a bad duration. A `endTimeAt`
    /// beside `before` or `after` is ignored.
    pub fn from_params<'a, I>(params: I) -> Result<TemporalQuery, NgsiError>
    where
        I: IntoIterator<Item = (&'a str, &'a str)>,
    {
        let mut single: HashMap<&str, &str> = HashMap::new();
        let mut temporal_values = false;
        let mut aggregated_values = false;
        for (name, value) in params {
            if value.is_empty() {
                continue;
            }
            match name {
                "options" | "format" => {
                    for token in value.split(',').map(str::trim) {
                        match token {
                            "temporalValues" => temporal_values = true,
                            "aggregatedValues" => aggregated_values = true,
                            _ => {}
                        }
                    }
                }
                _ if TEMPORAL_PARAMETERS.contains(&name) && single.contains_key(name) => {
                    return Err(bad(format!("the parameter '{name}' is given twice")));
                }
                _ if TEMPORAL_PARAMETERS.contains(&name) => {
                    single.insert(name, value);
                }
                _ => {}
            }
        }
        if temporal_values && aggregated_values {
            return Err(bad(
                "options: temporalValues and aggregatedValues cannot be asked for together",
            ));
        }
        let time_at = single
            .get("timeAt")
            .map(|v| parse_time("timeAt", v))
            .transpose()?;
        let timerel = match single.get("timerel").copied() {
            None if time_at.is_some() => {
                return Err(bad(
                    "timeAt is given without timerel (before, after or between)",
                ))
            }
            None => None,
            Some(relation) => {
                let at = time_at.ok_or_else(|| {
                    bad(format!("timerel={relation} needs timeAt (a date-time such as 2024-04-01T09:00:00Z)"))
                })?;
                Some(match relation {
                    "before" => TimeRel::Before(at),
                    "after" => TimeRel::After(at),
                    "between" => {
                        let end = single
                            .get("endTimeAt")
                            .ok_or_else(|| bad("timerel=between needs endTimeAt"))
                            .and_then(|v| parse_time("endTimeAt", v))?;
                        if end <= at {
                            return Err(bad("endTimeAt must be later than timeAt"));
                        }
                        TimeRel::Between(at, end)
                    }
                    other => {
                        return Err(bad(format!(
                            "timerel '{other}' is not one of before, after, between"
                        )))
                    }
                })
            }
        };
        let time_property = match single.get("timeproperty").copied() {
            None => TimeProperty::ObservedAt,
            Some("observedAt") => TimeProperty::ObservedAt,
            Some("createdAt") => TimeProperty::CreatedAt,
            Some("modifiedAt") => TimeProperty::ModifiedAt,
            Some("deletedAt") => TimeProperty::DeletedAt,
            Some(other) => {
                return Err(bad(format!(
                "timeproperty '{other}' is not one of observedAt, createdAt, modifiedAt, deletedAt"
            )))
            }
        };
        let last_n = match single.get("lastN") {
            None => None,
            Some(text) => match text.parse::<usize>() {
                Ok(n) if n > 0 => Some(n),
                _ => {
                    return Err(bad(format!(
                        "lastN must be a positive integer, not '{text}'"
                    )))
                }
            },
        };
        let methods = single.get("aggrMethods");
        let period = single.get("aggrPeriodDuration");
        let form = if aggregated_values {
            let methods = methods.ok_or_else(|| {
                bad("aggregatedValues needs aggrMethods (totalCount, distinctCount, sum, avg, min, max, stddev, sumsq)")
            })?;
            Aggregation {
                methods: parse_methods(methods)?,
                period: period
                    .map(|p| {
                        IsoDuration::parse(p).map_err(|e| bad(format!("aggrPeriodDuration: {e}")))
                    })
                    .transpose()?,
            }
            .into()
        } else {
            if methods.is_some() || period.is_some() {
                return Err(bad(
                    "aggrMethods and aggrPeriodDuration apply only with options=aggregatedValues",
                ));
            }
            if temporal_values {
                TemporalForm::TemporalValues
            } else {
                TemporalForm::Normalized
            }
        };
        Ok(TemporalQuery {
            timerel,
            time_property,
            last_n,
            form,
        })
    }

    /// Whether the instance has the query's time property and it falls in the window.
    pub fn selects(&self, instance: &TemporalInstance) -> bool {
        instance
            .time(self.time_property)
            .is_some_and(|t| self.timerel.is_none_or(|window| window.contains(t)))
    }

    /// Keeps, of each attribute and dataset id, the last `lastN` instances by the time
    /// property, and returns all in ascending order of that time (instances without
    /// it first), as the answers show them. Without `lastN` it only sorts.
    pub fn apply_last_n(&self, mut instances: Vec<TemporalInstance>) -> Vec<TemporalInstance> {
        let property = self.time_property;
        instances.sort_by_key(|i| i.time(property));
        let Some(n) = self.last_n else {
            return instances;
        };
        let mut kept_per_series: HashMap<(String, Option<String>), usize> = HashMap::new();
        let mut keep = vec![false; instances.len()];
        for (index, instance) in instances.iter().enumerate().rev() {
            let key = (instance.name.clone(), instance.attribute.dataset_id.clone());
            let kept = kept_per_series.entry(key).or_default();
            if *kept < n {
                *kept += 1;
                keep[index] = true;
            }
        }
        let mut keep = keep.into_iter();
        instances.retain(|_| keep.next().unwrap_or(false));
        instances
    }

    /// The window selection and then [`apply_last_n`](Self::apply_last_n): what a
    /// store that keeps every instance hands to [`encode_temporal`](super::encode_temporal).
    pub fn select(
        &self,
        instances: impl IntoIterator<Item = TemporalInstance>,
    ) -> Vec<TemporalInstance> {
        self.apply_last_n(instances.into_iter().filter(|i| self.selects(i)).collect())
    }
}

impl From<Aggregation> for TemporalForm {
    fn from(aggregation: Aggregation) -> Self {
        TemporalForm::Aggregated(aggregation)
    }
}

fn parse_time(parameter: &str, text: &str) -> Result<DateTime<Utc>, NgsiError> {
    DateTime::parse_from_rfc3339(text)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| {
            bad(format!(
                "{parameter} must be a date-time such as 2024-04-01T09:00:00Z, not '{text}'"
            ))
        })
}

fn parse_methods(text: &str) -> Result<Vec<AggregationMethod>, NgsiError> {
    let mut methods = Vec::new();
    for name in text.split(',').map(str::trim) {
        let method = AggregationMethod::parse(name).ok_or_else(|| {
            bad(format!(
                "aggrMethods: '{name}' is not one of totalCount, distinctCount, sum, avg, min, max, stddev, sumsq"
            ))
        })?;
        if !methods.contains(&method) {
            methods.push(method);
        }
    }
    Ok(methods)
}
