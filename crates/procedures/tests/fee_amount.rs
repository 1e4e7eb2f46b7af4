//! Fee definitions and the amounts they compute from answers.

use proptest::prelude::*;
use serde_json::{json, Value};

use procedures::fee::{Fee, FeeDefinitionError, FeeError, PaymentTiming, PerUnit, WhenEquals};

/// 住民票の写し: 300 yen per copy, up to 10, plus 100 yen when sent by post.
fn juminhyo() -> Fee {
    serde_json::from_value(json!({
        "kind": "computed",
        "base_yen": 0,
        "per_unit": [{ "field": "/copies", "unit_yen": 300, "max_units": 10 }],
        "when": [{ "field": "/delivery", "equals": "post", "add_yen": 100 }]
    }))
    .unwrap()
}

#[test]
fn juminhyo_per_copy() {
    let fee = juminhyo();
    fee.check().unwrap();
    assert_eq!(fee.amount(&json!({"copies": 1})), Ok(300));
    assert_eq!(
        fee.amount(&json!({"copies": 3, "delivery": "counter"})),
        Ok(900)
    );
    assert_eq!(
        fee.amount(&json!({"copies": 2, "delivery": "post"})),
        Ok(700)
    );
    assert_eq!(fee.amount(&json!({"copies": 0})), Ok(0));
}

#[test]
fn unit_field_errors_are_bilingual_and_name_the_field() {
    let fee = juminhyo();
    let missing = fee.amount(&json!({"delivery": "post"})).unwrap_err();
    assert_eq!(
        missing,
        FeeError::MissingField {
            field: "/copies".into()
        }
    );
    let text = missing.to_string();
    assert!(text.contains("/copies") && text.contains("ありません") && text.contains("missing"));

    assert_eq!(
        fee.amount(&json!({"copies": null})),
        Err(FeeError::MissingField {
            field: "/copies".into()
        })
    );
    for bad in [json!("3"), json!(2.5), json!(-1), json!([1]), json!(true)] {
        let err = fee.amount(&json!({ "copies": bad })).unwrap_err();
        assert!(
            matches!(err, FeeError::NotAnInteger { .. }),
            "{bad}: {err:?}"
        );
    }
    assert_eq!(
        fee.amount(&json!({"copies": 11})),
        Err(FeeError::TooManyUnits {
            field: "/copies".into(),
            units: 11,
            max: 10
        })
    );
}

#[test]
fn nested_pointers_and_non_string_conditions() {
    let fee = Fee::Computed {
        base_yen: 200,
        per_unit: vec![PerUnit {
            field: "/items/0/count".into(),
            unit_yen: 50,
            max_units: 100,
        }],
        when: vec![WhenEquals {
            field: "/express".into(),
            equals: json!(true),
            add_yen: 500,
        }],
    };
    fee.check().unwrap();
    assert_eq!(fee.amount(&json!({"items": [{"count": 4}]})), Ok(400));
    assert_eq!(
        fee.amount(&json!({"items": [{"count": 4}], "express": true})),
        Ok(900)
    );
    // "true" the string is not true the boolean.
    assert_eq!(
        fee.amount(&json!({"items": [{"count": 4}], "express": "true"})),
        Ok(400)
    );
}

#[test]
fn overflow_is_an_error_not_a_wrap() {
    let fee = Fee::Computed {
        base_yen: u64::MAX - 10,
        per_unit: vec![PerUnit {
            field: "/n".into(),
            unit_yen: 10,
            max_units: 5,
        }],
        when: vec![],
    };
    assert_eq!(fee.amount(&json!({"n": 0})), Ok(u64::MAX - 10));
    assert_eq!(fee.amount(&json!({"n": 2})), Err(FeeError::Overflow));
    assert_eq!(fee.check(), Err(FeeDefinitionError::Overflow));
}

#[test]
fn definitions_are_checked() {
    assert_eq!(Fee::None.check(), Ok(()));
    assert_eq!(
        Fee::Fixed { yen: 0 }.check(),
        Err(FeeDefinitionError::ZeroFixed)
    );
    assert_eq!(Fee::Fixed { yen: 350 }.check(), Ok(()));
    let unit = |field: &str, unit_yen, max_units| Fee::Computed {
        base_yen: 0,
        per_unit: vec![PerUnit {
            field: field.into(),
            unit_yen,
            max_units,
        }],
        when: vec![],
    };
    for field in ["copies", "", "/a~2b", "/a~"] {
        assert!(
            matches!(
                unit(field, 300, 10).check(),
                Err(FeeDefinitionError::InvalidPointer { .. })
            ),
            "{field:?}"
        );
    }
    assert_eq!(unit("/a~0b/~1c", 300, 10).check(), Ok(()));
    assert!(matches!(
        unit("/n", 300, 0).check(),
        Err(FeeDefinitionError::ZeroMaxUnits { .. })
    ));
    assert!(matches!(
        unit("/n", 0, 5).check(),
        Err(FeeDefinitionError::ZeroUnitPrice { .. })
    ));
}

#[test]
fn none_and_fixed() {
    assert_eq!(Fee::None.amount(&Value::Null), Ok(0));
    assert!(Fee::None.is_free());
    assert_eq!(Fee::Fixed { yen: 350 }.amount(&json!({})), Ok(350));
    assert!(!Fee::Fixed { yen: 350 }.is_free());
    let fee: Fee = serde_json::from_value(json!({"kind": "fixed", "yen": 350})).unwrap();
    assert_eq!(fee, Fee::Fixed { yen: 350 });
    assert_eq!(
        serde_json::to_value(Fee::None).unwrap(),
        json!({"kind": "none"})
    );
}

#[test]
fn timing() {
    assert!(PaymentTiming::BeforeReview.blocks_review());
    assert!(!PaymentTiming::AfterApproval.blocks_review());
    assert_eq!(
        serde_json::to_value(PaymentTiming::AfterApproval).unwrap(),
        json!("after_approval")
    );
}

proptest! {
    /// For a checked definition, any counts within the caps compute the sum by hand.
    #[test]
    fn computed_amount_is_the_sum(
        base in 0u64..100_000,
        rules in proptest::collection::vec((1u64..10_000, 1u64..1_000), 0..5),
        counts in proptest::collection::vec(0u64..2_000, 5),
        flags in proptest::collection::vec(any::<bool>(), 3),
    ) {
        let per_unit: Vec<PerUnit> = rules.iter().enumerate().map(|(i, (unit_yen, max_units))| PerUnit {
            field: format!("/n{i}"), unit_yen: *unit_yen, max_units: *max_units,
        }).collect();
        let when: Vec<WhenEquals> = (0..3).map(|i| WhenEquals {
            field: format!("/f{i}"), equals: json!("yes"), add_yen: 100 * (i as u64 + 1),
        }).collect();
        let fee = Fee::Computed { base_yen: base, per_unit, when };
        prop_assert_eq!(fee.check(), Ok(()));

        let mut answers = serde_json::Map::new();
        for (i, c) in counts.iter().enumerate() { answers.insert(format!("n{i}"), json!(c)); }
        for (i, f) in flags.iter().enumerate() {
            answers.insert(format!("f{i}"), json!(if *f { "yes" } else { "no" }));
        }
        let answers = Value::Object(answers);

        let over = rules.iter().zip(&counts).position(|((_, max), c)| c > max);
        match (fee.amount(&answers), over) {
            (Err(FeeError::TooManyUnits { field, .. }), Some(i)) => prop_assert_eq!(field, format!("/n{i}")),
            (Ok(total), None) => {
                let units: u64 = rules.iter().zip(&counts).map(|((u, _), c)| u * c).sum();
                let extras: u64 = flags.iter().enumerate().filter(|(_, f)| **f).map(|(i, _)| 100 * (i as u64 + 1)).sum();
                prop_assert_eq!(total, base + units + extras);
            }
            (got, over) => prop_assert!(false, "got {:?} with over-cap rule {:?}", got, over),
        }
    }

    /// Arbitrary answers never panic.
    #[test]
    fn arbitrary_answers_never_panic(s in "\\PC{0,60}", n in any::<i64>(), f in any::<f64>()) {
        let fee = juminhyo();
        for answers in [json!({"copies": s.clone()}), json!({"copies": n}), json!({"copies": f}), json!(s)] {
            let _ = fee.amount(&answers);
        }
    }
}
