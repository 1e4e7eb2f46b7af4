//! Validation of whole forms: the 住民票の写し交付申請 fixture, conditions, steps, sealing.

use chrono::NaiveDate;
use procedures::form::{
    validate_at, CompiledForm, DefinitionError, ErrorCode, FormDefinition, FormError, Scope,
};
use serde_json::{json, Value};

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 6, 1).expect("valid date")
}

fn juminhyo() -> FormDefinition {
    let text = include_str!("fixtures/juminhyo_form.json");
    serde_json::from_str(text).expect("fixture parses")
}

fn complete_answers() -> Value {
    json!({
        "applicant": {
            "name": "焼津 太郎",
            "name_kana": "やいづ　たろう",
            "birth_date": "昭和60年4月1日",
            "postal_code": "〒４２５－８５０２",
            "address": "静岡県焼津市本町二丁目16番32号",
            "phone": "０５４－６２６－１１１１",
            "email": "ｔａｒｏ＠Example.jp"
        },
        "relationship": "self",
        "copies": "２",
        "purpose": "employment",
        "include_household": "on",
        "delivery": "counter"
    })
}

fn codes(v: &procedures::form::Validated) -> Vec<(String, ErrorCode)> {
    v.errors
        .iter()
        .map(|e| (e.pointer.clone(), e.code))
        .collect()
}

#[test]
fn the_fixture_is_a_valid_definition() {
    assert_eq!(juminhyo().check(), Ok(()));
}

#[test]
fn a_complete_application_is_normalised() {
    let v = validate_at(&juminhyo(), &complete_answers(), &Scope::Full, today()).expect("runs");
    assert_eq!(codes(&v), vec![]);
    assert_eq!(
        v.answers,
        json!({
            "applicant": {
                "name": "焼津 太郎",
                "name_kana": "ヤイヅ\u{3000}タロウ",
                "birth_date": "1985-04-01",
                "postal_code": "425-8502",
                "address": "静岡県焼津市本町二丁目16番32号",
                "phone": "054-626-1111",
                "email": "taro@example.jp"
            },
            "relationship": "self",
            "copies": 2,
            "purpose": "employment",
            "include_household": true,
            "delivery": "counter"
        })
    );
    assert!(v.sensitive.is_empty());
    assert!(v.hidden.contains(&"/purpose_other".to_string()));
    assert!(v.hidden.contains(&"/proxy_name".to_string()));
    assert!(v.hidden.contains(&"/mailing_address".to_string()));
}

#[test]
fn normalising_twice_changes_nothing() {
    let def = juminhyo();
    let once = validate_at(&def, &complete_answers(), &Scope::Full, today()).expect("runs");
    let twice = validate_at(&def, &once.answers, &Scope::Full, today()).expect("runs");
    assert_eq!(once.answers, twice.answers);
    assert!(twice.is_valid());
}

#[test]
fn hidden_field_is_removed_and_not_required() {
    let mut answers = complete_answers();
    answers["purpose_other"] = json!("x");
    let v = validate_at(&juminhyo(), &answers, &Scope::Full, today()).expect("runs");
    // "x" would break minLength 2, but the field is hidden while purpose is not "other".
    assert!(v.is_valid(), "{:?}", v.errors);
    assert!(v.answers.get("purpose_other").is_none());
}

#[test]
fn shown_field_is_required_and_validated() {
    let mut answers = complete_answers();
    answers["purpose"] = json!("other");
    let v = validate_at(&juminhyo(), &answers, &Scope::Full, today()).expect("runs");
    assert_eq!(
        codes(&v),
        vec![("/purpose_other".to_string(), ErrorCode::Required)]
    );
    let e = &v.errors[0];
    assert_eq!(e.label.ja, "使用目的（その他）");
    assert!(
        e.message_ja.contains("使用目的（その他）"),
        "{}",
        e.message_ja
    );
    assert!(e.message_en.contains("Purpose (other)"), "{}", e.message_en);

    answers["purpose_other"] = json!("x");
    let v = validate_at(&juminhyo(), &answers, &Scope::Full, today()).expect("runs");
    assert_eq!(
        codes(&v),
        vec![("/purpose_other".to_string(), ErrorCode::MinLength)]
    );
    assert!(v.errors[0].message_ja.contains('2'));

    answers["purpose_other"] = json!("奨学金の申請");
    let v = validate_at(&juminhyo(), &answers, &Scope::Full, today()).expect("runs");
    assert!(v.is_valid(), "{:?}", v.errors);
    assert_eq!(v.answers["purpose_other"], json!("奨学金の申請"));
}

#[test]
fn a_conditional_step_is_required_only_when_shown() {
    let mut answers = complete_answers();
    answers["delivery"] = json!("mail");
    let v = validate_at(&juminhyo(), &answers, &Scope::Full, today()).expect("runs");
    assert_eq!(
        codes(&v),
        vec![("/mailing_address".to_string(), ErrorCode::Required)]
    );
    answers["mailing_address"] = json!("東京都千代田区永田町1-7-1");
    let v = validate_at(&juminhyo(), &answers, &Scope::Full, today()).expect("runs");
    assert!(v.is_valid(), "{:?}", v.errors);
}

#[test]
fn errors_name_the_wrong_fields_and_keep_the_rest() {
    let answers = json!({
        "applicant": {
            "name": "焼津 太郎",
            "name_kana": "焼津",
            "birth_date": "令和7年1月1日",
            "postal_code": "425",
            "address": "静岡県焼津市本町",
            "phone": "054-626"
        },
        "relationship": "self",
        "copies": 11,
        "purpose": "travel",
        "delivery": "counter"
    });
    let v = validate_at(&juminhyo(), &answers, &Scope::Full, today()).expect("runs");
    let mut got = codes(&v);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("/applicant/birth_date".to_string(), ErrorCode::FutureDate),
            ("/applicant/name_kana".to_string(), ErrorCode::Format),
            ("/applicant/phone".to_string(), ErrorCode::Format),
            ("/applicant/postal_code".to_string(), ErrorCode::Format),
            ("/copies".to_string(), ErrorCode::Maximum),
            ("/purpose".to_string(), ErrorCode::Enum),
        ]
    );
    // The wrong answers stay as typed so the applicant can correct them.
    assert_eq!(v.answers["applicant"]["name_kana"], json!("焼津"));
    assert_eq!(v.answers["applicant"]["postal_code"], json!("425"));
    assert_eq!(v.answers["applicant"]["name"], json!("焼津 太郎"));
    for e in &v.errors {
        assert!(!e.message_ja.is_empty() && !e.message_en.is_empty());
        assert_ne!(e.message_ja, e.message_en);
    }
}

#[test]
fn step_scope_checks_only_that_step() {
    let answers = json!({ "applicant": { "name": "焼津 太郎", "name_kana": "ヤイヅ" } });
    let def = juminhyo();
    let v = validate_at(&def, &answers, &Scope::Step("applicant".into()), today()).expect("runs");
    let mut got: Vec<String> = v.errors.iter().map(|e| e.pointer.clone()).collect();
    got.sort();
    assert_eq!(
        got,
        vec![
            "/applicant/address",
            "/applicant/birth_date",
            "/applicant/phone",
            "/applicant/postal_code"
        ]
    );
    assert!(v.errors.iter().all(|e| e.code == ErrorCode::Required));

    let v = validate_at(&def, &answers, &Scope::Step("delivery".into()), today()).expect("runs");
    assert_eq!(
        codes(&v),
        vec![("/delivery".to_string(), ErrorCode::Required)]
    );

    // A hidden step has nothing to require.
    let v = validate_at(&def, &answers, &Scope::Step("mailing".into()), today()).expect("runs");
    assert!(v.is_valid());

    let full = validate_at(&def, &answers, &Scope::Full, today()).expect("runs");
    assert!(full.errors.len() > 5);

    assert_eq!(
        validate_at(&def, &answers, &Scope::Step("nope".into()), today()).map(|v| v.errors),
        Err(FormError::UnknownStep("nope".into()))
    );
}

#[test]
fn unknown_properties_are_dropped_and_reported() {
    let mut answers = complete_answers();
    answers["admin_override"] = json!(true);
    answers["applicant"]["nickname"] = json!("たろちゃん");
    let v = validate_at(&juminhyo(), &answers, &Scope::Full, today()).expect("runs");
    assert!(v.is_valid());
    assert_eq!(v.dropped, vec!["/applicant/nickname", "/admin_override"]);
    assert!(v.answers.get("admin_override").is_none());
}

#[test]
fn answers_that_are_not_an_object_are_one_error() {
    let v = validate_at(&juminhyo(), &json!([1, 2]), &Scope::Full, today()).expect("runs");
    assert_eq!(codes(&v), vec![(String::new(), ErrorCode::Type)]);
}

fn my_number_form() -> FormDefinition {
    serde_json::from_value(json!({
        "schema": {
            "type": "object",
            "properties": {
                "my_number": { "type": "string", "format": "my-number" },
                "illness": { "type": "string" },
                "note": { "type": "string" }
            },
            "required": ["my_number"]
        },
        "ui": { "fields": {
            "/my_number": { "label": { "ja": "個人番号", "en": "Individual number" } },
            "/illness": { "label": { "ja": "病名", "en": "Illness" }, "sensitive": true }
        } }
    }))
    .expect("parses")
}

#[test]
fn my_number_is_sealed_and_masked() {
    let def = my_number_form();
    let answers = json!({ "my_number": "１２３４ ５６７８ ９０１８", "illness": "花粉症", "note": "特になし" });
    let v = validate_at(&def, &answers, &Scope::Full, today()).expect("runs");
    assert!(v.is_valid(), "{:?}", v.errors);
    assert_eq!(
        v.answers,
        json!({ "my_number": "********9018", "illness": "********", "note": "特になし" })
    );
    assert_eq!(v.sensitive.get("/my_number"), Some(&json!("123456789018")));
    assert_eq!(v.sensitive.get("/illness"), Some(&json!("花粉症")));
    assert!(!format!("{v:?}").contains("123456789018"));
    assert!(!format!("{v:?}").contains("花粉症"));

    // On resume the masks come back: the sealed values stand, nothing new to seal.
    let again = validate_at(&def, &v.answers, &Scope::Full, today()).expect("runs");
    assert!(again.is_valid());
    assert_eq!(again.answers, v.answers);
    assert!(again.sensitive.is_empty());
    assert_eq!(again.kept_sealed, vec!["/my_number", "/illness"]);
}

#[test]
fn a_wrong_my_number_is_refused_without_leaking() {
    let def = my_number_form();
    let v = validate_at(
        &def,
        &json!({ "my_number": "123456789017" }),
        &Scope::Full,
        today(),
    )
    .expect("runs");
    assert_eq!(
        codes(&v),
        vec![("/my_number".to_string(), ErrorCode::CheckDigit)]
    );
    assert_eq!(v.answers["my_number"], json!("************"));
    assert!(!v.errors[0].message_ja.contains("1234"));
    assert_eq!(v.sensitive.get("/my_number"), Some(&json!("123456789017")));
}

#[test]
fn broken_definitions_are_reported() {
    let mut def = juminhyo();
    def.ui.steps[0].fields.push("/applicant/nope".into());
    def.ui.steps[1].fields.push("/delivery".into());
    if let Some(h) = def.ui.fields.get_mut("/proxy_name") {
        if let Some(c) = h.visible_when.as_mut() {
            c.field = "/relation".into();
        }
    }
    def.schema["properties"]["copies"]["minimum"] = json!("one");
    let errors = def.check().expect_err("broken");
    assert!(errors.contains(&DefinitionError::UnknownStepField {
        step: "applicant".into(),
        field: "/applicant/nope".into()
    }));
    assert!(errors.contains(&DefinitionError::FieldInTwoSteps {
        field: "/delivery".into()
    }));
    assert!(errors.contains(&DefinitionError::UnknownConditionField {
        owner: "/proxy_name".into(),
        field: "/relation".into()
    }));
    assert!(errors
        .iter()
        .any(|e| matches!(e, DefinitionError::InvalidSchema { .. })));
    assert!(CompiledForm::new(def).is_err());
}

#[test]
fn definitions_refuse_other_dialects_cycles_and_unknown_types() {
    let def: FormDefinition = serde_json::from_value(json!({
        "schema": { "$schema": "http://json-schema.org/draft-07/schema#", "type": "object" }
    }))
    .expect("parses");
    let errors = def.check().expect_err("draft-07");
    assert!(matches!(
        errors.as_slice(),
        [DefinitionError::WrongDialect { .. }]
    ));

    let def: FormDefinition = serde_json::from_value(json!({
        "schema": { "type": "object", "properties": {
            "a": { "type": "string", "x-renkei-type": "jp-kanji" },
            "b": { "type": "string" }
        } },
        "ui": { "fields": {
            "/a": { "label": { "ja": "A", "en": "A" }, "visible_when": { "field": "/b", "not_empty": true } },
            "/b": { "label": { "ja": "B", "en": "B" }, "visible_when": { "field": "/a", "in": ["x"] } }
        } }
    }))
    .expect("parses");
    let errors = def.check().expect_err("broken");
    assert!(errors.contains(&DefinitionError::ConditionCycle { field: "/a".into() }));
    assert!(errors.contains(&DefinitionError::UnknownRenkeiType {
        field: "/a".into(),
        name: "jp-kanji".into()
    }));

    let def: FormDefinition =
        serde_json::from_value(json!({ "schema": { "type": "string" } })).expect("parses");
    assert_eq!(def.check(), Err(vec![DefinitionError::NotObjectSchema]));
}

#[test]
fn sensitive_fields_include_my_number_without_a_hint() {
    let mut def = my_number_form();
    def.ui.fields.remove("/my_number");
    assert_eq!(def.sensitive_fields(), vec!["/my_number", "/illness"]);
    assert_eq!(juminhyo().sensitive_fields(), Vec::<String>::new());
    assert_eq!(juminhyo().fields().len(), 17);
}

#[test]
fn conditions_chain_and_follow_refs() {
    let def: FormDefinition = serde_json::from_value(json!({
        "schema": {
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "$defs": {
                "person": {
                    "type": "object",
                    "properties": {
                        "kana": { "type": "string", "x-renkei-type": "jp-kana" },
                        "phone": { "type": "string", "format": "jp-phone" }
                    },
                    "required": ["kana"]
                }
            },
            "properties": {
                "has_spouse": { "type": "boolean" },
                "spouse": { "$ref": "#/$defs/person" },
                "spouse_phone_known": { "type": "string", "enum": ["yes", "no"] },
                "contact_days": { "type": "array", "items": { "type": "string", "enum": ["mon", "tue", "sat"] } },
                "weekend_note": { "type": "string" }
            },
            "required": ["spouse", "spouse_phone_known", "weekend_note"]
        },
        "ui": { "fields": {
            "/spouse": { "label": { "ja": "配偶者", "en": "Spouse" }, "visible_when": { "field": "/has_spouse", "equals": true } },
            "/spouse_phone_known": { "label": { "ja": "配偶者の電話", "en": "Spouse phone known" }, "visible_when": { "field": "/spouse", "not_empty": true } },
            "/weekend_note": { "label": { "ja": "週末の連絡", "en": "Weekend note" }, "visible_when": { "field": "/contact_days", "in": ["sat", "sun"] } }
        } }
    }))
    .expect("parses");
    assert_eq!(def.check(), Ok(()));

    // No spouse: the spouse is hidden, so the field that depends on it is hidden too, even
    // though an answer was sent for the spouse.
    let answers =
        json!({ "has_spouse": "false", "spouse": { "kana": "はなこ" }, "contact_days": ["mon"] });
    let v = validate_at(&def, &answers, &Scope::Full, today()).expect("runs");
    assert!(v.is_valid(), "{:?}", v.errors);
    assert_eq!(
        v.answers,
        json!({ "has_spouse": false, "contact_days": ["mon"] })
    );
    assert_eq!(
        v.hidden,
        vec!["/spouse", "/spouse_phone_known", "/weekend_note"]
    );

    let answers = json!({
        "has_spouse": true,
        "spouse": { "phone": "ｘ" },
        "contact_days": ["mon", "sat"]
    });
    let v = validate_at(&def, &answers, &Scope::Full, today()).expect("runs");
    let mut got = codes(&v);
    got.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        got,
        vec![
            ("/spouse/kana".to_string(), ErrorCode::Required),
            ("/spouse/phone".to_string(), ErrorCode::Format),
            ("/spouse_phone_known".to_string(), ErrorCode::Required),
            ("/weekend_note".to_string(), ErrorCode::Required),
        ]
    );
    let kana = v
        .errors
        .iter()
        .find(|e| e.pointer == "/spouse/kana")
        .expect("present");
    assert_eq!(kana.label.ja, "kana", "falls back to the property name");

    let answers = json!({ "has_spouse": true, "spouse": { "kana": "はなこ" }, "spouse_phone_known": "no", "contact_days": ["sat"], "weekend_note": "土曜午前" });
    let v = validate_at(&def, &answers, &Scope::Full, today()).expect("runs");
    assert!(v.is_valid(), "{:?}", v.errors);
    assert_eq!(v.answers["spouse"], json!({ "kana": "ハナコ" }));
}
