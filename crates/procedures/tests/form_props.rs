//! Properties of validation over arbitrary answers: no panics, every error names a field
//! of the schema, and normalising what was normalised changes nothing.

use chrono::NaiveDate;
use procedures::form::{validate_at, CompiledForm, FormDefinition, Scope};
use proptest::prelude::*;
use serde_json::{json, Map, Value};

fn form() -> CompiledForm {
    let def: FormDefinition =
        serde_json::from_str(include_str!("fixtures/juminhyo_form.json")).expect("fixture");
    CompiledForm::new(def).expect("valid fixture")
}

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 6, 1).expect("valid date")
}

/// Field pointers of the fixture, written out here rather than derived by the crate.
const FIELDS: [&str; 17] = [
    "/applicant",
    "/applicant/name",
    "/applicant/name_kana",
    "/applicant/birth_date",
    "/applicant/postal_code",
    "/applicant/address",
    "/applicant/phone",
    "/applicant/email",
    "/relationship",
    "/proxy_name",
    "/copies",
    "/purpose",
    "/purpose_other",
    "/include_household",
    "/include_my_number",
    "/delivery",
    "/mailing_address",
];

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(|f| json!(f)),
        "\\PC{0,12}".prop_map(Value::String),
        prop_oneof![
            Just("other"),
            Just("proxy"),
            Just("mail"),
            Just("self"),
            Just("employment"),
            Just("やまだ"),
            Just("令和5年4月1日"),
            Just("〒１２３－４５６７"),
            Just("０９０１２３４５６７８"),
            Just("３"),
            Just("on"),
            Just("R7.1.1"),
            Just("ｔａｒｏ＠example.jp")
        ]
        .prop_map(|s| Value::String(s.to_string())),
    ]
}

fn any_json() -> impl Strategy<Value = Value> {
    leaf().prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            proptest::collection::vec((key(), inner), 0..6)
                .prop_map(|kv| Value::Object(kv.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        proptest::sample::select(
            FIELDS
                .iter()
                .map(|f| f.rsplit('/').next().unwrap_or("").to_string())
                .collect::<Vec<_>>()
        ),
        "[a-z~/]{0,6}",
    ]
}

/// Answers shaped like the form, with arbitrary values in its fields.
fn form_like() -> impl Strategy<Value = Value> {
    (
        proptest::collection::vec(
            (proptest::sample::select(FIELDS.to_vec()), any_json()),
            0..12,
        ),
        proptest::collection::vec(
            (proptest::sample::select(FIELDS[1..8].to_vec()), leaf()),
            0..8,
        ),
    )
        .prop_map(|(top, applicant)| {
            let mut root = Map::new();
            for (f, v) in top {
                if !f.starts_with("/applicant/") {
                    root.insert(f.trim_start_matches('/').to_string(), v);
                }
            }
            let mut a = Map::new();
            for (f, v) in applicant {
                a.insert(f.trim_start_matches("/applicant/").to_string(), v);
            }
            root.insert("applicant".into(), Value::Object(a));
            Value::Object(root)
        })
}

fn names_a_field(pointer: &str) -> bool {
    // Array indices fold into the field that holds the array.
    FIELDS
        .iter()
        .any(|f| pointer == *f || pointer.starts_with(&format!("{f}/")))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn arbitrary_answers_never_panic_and_errors_name_fields(answers in prop_oneof![any_json(), form_like()]) {
        let form = form();
        for scope in [Scope::Full, Scope::Step("applicant".into()), Scope::Step("request".into())] {
            let v = form.validate_at(&answers, &scope, today()).expect("known scope");
            for e in &v.errors {
                if answers.is_object() {
                    prop_assert!(names_a_field(&e.pointer), "pointer {:?} for {:?}", e.pointer, answers);
                    prop_assert!(FIELDS.contains(&e.field.as_str()), "field {:?}", e.field);
                } else {
                    prop_assert_eq!(e.pointer.as_str(), "");
                }
            }
        }
    }

    #[test]
    fn normalisation_is_idempotent(answers in prop_oneof![any_json(), form_like()]) {
        let form = form();
        let once = form.validate_at(&answers, &Scope::Full, today()).expect("runs");
        let twice = form.validate_at(&once.answers, &Scope::Full, today()).expect("runs");
        prop_assert_eq!(&once.answers, &twice.answers);
        prop_assert!(twice.dropped.is_empty());
        if answers.is_object() {
            prop_assert_eq!(&twice.hidden, &once.hidden);
        }
    }

    #[test]
    fn validate_and_compiled_form_agree(answers in form_like()) {
        let def: FormDefinition =
            serde_json::from_str(include_str!("fixtures/juminhyo_form.json")).expect("fixture");
        let a = validate_at(&def, &answers, &Scope::Full, today()).expect("runs");
        let b = form().validate_at(&answers, &Scope::Full, today()).expect("runs");
        prop_assert_eq!(a, b);
    }
}
