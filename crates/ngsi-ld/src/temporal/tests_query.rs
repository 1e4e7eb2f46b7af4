//! Tests of the temporal query parameters and of instance selection.

use super::*;
use crate::model::AttributeValue;
use crate::ProblemType;
use serde_json::{json, Value};

fn time(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap()
        .with_timezone(&Utc)
}

fn observed(name: &str, value: Value, at: &str) -> TemporalInstance {
    let mut attribute = Attribute::new(AttributeValue::Property(value));
    attribute.observed_at = Some(time(at));
    TemporalInstance::new(name, attribute)
}

fn parse(params: &[(&str, &str)]) -> Result<TemporalQuery, NgsiError> {
    TemporalQuery::from_params(params.iter().copied())
}

use crate::NgsiError;

fn refused(params: &[(&str, &str)], needle: &str) {
    let err = parse(params).unwrap_err();
    assert_eq!(err.problem, ProblemType::BadRequestData, "{params:?}");
    assert!(err.detail.contains(needle), "{params:?}: {}", err.detail);
}

#[test]
fn no_parameters_ask_for_the_whole_normalized_history() {
    let query = parse(&[("type", "Vehicle"), ("options", "sysAttrs")]).unwrap();
    assert_eq!(query, TemporalQuery::default());
    assert_eq!(query.time_property, TimeProperty::ObservedAt);
}

#[test]
fn timerel_with_its_times() {
    let t = |s| time(s);
    let query = parse(&[("timerel", "before"), ("timeAt", "2020-08-01T12:05:00Z")]).unwrap();
    assert_eq!(
        query.timerel,
        Some(TimeRel::Before(t("2020-08-01T12:05:00Z")))
    );
    let query = parse(&[
        ("timerel", "after"),
        ("timeAt", "2020-08-01T13:03:00+09:00"),
    ])
    .unwrap();
    assert_eq!(
        query.timerel,
        Some(TimeRel::After(t("2020-08-01T04:03:00Z")))
    );
    let query = parse(&[
        ("timerel", "between"),
        ("timeAt", "2020-08-01T12:00:00Z"),
        ("endTimeAt", "2020-08-01T13:00:00Z"),
    ])
    .unwrap();
    assert_eq!(
        query.timerel,
        Some(TimeRel::Between(
            t("2020-08-01T12:00:00Z"),
            t("2020-08-01T13:00:00Z")
        ))
    );
    // Empty values, as the suite sends them, count as absent.
    let query = parse(&[
        ("timerel", "after"),
        ("timeAt", "2020-08-01T12:00:00Z"),
        ("endTimeAt", ""),
    ])
    .unwrap();
    assert_eq!(
        query.timerel,
        Some(TimeRel::After(t("2020-08-01T12:00:00Z")))
    );
}

#[test]
fn bad_time_windows_are_refused_naming_the_parameter() {
    // 020_09: after and before without timeAt, between without endTimeAt.
    refused(&[("timerel", "after"), ("timeAt", "")], "timeAt");
    refused(&[("timerel", "before")], "timeAt");
    refused(
        &[
            ("timerel", "between"),
            ("timeAt", "2020-08-01T12:00:00Z"),
            ("endTimeAt", ""),
        ],
        "endTimeAt",
    );
    refused(
        &[
            ("timerel", "between"),
            ("timeAt", "2020-08-01T12:00:00Z"),
            ("endTimeAt", "2020-08-01T11:00:00Z"),
        ],
        "endTimeAt must be later",
    );
    refused(
        &[
            ("timerel", "between"),
            ("timeAt", "2020-08-01T12:00:00Z"),
            ("endTimeAt", "2020-08-01T12:00:00Z"),
        ],
        "endTimeAt must be later",
    );
    refused(
        &[("timerel", "during"), ("timeAt", "2020-08-01T12:00:00Z")],
        "timerel 'during'",
    );
    refused(
        &[("timerel", "after"), ("timeAt", "yesterday")],
        "timeAt must be a date-time",
    );
    refused(&[("timeAt", "2020-08-01T12:00:00Z")], "without timerel");
    refused(
        &[
            ("timerel", "after"),
            ("timerel", "before"),
            ("timeAt", "2020-08-01T12:00:00Z"),
        ],
        "'timerel' is given twice",
    );
}

#[test]
fn timeproperty_and_last_n() {
    for (text, property) in [
        ("observedAt", TimeProperty::ObservedAt),
        ("createdAt", TimeProperty::CreatedAt),
        ("modifiedAt", TimeProperty::ModifiedAt),
        ("deletedAt", TimeProperty::DeletedAt),
    ] {
        assert_eq!(
            parse(&[("timeproperty", text)]).unwrap().time_property,
            property
        );
        assert_eq!(property.as_str(), text);
    }
    refused(&[("timeproperty", "updatedAt")], "timeproperty 'updatedAt'");
    assert_eq!(parse(&[("lastN", "4")]).unwrap().last_n, Some(4));
    for bad in ["0", "-1", "two", "1.5"] {
        refused(&[("lastN", bad)], "lastN must be a positive integer");
    }
}

#[test]
fn representation_options_and_aggregation_parameters() {
    let query = parse(&[("options", "sysAttrs,temporalValues")]).unwrap();
    assert_eq!(query.form, TemporalForm::TemporalValues);
    assert_eq!(
        parse(&[("format", "temporalValues")]).unwrap().form,
        TemporalForm::TemporalValues
    );
    let query = parse(&[
        ("options", "aggregatedValues"),
        ("aggrMethods", "avg,max,avg"),
        ("aggrPeriodDuration", "PT1H"),
    ])
    .unwrap();
    assert_eq!(
        query.form,
        TemporalForm::Aggregated(Aggregation {
            methods: vec![AggregationMethod::Avg, AggregationMethod::Max],
            period: Some(IsoDuration {
                months: 0,
                days: 0,
                millis: 3_600_000
            }),
        })
    );
    let query = parse(&[
        ("options", "aggregatedValues"),
        ("aggrMethods", "totalCount"),
    ])
    .unwrap();
    assert_eq!(
        query.form,
        TemporalForm::Aggregated(Aggregation {
            methods: vec![AggregationMethod::TotalCount],
            period: None
        })
    );
    for method in AggregationMethod::ALL {
        assert_eq!(AggregationMethod::parse(method.as_str()), Some(method));
    }
    refused(
        &[
            ("options", "temporalValues,aggregatedValues"),
            ("aggrMethods", "avg"),
        ],
        "options",
    );
    refused(
        &[
            ("format", "temporalValues"),
            ("options", "aggregatedValues"),
            ("aggrMethods", "avg"),
        ],
        "options",
    );
    refused(&[("options", "aggregatedValues")], "needs aggrMethods");
    refused(
        &[("options", "aggregatedValues"), ("aggrMethods", "median")],
        "aggrMethods: 'median'",
    );
    refused(
        &[("aggrMethods", "avg")],
        "only with options=aggregatedValues",
    );
    refused(
        &[("aggrPeriodDuration", "P1D")],
        "only with options=aggregatedValues",
    );
    refused(
        &[
            ("options", "aggregatedValues"),
            ("aggrMethods", "avg"),
            ("aggrPeriodDuration", "1 hour"),
        ],
        "aggrPeriodDuration",
    );
}

#[test]
fn windows_select_on_the_chosen_time_property() {
    let mut instance = observed("speed", json!(1), "2020-08-01T12:05:00Z");
    instance.attribute.created_at = Some(time("2024-01-01T00:00:00Z"));
    let query = |params: &[(&str, &str)]| parse(params).unwrap();
    assert!(query(&[]).selects(&instance));
    assert!(query(&[("timerel", "after"), ("timeAt", "2020-08-01T12:05:00Z")]).selects(&instance));
    assert!(
        !query(&[("timerel", "before"), ("timeAt", "2020-08-01T12:05:00Z")]).selects(&instance)
    );
    assert!(query(&[("timerel", "before"), ("timeAt", "2020-08-01T12:06:00Z")]).selects(&instance));
    let between = [
        ("timerel", "between"),
        ("timeAt", "2020-08-01T12:00:00Z"),
        ("endTimeAt", "2020-08-01T12:05:00Z"),
    ];
    assert!(!query(&between).selects(&instance));
    let on_creation = [
        ("timerel", "after"),
        ("timeAt", "2023-01-01T00:00:00Z"),
        ("timeproperty", "createdAt"),
    ];
    assert!(query(&on_creation).selects(&instance));
    assert!(!query(&[("timerel", "after"), ("timeAt", "2023-01-01T00:00:00Z")]).selects(&instance));
    // Without the time property the instance is not part of that history.
    assert!(!query(&[("timeproperty", "modifiedAt")]).selects(&instance));
    assert!(!query(&[("timeproperty", "deletedAt")]).selects(&instance));
    instance.deleted_at = Some(time("2024-02-01T00:00:00Z"));
    assert!(query(&[("timeproperty", "deletedAt")]).selects(&instance));
}

#[test]
fn last_n_keeps_the_latest_of_each_series_in_ascending_order() {
    // The payload of 020_05, given out of order, with a second dataset of speed.
    let speed = [
        (85, "12:25"),
        (130, "12:35"),
        (105, "12:27"),
        (125, "12:31"),
        (120, "12:29"),
    ];
    let mut instances: Vec<TemporalInstance> = speed
        .iter()
        .map(|(v, at)| observed("speed", json!(v), &format!("2020-08-01T{at}:00Z")))
        .collect();
    let fuel = [
        (35, "20:05"),
        (31, "20:07"),
        (28, "21:03"),
        (24, "21:05"),
        (19, "22:07"),
    ];
    instances.extend(
        fuel.iter()
            .map(|(v, at)| observed("fuelLevel", json!(v), &format!("2020-08-01T{at}:00Z"))),
    );
    let mut other = observed("speed", json!(1), "2020-08-01T10:00:00Z");
    other.attribute.dataset_id = Some("urn:ngsi-ld:Dataset:gps".into());
    instances.push(other);

    let query = parse(&[("lastN", "4")]).unwrap();
    let kept = query.select(instances.clone());
    let values = |name: &str| -> Vec<Value> {
        kept.iter()
            .filter(|i| i.name == name && i.attribute.dataset_id.is_none())
            .map(|i| match &i.attribute.value {
                AttributeValue::Property(v) => v.clone(),
                other => panic!("{other:?}"),
            })
            .collect()
    };
    assert_eq!(
        values("speed"),
        vec![json!(105), json!(120), json!(125), json!(130)]
    );
    assert_eq!(
        values("fuelLevel"),
        vec![json!(31), json!(28), json!(24), json!(19)]
    );
    assert_eq!(kept.len(), 9, "the gps series keeps its only instance");
    let times: Vec<_> = kept.iter().map(|i| i.attribute.observed_at).collect();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "ascending");

    let all = parse(&[("lastN", "7")]).unwrap().select(instances.clone());
    assert_eq!(all.len(), 11);
    let windowed = parse(&[
        ("lastN", "2"),
        ("timerel", "before"),
        ("timeAt", "2020-08-01T12:30:00Z"),
    ])
    .unwrap()
    .select(instances);
    let speeds: Vec<_> = windowed
        .iter()
        .filter(|i| i.attribute.dataset_id.is_none())
        .map(|i| i.attribute.value.clone())
        .collect();
    assert_eq!(
        speeds,
        vec![
            AttributeValue::Property(json!(105)),
            AttributeValue::Property(json!(120))
        ]
    );
}

#[test]
fn instance_ids_are_fresh_urns() {
    let a = new_instance_id();
    let b = new_instance_id();
    assert_ne!(a, b);
    let uuid = a.strip_prefix("urn:ngsi-ld:AttributeInstance:").unwrap();
    assert_eq!(uuid.len(), 36);
    assert_eq!(&uuid[14..15], "4");
}
