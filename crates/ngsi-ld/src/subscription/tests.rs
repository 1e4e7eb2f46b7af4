use super::*;
use crate::context::{decode_entity, ActiveContext, NoRemoteContexts};
use crate::model::Entity;
use crate::{NgsiError, ProblemType};
use chrono::{Duration, TimeZone};
use serde_json::json;

const SUITE: &str = "https://ngsi-ld-test-suite/context#";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 4, 1, 9, 0, 0).unwrap()
}

/// The parts of the conformance suite's context these tests use.
fn ctx() -> ActiveContext {
    let local = json!({
        "Building": format!("{SUITE}Building"),
        "Tower": format!("{SUITE}Tower"),
        "name": format!("{SUITE}name"),
        "subCategory": format!("{SUITE}subCategory"),
        "airQualityLevel": format!("{SUITE}airQualityLevel"),
        "locatedAt": format!("{SUITE}locatedAt"),
        "street": format!("{SUITE}street"),
    });
    ActiveContext::process(&local, &NoRemoteContexts).unwrap()
}

fn base_body() -> Value {
    json!({
        "id": "urn:ngsi-ld:Subscription:1",
        "type": "Subscription",
        "entities": [{"type": "Building"}],
        "notification": {
            "format": "keyValues",
            "endpoint": {"uri": "http://localhost:1111/notify", "accept": "application/json"}
        },
        "@context": ["https://example.org/ctx.jsonld"]
    })
}

fn decode(body: &Value) -> Result<Subscription, NgsiError> {
    Subscription::decode(
        body,
        &ctx(),
        json!("https://example.org/ctx.jsonld"),
        "urn:ngsi-ld:Subscription:generated",
        now(),
    )
}

fn with(mut body: Value, pointer: &str, value: Value) -> Value {
    let (parent, member) = pointer.rsplit_once('/').unwrap();
    let target = body.pointer_mut(parent).unwrap().as_object_mut().unwrap();
    if value.is_null() {
        target.remove(member);
    } else {
        target.insert(member.to_owned(), value);
    }
    body
}

fn building(id: &str, extra: Value) -> Entity {
    let mut body = json!({"id": id, "type": "Building"});
    body.as_object_mut()
        .unwrap()
        .extend(extra.as_object().unwrap().clone());
    decode_entity(&body, &ctx()).unwrap()
}

fn name_iri() -> String {
    format!("{SUITE}name")
}

#[test]
fn decodes_the_suite_subscription_with_defaults() {
    let s = decode(&base_body()).unwrap();
    assert_eq!(s.id, "urn:ngsi-ld:Subscription:1");
    assert_eq!(s.entities.len(), 1);
    assert_eq!(s.entities[0].type_iri, format!("{SUITE}Building"));
    assert_eq!(s.notification.format, Format::KeyValues);
    assert_eq!(s.notification.endpoint.accept, "application/json");
    assert!(s.is_active);
    assert_eq!(s.notification_trigger, Trigger::DEFAULT.to_vec());
    assert_eq!(s.triggers(), &Trigger::DEFAULT);
    assert_eq!(s.context, json!("https://example.org/ctx.jsonld"));
    assert_eq!((s.created_at, s.modified_at), (now(), now()));

    let without_id = with(base_body(), "/id", Value::Null);
    assert_eq!(
        decode(&without_id).unwrap().id,
        "urn:ngsi-ld:Subscription:generated"
    );

    let full = with(
        with(base_body(), "/watchedAttributes", json!(["name"])),
        "/notification/endpoint/receiverInfo",
        json!([{"key": "X-Key", "value": "v"}]),
    );
    let s = decode(&full).unwrap();
    assert_eq!(s.watched_attributes, vec![name_iri()]);
    assert_eq!(
        s.notification.endpoint.receiver_info,
        vec![("X-Key".to_owned(), "v".to_owned())]
    );
}

#[test]
fn refuses_each_invalid_member_naming_it() {
    let past = json!("2020-01-01T00:00:00Z");
    let cases = [
        (with(base_body(), "/type", Value::Null), "'type'"),
        (with(base_body(), "/type", json!("Entity")), "'type'"),
        (with(base_body(), "/id", json!("invalidId")), "'id'"),
        (with(base_body(), "/id", json!("")), "'id'"),
        (
            with(base_body(), "/entities", Value::Null),
            "'entities' or 'watchedAttributes'",
        ),
        (
            with(base_body(), "/entities", json!([{"id": "urn:a:b"}])),
            "'entities[0]' has no 'type'",
        ),
        (
            with(
                base_body(),
                "/entities",
                json!([{"type": "Building", "idPattern": "("}]),
            ),
            "idPattern",
        ),
        (with(base_body(), "/q", json!("name==")), "'q'"),
        (with(base_body(), "/scopeQ", json!("no-slash")), "'scopeQ'"),
        (
            with(
                base_body(),
                "/geoQ",
                json!({"georel": "near", "geometry": "Point"}),
            ),
            "'geoQ'",
        ),
        (
            with(
                base_body(),
                "/geoQ",
                json!({"georel": "sideways", "geometry": "Point", "coordinates": [1, 2]}),
            ),
            "'geoQ'",
        ),
        (with(base_body(), "/throttling", json!(-5)), "'throttling'"),
        (
            with(base_body(), "/timeInterval", json!(0)),
            "'timeInterval'",
        ),
        (
            with(
                with(base_body(), "/timeInterval", json!(5)),
                "/watchedAttributes",
                json!(["name"]),
            ),
            "'timeInterval' and 'watchedAttributes'",
        ),
        (
            with(
                with(base_body(), "/timeInterval", json!(5)),
                "/throttling",
                json!(5),
            ),
            "'timeInterval' and 'throttling'",
        ),
        (with(base_body(), "/expiresAt", past), "'expiresAt'"),
        (
            with(base_body(), "/expiresAt", json!("tomorrow")),
            "'expiresAt'",
        ),
        (with(base_body(), "/isActive", json!("yes")), "'isActive'"),
        (
            with(
                base_body(),
                "/notificationTrigger",
                json!(["entityExploded"]),
            ),
            "'notificationTrigger'",
        ),
        (
            with(base_body(), "/notification", Value::Null),
            "'notification'",
        ),
        (
            with(base_body(), "/notification/endpoint", Value::Null),
            "'notification.endpoint'",
        ),
        (
            with(base_body(), "/notification/format", json!("pretty")),
            "'notification.format'",
        ),
        (
            with(
                base_body(),
                "/notification/endpoint/uri",
                json!("localhost/notify"),
            ),
            "'notification.endpoint.uri'",
        ),
        (
            with(
                base_body(),
                "/notification/endpoint/uri",
                json!("ftp://example.org/x"),
            ),
            "'notification.endpoint.uri'",
        ),
        (
            with(
                base_body(),
                "/notification/endpoint/accept",
                json!("text/plain"),
            ),
            "'notification.endpoint.accept'",
        ),
        (
            with(
                base_body(),
                "/notification/endpoint/receiverInfo",
                json!([{"key": "a"}]),
            ),
            "receiverInfo",
        ),
        (
            with(
                with(base_body(), "/notification/pick", json!(["id"])),
                "/notification/omit",
                json!(["id"]),
            ),
            "picked and omitted",
        ),
        (
            with(
                with(base_body(), "/notification/pick", json!(["id"])),
                "/notification/attributes",
                json!(["name"]),
            ),
            "'attributes'",
        ),
        (
            with(base_body(), "/jsonldContext", json!("unknownContext")),
            "'jsonldContext'",
        ),
        (
            with(base_body(), "/datasetId", json!(["not an iri"])),
            "'datasetId'",
        ),
        (json!([1, 2]), "JSON object"),
    ];
    for (body, needle) in cases {
        let err = decode(&body).expect_err(&body.to_string());
        assert_eq!(err.problem, ProblemType::BadRequestData, "{body}");
        assert!(
            err.detail.contains(needle),
            "{body}: {} lacks {needle}",
            err.detail
        );
    }
    // Valid neighbours of the refused cases.
    for body in [
        with(
            base_body(),
            "/notification/endpoint/uri",
            json!("mqtts://broker.example.org:8883/t"),
        ),
        with(
            base_body(),
            "/geoQ",
            json!({"georel": "near;maxDistance==2000", "geometry": "Point", "coordinates": [-8.5, 41.2]}),
        ),
        with(
            base_body(),
            "/entities",
            json!([{"type": "(Building|Tower)", "idPattern": "^urn:.*"}]),
        ),
        with(base_body(), "/throttling", json!(5)),
        with(base_body(), "/q", json!("name==\"x\";airQualityLevel>2")),
        with(base_body(), "/scopeQ", json!("/Tokyo/#")),
    ] {
        decode(&body).unwrap_or_else(|e| panic!("{body}: {e}"));
    }
}

#[test]
fn encodes_as_the_suite_expects_for_028_01() {
    let body = with(base_body(), "/timeInterval", json!(5));
    let s = decode(&body).unwrap();
    let got = s.encode(&ctx(), &SubscriptionStatus::default(), false, now());
    // Nothing sent yet: neither count is shown (028_06 compares without ignoring them).
    assert_eq!(got["notification"].get("timesSent"), None);
    assert_eq!(got["notification"].get("timesFailed"), None);
    let expected = json!({
        "id": "urn:ngsi-ld:Subscription:1",
        "type": "Subscription",
        "timeInterval": 5,
        "entities": [{"type": "Building"}],
        "notification": {
            "format": "keyValues",
            "endpoint": {"uri": "http://localhost:1111/notify", "accept": "application/json"}
        },
        "status": "active",
        "notificationTrigger": ["attributeCreated", "attributeUpdated"]
    });
    assert_eq!(got, expected);
    // Without the user context the type shows expanded (subscription-vehicle-expanded-types).
    let core = s.encode(
        &ActiveContext::core(),
        &SubscriptionStatus::default(),
        false,
        now(),
    );
    assert_eq!(
        core["entities"][0]["type"],
        json!(format!("{SUITE}Building"))
    );
}

#[test]
fn encode_shows_status_members_and_round_trips() {
    let body = with(
        with(
            with(base_body(), "/watchedAttributes", json!(["name", "street"])),
            "/notification/attributes",
            json!(["name"]),
        ),
        "/entities",
        json!([{"type": "Building,Tower", "id": "urn:ngsi-ld:Building:1"}]),
    );
    let body = with(body, "/isActive", json!(false));
    let body = with(body, "/expiresAt", json!("2030-01-01T00:00:00Z"));
    let body = with(body, "/q", json!("name==\"A\""));
    let body = with(body, "/notification/showChanges", json!(true));
    let s = decode(&body).unwrap();
    let status = SubscriptionStatus {
        times_sent: 3,
        times_failed: 1,
        last_notification: Some(now()),
        last_success: Some(now() - Duration::seconds(60)),
        last_failure: Some(now()),
    };
    let got = s.encode(&ctx(), &status, true, now());
    assert_eq!(got["status"], json!("paused"));
    assert_eq!(got["isActive"], json!(false));
    assert_eq!(got["watchedAttributes"], json!(["name", "street"]));
    assert_eq!(got["entities"][0]["type"], json!("Building,Tower"));
    assert_eq!(got["notification"]["attributes"], json!(["name"]));
    assert_eq!(got["notification"]["timesSent"], json!(3));
    assert_eq!(got["notification"]["status"], json!("failed"));
    assert_eq!(
        got["notification"]["lastSuccess"],
        json!("2026-04-01T08:59:00Z")
    );
    assert_eq!(got["createdAt"], json!("2026-04-01T09:00:00Z"));
    // What GET shows reads back as the same subscription.
    let again = decode(&got).unwrap();
    assert_eq!(again, s);
    let stored = Subscription::from_document(&s.to_document()).unwrap();
    assert_eq!(stored, s);
}

#[test]
fn update_replaces_given_members_and_keeps_the_rest_valid() {
    let mut s = decode(&with(base_body(), "/q", json!("name==\"A\""))).unwrap();
    let later = now() + Duration::seconds(10);
    let patch = json!({
        "type": "Subscription",
        "notification": {
            "format": "keyValues",
            "endpoint": {"uri": "http://my.second.endpoint.org/notify", "accept": "application/json"}
        },
        "q": null,
        "watchedAttributes": ["name"]
    });
    s.update(&patch, &ctx(), later).unwrap();
    assert_eq!(
        s.notification.endpoint.uri,
        "http://my.second.endpoint.org/notify"
    );
    assert_eq!(s.q, None);
    assert_eq!(s.watched_attributes, vec![name_iri()]);
    assert_eq!(s.entities[0].type_iri, format!("{SUITE}Building"));
    assert_eq!((s.created_at, s.modified_at), (now(), later));

    let kept = s.clone();
    for (patch, needle) in [
        (
            json!({"notification": {"format": "keyValues"}}),
            "'notification.endpoint'",
        ),
        (json!({"notification": null}), "'notification'"),
        (json!({"id": "urn:ngsi-ld:Subscription:other"}), "'id'"),
        (json!({"type": "Entity"}), "'type'"),
        (
            json!({"timeInterval": 5}),
            "'timeInterval' and 'watchedAttributes'",
        ),
        (json!({"expiresAt": "2020-01-01T00:00:00Z"}), "'expiresAt'"),
        (
            json!({"entities": null, "watchedAttributes": null}),
            "'entities' or 'watchedAttributes'",
        ),
        (json!({}), "changes nothing"),
    ] {
        let err = s
            .update(&patch, &ctx(), later)
            .expect_err(&patch.to_string());
        assert!(err.detail.contains(needle), "{patch}: {}", err.detail);
        assert_eq!(s, kept, "a refused patch leaves the subscription as it was");
    }

    s.update(&json!({"isActive": false}), &ctx(), later)
        .unwrap();
    assert_eq!(s.status_at(later), "paused");
    s.update(
        &json!({"isActive": true, "expiresAt": "2030-08-01T22:07:00Z"}),
        &ctx(),
        later,
    )
    .unwrap();
    assert_eq!(s.status_at(later), "active");
}

#[test]
fn activity_follows_is_active_and_expires_at() {
    let mut s = decode(&with(
        base_body(),
        "/expiresAt",
        json!("2026-04-01T10:00:00Z"),
    ))
    .unwrap();
    assert!(s.is_active_at(now()));
    assert_eq!(s.status_at(now()), "active");
    let after_expiry = now() + Duration::hours(1);
    assert!(!s.is_active_at(after_expiry));
    assert_eq!(s.status_at(after_expiry), "expired");
    s.is_active = false;
    assert!(!s.is_active_at(now()));
    assert_eq!(s.status_at(now()), "paused");
    // A stored subscription that has expired can still be read back and changed.
    let stored = Subscription::from_document(&s.to_document()).unwrap();
    assert_eq!(stored, s);
}

fn subscription_with(members: Value) -> Subscription {
    let mut body = base_body();
    body.as_object_mut()
        .unwrap()
        .extend(members.as_object().unwrap().clone());
    decode(&body).unwrap()
}

#[test]
fn evaluate_reports_each_trigger_kind() {
    let all = json!({"notificationTrigger": [
        "entityCreated", "entityUpdated", "entityDeleted",
        "attributeCreated", "attributeUpdated", "attributeDeleted"
    ]});
    let s = subscription_with(all);
    let v1 = building(
        "urn:ngsi-ld:Building:1",
        json!({"name": {"type": "Property", "value": "A"}}),
    );
    let v2 = building(
        "urn:ngsi-ld:Building:1",
        json!({"name": {"type": "Property", "value": "B"}}),
    );
    let v3 = building(
        "urn:ngsi-ld:Building:1",
        json!({"name": {"type": "Property", "value": "B"}, "street": {"type": "Property", "value": "S"}}),
    );
    let eval = |b: Option<&Entity>, a: Option<&Entity>| s.evaluate(b, a, &ctx(), now());
    assert_eq!(eval(None, Some(&v1)), Some(Trigger::EntityCreated));
    assert_eq!(eval(Some(&v1), Some(&v2)), Some(Trigger::AttributeUpdated));
    assert_eq!(eval(Some(&v2), Some(&v3)), Some(Trigger::AttributeCreated));
    assert_eq!(eval(Some(&v3), Some(&v2)), Some(Trigger::AttributeDeleted));
    assert_eq!(eval(Some(&v2), None), Some(Trigger::EntityDeleted));
    assert_eq!(eval(Some(&v2), Some(&v2)), None, "nothing changed");

    let scoped = {
        let mut e = v2.clone();
        e.scopes = vec!["/Tokyo".into()];
        e
    };
    let only_entity_updated = subscription_with(json!({"notificationTrigger": ["entityUpdated"]}));
    assert_eq!(
        only_entity_updated.evaluate(Some(&v2), Some(&scoped), &ctx(), now()),
        Some(Trigger::EntityUpdated)
    );
    assert_eq!(
        only_entity_updated.evaluate(None, Some(&v1), &ctx(), now()),
        None
    );

    // The default triggers: attribute creation (an entity creation creates its
    // attributes) and update, not deletion.
    let default = subscription_with(json!({}));
    assert_eq!(
        default.evaluate(None, Some(&v1), &ctx(), now()),
        Some(Trigger::AttributeCreated)
    );
    assert_eq!(
        default.evaluate(Some(&v1), Some(&v2), &ctx(), now()),
        Some(Trigger::AttributeUpdated)
    );
    assert_eq!(default.evaluate(Some(&v3), Some(&v2), &ctx(), now()), None);
    assert_eq!(default.evaluate(Some(&v2), None, &ctx(), now()), None);

    // An entity deletion deletes the watched attribute too (suite 046_22_12).
    let watched_deletion = subscription_with(
        json!({"watchedAttributes": ["name"], "notificationTrigger": ["attributeDeleted"]}),
    );
    assert_eq!(
        watched_deletion.evaluate(Some(&v2), None, &ctx(), now()),
        Some(Trigger::AttributeDeleted)
    );
}

#[test]
fn evaluate_honours_watched_attributes_q_selectors_and_activity() {
    let v1 = building(
        "urn:ngsi-ld:Building:1",
        json!({"name": {"type": "Property", "value": "A"}, "airQualityLevel": {"type": "Property", "value": 2}}),
    );
    let mut v2 = v1.clone();
    v2.attributes
        .get_mut(&format!("{SUITE}airQualityLevel"))
        .unwrap()[0]
        .value = crate::model::AttributeValue::Property(json!(5));

    let watching_name = subscription_with(json!({"watchedAttributes": ["name"]}));
    assert_eq!(
        watching_name.evaluate(Some(&v1), Some(&v2), &ctx(), now()),
        None
    );
    let watching_level =
        subscription_with(json!({"watchedAttributes": ["airQualityLevel", "name"]}));
    assert_eq!(
        watching_level.evaluate(Some(&v1), Some(&v2), &ctx(), now()),
        Some(Trigger::AttributeUpdated)
    );

    let q = |text: &str| {
        subscription_with(json!({"q": text})).evaluate(Some(&v1), Some(&v2), &ctx(), now())
    };
    assert_eq!(
        q("airQualityLevel>4"),
        Some(Trigger::AttributeUpdated),
        "q holds after the change"
    );
    assert_eq!(q("airQualityLevel<4"), None);
    assert_eq!(
        q("name==\"A\";airQualityLevel==5"),
        Some(Trigger::AttributeUpdated)
    );

    let select = |entities: Value| {
        subscription_with(json!({"entities": entities})).evaluate(
            Some(&v1),
            Some(&v2),
            &ctx(),
            now(),
        )
    };
    assert!(select(json!([{"type": "Building"}])).is_some());
    assert!(select(json!([{"type": "Tower"}])).is_none());
    assert!(select(json!([{"type": "Tower,Building"}])).is_some());
    assert!(select(json!([{"type": "(Building|Tower)"}])).is_some());
    assert!(select(json!([{"type": "Building;Tower"}])).is_none());
    assert!(select(json!([{"type": "Building", "id": "urn:ngsi-ld:Building:1"}])).is_some());
    assert!(select(json!([{"type": "Building", "id": "urn:ngsi-ld:Building:2"}])).is_none());
    assert!(select(json!([{"type": "Building", "idPattern": "Building:[0-9]$"}])).is_some());
    assert!(select(json!([{"type": "Building", "idPattern": "^urn:ngsi-ld:Tower"}])).is_none());
    assert!(select(json!([{"type": "Tower"}, {"type": "Building", "idPattern": ".*"}])).is_some());

    let mut paused = watching_level.clone();
    paused.is_active = false;
    assert_eq!(paused.evaluate(Some(&v1), Some(&v2), &ctx(), now()), None);
    let expiring = subscription_with(json!({"expiresAt": "2026-04-01T09:30:00Z"}));
    assert!(expiring
        .evaluate(Some(&v1), Some(&v2), &ctx(), now())
        .is_some());
    assert!(expiring
        .evaluate(Some(&v1), Some(&v2), &ctx(), now() + Duration::hours(1))
        .is_none());
    let periodic = subscription_with(json!({"timeInterval": 5}));
    assert_eq!(periodic.evaluate(Some(&v1), Some(&v2), &ctx(), now()), None);
}

fn eiffel(name: &str) -> Entity {
    building(
        "urn:ngsi-ld:Building:046_31",
        json!({
            "name": {"type": "Property", "value": name},
            "street": {"type": "LanguageProperty", "languageMap": {"fr": "Grand Place", "nl": "Grote Markt"}},
            "locatedAt": {"type": "Relationship", "object": "urn:ngsi-ld:City:Paris"}
        }),
    )
}

fn without(entity: &Entity, attribute: &str) -> Entity {
    let mut e = entity.clone();
    e.attributes.remove(&format!("{SUITE}{attribute}"));
    e
}

fn data(s: &Subscription, before: Option<&Entity>, after: Option<&Entity>) -> Value {
    s.notification_data(before, after, &ctx(), now())
}

#[test]
fn notification_data_shows_changes_as_the_suite_expects() {
    let normalized = json!({"notification": {"endpoint": {"uri": "http://localhost:1111/notify"}, "showChanges": true}});
    let s = subscription_with(normalized);
    // 046_31: previousValue on the updated Property only.
    let got = data(
        &s,
        Some(&eiffel("Eiffel Tower")),
        Some(&eiffel("Tour Eiffel")),
    );
    assert_eq!(
        got["name"],
        json!({"type": "Property", "value": "Tour Eiffel", "previousValue": "Eiffel Tower"})
    );
    assert_eq!(
        got["locatedAt"],
        json!({"type": "Relationship", "object": "urn:ngsi-ld:City:Paris"})
    );
    // 046_41: no previous value for a creation.
    let got = data(&s, None, Some(&eiffel("Eiffel Tower")));
    assert_eq!(
        got["name"],
        json!({"type": "Property", "value": "Eiffel Tower"})
    );
    // 046_34: a deleted attribute shows the NGSI-LD Null and its value before.
    let before = eiffel("Eiffel Tower");
    let got = data(&s, Some(&before), Some(&without(&before, "locatedAt")));
    assert_eq!(
        got["locatedAt"],
        json!({"type": "Relationship", "object": "urn:ngsi-ld:null", "previousObject": "urn:ngsi-ld:City:Paris"})
    );
    // 046_34_04: a deleted LanguageProperty keeps the map shape for its null.
    let got = data(&s, Some(&before), Some(&without(&before, "street")));
    assert_eq!(
        got["street"]["languageMap"],
        json!({"@none": "urn:ngsi-ld:null"})
    );
    // 046_37: a deleted entity shows every attribute so.
    let got = data(&s, Some(&before), None);
    assert_eq!(got["deletedAt"], json!("2026-04-01T09:00:00Z"));
    assert_eq!(
        got["street"],
        json!({
            "type": "LanguageProperty",
            "languageMap": "urn:ngsi-ld:null",
            "previousLanguageMap": {"fr": "Grand Place", "nl": "Grote Markt"}
        })
    );
    assert_eq!(got["name"]["previousValue"], json!("Eiffel Tower"));
    assert_eq!(got.as_object().unwrap().len(), 6, "{got}");
}

#[test]
fn notification_data_for_deletions_without_show_changes() {
    let before = eiffel("Eiffel Tower");
    // 046_22_01: keyValues, attribute deleted.
    let key_values = subscription_with(json!({"notificationTrigger": ["attributeDeleted"]}));
    let got = data(&key_values, Some(&before), Some(&without(&before, "name")));
    assert_eq!(got["name"], json!("urn:ngsi-ld:null"));
    assert_eq!(got["locatedAt"], json!("urn:ngsi-ld:City:Paris"));
    // 046_21_01: an entity deletion is id, type and deletedAt.
    let got = data(&key_values, Some(&before), None);
    assert_eq!(
        got,
        json!({"id": "urn:ngsi-ld:Building:046_31", "type": "Building", "deletedAt": "2026-04-01T09:00:00Z"})
    );
    // 046_21_02: with sysAttrs, and the entity's times.
    let mut timed = before.clone();
    timed.created_at = Some(now() - Duration::hours(1));
    timed.modified_at = Some(now() - Duration::minutes(1));
    let sys = subscription_with(
        json!({"notification": {"format": "keyValues", "sysAttrs": true, "endpoint": {"uri": "http://localhost:1111/notify"}}}),
    );
    assert_eq!(data(&sys, Some(&timed), None).as_object().unwrap().len(), 5);
    // 046_22_12/13: the watched attribute of a deleted entity, normalized, with sysAttrs.
    let watched = subscription_with(json!({
        "watchedAttributes": ["name"],
        "notificationTrigger": ["attributeDeleted"],
        "notification": {"format": "normalized", "sysAttrs": true, "endpoint": {"uri": "http://localhost:1111/notify"}}
    }));
    let mut timed_name = timed.clone();
    for instance in timed_name.attributes.get_mut(&name_iri()).unwrap() {
        instance.created_at = timed.created_at;
        instance.modified_at = timed.created_at;
    }
    let got = data(&watched, Some(&timed_name), None);
    assert_eq!(
        got["name"],
        json!({
            "type": "Property",
            "value": "urn:ngsi-ld:null",
            "createdAt": "2026-04-01T08:00:00Z",
            "modifiedAt": "2026-04-01T08:00:00Z",
            "deletedAt": "2026-04-01T09:00:00Z"
        })
    );
    let members: Vec<&String> = got.as_object().unwrap().keys().collect();
    assert_eq!(
        members,
        ["id", "type", "createdAt", "modifiedAt", "name", "deletedAt"]
    );
}

#[test]
fn notification_data_projects_formats_and_picks() {
    let before = eiffel("Eiffel Tower");
    let after = eiffel("Tour Eiffel");
    let endpoint = json!({"uri": "http://localhost:1111/notify"});
    let only_name = subscription_with(
        json!({"notification": {"attributes": ["name"], "format": "concise", "endpoint": endpoint}}),
    );
    assert_eq!(
        data(&only_name, Some(&before), Some(&after)),
        json!({"id": "urn:ngsi-ld:Building:046_31", "type": "Building", "name": "Tour Eiffel"})
    );
    // 046_42 / 046_43.
    let pick =
        subscription_with(json!({"notification": {"pick": ["id", "name"], "endpoint": endpoint}}));
    assert_eq!(
        data(&pick, Some(&before), Some(&after)),
        json!({"id": "urn:ngsi-ld:Building:046_31", "name": {"type": "Property", "value": "Tour Eiffel"}})
    );
    let omit = subscription_with(
        json!({"notification": {"omit": ["type", "name"], "endpoint": endpoint}}),
    );
    let got = data(&omit, Some(&before), Some(&after));
    let members: Vec<&String> = got.as_object().unwrap().keys().collect();
    assert_eq!(members, ["id", "locatedAt", "street"]);
    // lang shows a LanguageProperty as a Property in that language.
    let lang = subscription_with(
        json!({"lang": "nl", "notification": {"format": "keyValues", "endpoint": endpoint}}),
    );
    assert_eq!(
        data(&lang, Some(&before), Some(&after))["street"],
        json!("Grote Markt")
    );
}

#[test]
fn dataset_ids_filter_what_counts_and_what_is_shown() {
    let entity = |french: &str| {
        building(
            "urn:ngsi-ld:Building:046_19",
            json!({"name": [
                {"type": "Property", "value": "Eiffel Tower"},
                {"type": "Property", "value": french, "datasetId": "urn:ngsi-ld:Dataset:french-name"}
            ]}),
        )
    };
    let s = subscription_with(json!({
        "datasetId": ["urn:ngsi-ld:Dataset:french-name"],
        "notification": {"format": "normalized", "endpoint": {"uri": "http://localhost:1111/notify"}}
    }));
    let (before, after) = (entity("Tour Eiffel"), entity("Le Tour Eiffel"));
    assert_eq!(
        s.evaluate(Some(&before), Some(&after), &ctx(), now()),
        Some(Trigger::AttributeUpdated)
    );
    let got = s.notification_data(Some(&before), Some(&after), &ctx(), now());
    assert_eq!(
        got["name"],
        json!({"type": "Property", "value": "Le Tour Eiffel", "datasetId": "urn:ngsi-ld:Dataset:french-name"})
    );
    let mut default_changed = before.clone();
    default_changed.attributes.get_mut(&name_iri()).unwrap()[0].value =
        crate::model::AttributeValue::Property(json!("Other"));
    assert_eq!(
        s.evaluate(Some(&before), Some(&default_changed), &ctx(), now()),
        None
    );
}

#[test]
fn a_notification_carries_its_subscription_data_and_reason() {
    let n = notification(
        "urn:ngsi-ld:Subscription:1",
        vec![json!({"id": "urn:a:b"})],
        Some(Trigger::AttributeUpdated),
        now(),
    );
    assert_eq!(n["type"], json!("Notification"));
    assert_eq!(n["subscriptionId"], json!("urn:ngsi-ld:Subscription:1"));
    assert_eq!(n["notifiedAt"], json!("2026-04-01T09:00:00Z"));
    assert_eq!(n["data"], json!([{"id": "urn:a:b"}]));
    assert_eq!(n["triggerReason"], json!("attributeUpdated"));
    let id = n["id"].as_str().unwrap();
    let uuid = id.strip_prefix("urn:ngsi-ld:Notification:").unwrap();
    assert_eq!(uuid.len(), 36);
    assert_eq!(&uuid[14..15], "4");
    let other = notification("urn:ngsi-ld:Subscription:1", vec![], None, now());
    assert_ne!(other["id"], n["id"]);
    assert!(other.get("triggerReason").is_none());
}
