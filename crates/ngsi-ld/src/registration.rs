//! Context source registrations (clause 5.2.9 `CSourceRegistration`, operations in
//! clause 5.9): reading one from a request body, rendering it for a reader, applying
//! a PATCH, and matching it against a discovery query (clause 5.10). What is stored
//! is the registration's own members with the names that a context gives meaning to
//! (entity types, property and relationship names) expanded to IRIs, so that readers
//! with other contexts see them in their own terms. Other members (`endpoint`, `name`,
//! `description`, `expiresAt`, `management`, `mode`, `operations`, `location`, …)
//! are kept as written; those whose shape renkei relies on are checked. renkei keeps
//! registrations and answers discovery over them; it does not forward requests to the
//! registered sources.

use crate::context::{check_iri, ActiveContext};
use crate::NgsiError;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub const REGISTRATION_TYPE: &str = "ContextSourceRegistration";

/// The name lists of a `RegistrationInfo` that hold attribute names.
const NAME_LISTS: [&str; 2] = ["propertyNames", "relationshipNames"];

fn bad(detail: impl Into<String>) -> NgsiError {
    NgsiError::bad_request_data(detail)
}

/// A registration read from a request: its id and the document to store.
#[derive(Debug, Clone, PartialEq)]
pub struct Registration {
    pub id: String,
    pub doc: Value,
}

impl Registration {
    /// Reads a registration from a request body (an `@context` member is dropped; the
    /// request's context is `ctx`). `generated_id` is the id when the body has none.
    pub fn decode(
        body: &Value,
        ctx: &ActiveContext,
        generated_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Registration, NgsiError> {
        let obj = body
            .as_object()
            .ok_or_else(|| bad("a context source registration must be a JSON object"))?;
        let id = match obj.get("id") {
            None => generated_id.to_owned(),
            Some(Value::String(id)) => {
                check_iri("registration member 'id'", id)?;
                id.clone()
            }
            Some(other) => {
                return Err(bad(format!(
                    "registration member 'id' must be a URI string, not {other}"
                )))
            }
        };
        match obj.get("type") {
            Some(Value::String(t)) if t == REGISTRATION_TYPE => {}
            other => {
                return Err(bad(format!(
                    "registration member 'type' must be \"{REGISTRATION_TYPE}\", not {}",
                    other.map_or("missing".to_owned(), Value::to_string)
                )))
            }
        }
        let mut doc = Map::new();
        for (name, value) in obj {
            match name.as_str() {
                "@context" => {}
                "information" => {
                    doc.insert(name.clone(), information(value, ctx)?);
                }
                "endpoint" => match value {
                    Value::String(url) => {
                        check_iri("registration member 'endpoint'", url)?;
                        doc.insert(name.clone(), value.clone());
                    }
                    other => {
                        return Err(bad(format!(
                            "registration member 'endpoint' must be a URI string, not {other}"
                        )))
                    }
                },
                "expiresAt" => {
                    let at = value
                        .as_str()
                        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                        .ok_or_else(|| {
                            bad(format!(
                                "registration member 'expiresAt' must be a date-time, not {value}"
                            ))
                        })?;
                    if at <= now {
                        return Err(bad(format!(
                            "registration member 'expiresAt' ({value}) is not in the future"
                        )));
                    }
                    doc.insert(name.clone(), value.clone());
                }
                _ => {
                    doc.insert(name.clone(), value.clone());
                }
            }
        }
        doc.insert("id".into(), Value::String(id.clone()));
        if !doc.contains_key("information") {
            return Err(bad("registration member 'information' is missing"));
        }
        if !doc.contains_key("endpoint") {
            return Err(bad("registration member 'endpoint' is missing"));
        }
        Ok(Registration {
            id,
            doc: Value::Object(doc),
        })
    }

    /// The stored document as a reader with context `ctx` sees it.
    pub fn encode(doc: &Value, ctx: &ActiveContext) -> Value {
        let mut out = doc.clone();
        rename_information(&mut out, &|name| ctx.compact_iri(name, true));
        out
    }

    /// Applies a PATCH (clause 5.9.3): the members given replace those stored; `id`
    /// and `type` cannot change. The result is checked as a new registration is.
    pub fn patch(
        doc: &Value,
        fragment: &Value,
        ctx: &ActiveContext,
        now: DateTime<Utc>,
    ) -> Result<Registration, NgsiError> {
        let changes = fragment
            .as_object()
            .ok_or_else(|| bad("a registration update must be a JSON object"))?;
        let mut merged = Registration::encode(doc, ctx);
        let (Some(target), Some(id)) = (merged.as_object_mut(), doc["id"].as_str()) else {
            return Err(bad("the stored registration has no id"));
        };
        for (name, value) in changes {
            match name.as_str() {
                "id" | "type" if value.as_str() != target.get(name).and_then(Value::as_str) => {
                    return Err(bad(format!("registration member '{name}' cannot change")))
                }
                "@context" => {}
                _ => {
                    target.insert(name.clone(), value.clone());
                }
            }
        }
        Registration::decode(&merged, ctx, id, now)
    }
}

/// Whether a stored registration is about any of `types` (expanded IRIs; empty: any),
/// the entity `id` (when given) and any of `attrs` (expanded; empty: any).
pub fn matches(doc: &Value, types: &[String], id: Option<&str>, attrs: &[String]) -> bool {
    let infos = doc["information"].as_array().map_or(&[][..], Vec::as_slice);
    infos.iter().any(|info| {
        let entities = info["entities"].as_array().map_or(&[][..], Vec::as_slice);
        let entity_ok =
            |check: &dyn Fn(&Value) -> bool| entities.is_empty() || entities.iter().any(check);
        let type_ok = types.is_empty()
            || entities.iter().any(|e| {
                e["type"]
                    .as_str()
                    .is_some_and(|t| types.iter().any(|w| w == t))
            });
        let id_ok = id.is_none_or(|id| {
            entity_ok(&|e| match (e["id"].as_str(), e["idPattern"].as_str()) {
                (Some(own), _) => own == id,
                (None, Some(pattern)) => regex::Regex::new(pattern).is_ok_and(|re| re.is_match(id)),
                (None, None) => true,
            })
        });
        let names: Vec<&str> = NAME_LISTS
            .iter()
            .filter_map(|list| info[*list].as_array())
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        let attrs_ok = attrs.is_empty()
            || names.is_empty()
            || attrs.iter().any(|a| names.contains(&a.as_str()));
        type_ok && id_ok && attrs_ok
    })
}

/// Checks `information` and expands the names in it.
fn information(value: &Value, ctx: &ActiveContext) -> Result<Value, NgsiError> {
    let items = match value {
        Value::Array(items) if !items.is_empty() => items,
        _ => {
            return Err(bad(
                "registration member 'information' must be a non-empty array",
            ))
        }
    };
    for (i, item) in items.iter().enumerate() {
        let at = format!("registration member 'information[{i}]'");
        let info = item
            .as_object()
            .ok_or_else(|| bad(format!("{at} must be an object")))?;
        let mut described = false;
        if let Some(entities) = info.get("entities") {
            let list = entities
                .as_array()
                .filter(|l| !l.is_empty())
                .ok_or_else(|| bad(format!("{at}: 'entities' must be a non-empty array")))?;
            for (j, entity) in list.iter().enumerate() {
                let here = format!("{at}: 'entities[{j}]'");
                let e = entity
                    .as_object()
                    .ok_or_else(|| bad(format!("{here} must be an object")))?;
                if !e.get("type").is_some_and(Value::is_string) {
                    return Err(bad(format!("{here} needs a 'type' string")));
                }
                if let Some(id) = e.get("id") {
                    let id = id
                        .as_str()
                        .ok_or_else(|| bad(format!("{here}: 'id' must be a URI string")))?;
                    check_iri(&format!("{here} 'id'"), id)?;
                }
                if let Some(pattern) = e.get("idPattern") {
                    let valid = pattern
                        .as_str()
                        .is_some_and(|p| regex::Regex::new(p).is_ok());
                    if !valid {
                        return Err(bad(format!(
                            "{here}: 'idPattern' must be a valid regular expression"
                        )));
                    }
                }
            }
            described = true;
        }
        for list in NAME_LISTS {
            if let Some(names) = info.get(list) {
                let valid = names.as_array().is_some_and(|l| {
                    !l.is_empty() && l.iter().all(|n| n.as_str().is_some_and(|s| !s.is_empty()))
                });
                if !valid {
                    return Err(bad(format!(
                        "{at}: '{list}' must be a non-empty array of names"
                    )));
                }
                described = true;
            }
        }
        if !described {
            return Err(bad(format!(
                "{at} needs 'entities', 'propertyNames' or 'relationshipNames'"
            )));
        }
    }
    let mut expanded = Value::Object(Map::from_iter([("information".to_owned(), value.clone())]));
    rename_information(&mut expanded, &|name| ctx.expand_iri(name, true));
    Ok(expanded["information"].take())
}

/// Rewrites the entity types and attribute names of `doc["information"]`.
fn rename_information(doc: &mut Value, rename: &dyn Fn(&str) -> String) {
    let Some(infos) = doc.get_mut("information").and_then(Value::as_array_mut) else {
        return;
    };
    for info in infos {
        if let Some(entities) = info.get_mut("entities").and_then(Value::as_array_mut) {
            for entity in entities {
                if let Some(t) = entity.get("type").and_then(Value::as_str) {
                    entity["type"] = Value::String(rename(t));
                }
            }
        }
        for list in NAME_LISTS {
            if let Some(names) = info.get_mut(list).and_then(Value::as_array_mut) {
                for name in names.iter_mut() {
                    if let Some(n) = name.as_str() {
                        *name = Value::String(rename(n));
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ctx() -> ActiveContext {
        ActiveContext::process(
            &json!({"Vehicle": "https://example.org/Vehicle", "speed": "https://example.org/speed"}),
            &crate::context::NoRemoteContexts,
        )
        .unwrap_or_else(|e| panic!("{e:?}"))
    }

    fn body() -> Value {
        json!({
            "id": "urn:ngsi-ld:ContextSourceRegistration:1",
            "type": "ContextSourceRegistration",
            "information": [{
                "entities": [{"id": "urn:ngsi-ld:Vehicle:A1", "type": "Vehicle"},
                             {"idPattern": ".*47$", "type": "Vehicle"}],
                "propertyNames": ["speed"],
            }],
            "endpoint": "http://source.example:1026",
            "@context": "https://example.org/ctx.jsonld",
        })
    }

    fn decoded() -> Registration {
        Registration::decode(&body(), &ctx(), "urn:x:generated", Utc::now())
            .unwrap_or_else(|e| panic!("{e:?}"))
    }

    #[test]
    fn names_are_stored_expanded_and_shown_in_the_readers_terms() {
        let r = decoded();
        assert_eq!(r.id, "urn:ngsi-ld:ContextSourceRegistration:1");
        let info = &r.doc["information"][0];
        assert_eq!(info["entities"][0]["type"], "https://example.org/Vehicle");
        assert_eq!(info["propertyNames"][0], "https://example.org/speed");
        assert!(r.doc.get("@context").is_none());
        assert_eq!(
            Registration::encode(&r.doc, &ctx())["information"],
            body()["information"]
        );
        let core = Registration::encode(&r.doc, &ActiveContext::core());
        assert_eq!(
            core["information"][0]["propertyNames"][0],
            "https://example.org/speed"
        );
    }

    #[test]
    fn every_malformed_member_is_bad_request_data_naming_it() {
        let cases: [(&str, Value); 8] = [
            ("type", json!("Subscription")),
            ("information", json!([])),
            ("information", json!([{}])),
            ("information", json!([{"entities": [{"id": "urn:a:b"}]}])),
            (
                "information",
                json!([{"entities": [{"type": "T", "idPattern": "("}]}]),
            ),
            ("information", json!([{"propertyNames": []}])),
            ("endpoint", json!(42)),
            ("expiresAt", json!("2001-01-01T00:00:00Z")),
        ];
        for (member, value) in cases {
            let mut b = body();
            b[member] = value.clone();
            let err = Registration::decode(&b, &ctx(), "urn:x:g", Utc::now())
                .err()
                .unwrap_or_else(|| panic!("{member} = {value} was accepted"));
            assert_eq!(err.problem, crate::ProblemType::BadRequestData);
            assert!(err.detail.contains(member), "{member}: {}", err.detail);
        }
        let mut b = body();
        b.as_object_mut().map(|o| o.remove("endpoint"));
        assert!(Registration::decode(&b, &ctx(), "urn:x:g", Utc::now()).is_err());
    }

    #[test]
    fn discovery_matches_by_type_id_and_attribute() {
        let doc = decoded().doc;
        let vehicle = vec!["https://example.org/Vehicle".to_owned()];
        let speed = vec!["https://example.org/speed".to_owned()];
        assert!(matches(&doc, &vehicle, None, &[]));
        assert!(!matches(
            &doc,
            &["https://example.org/Bus".to_owned()],
            None,
            &[]
        ));
        assert!(matches(
            &doc,
            &vehicle,
            Some("urn:ngsi-ld:Vehicle:A1"),
            &speed
        ));
        assert!(matches(&doc, &[], Some("urn:ngsi-ld:Vehicle:X47"), &[]));
        assert!(!matches(&doc, &[], Some("urn:ngsi-ld:Vehicle:X48"), &[]));
        assert!(!matches(
            &doc,
            &[],
            None,
            &["https://example.org/colour".to_owned()]
        ));
    }

    #[test]
    fn a_patch_replaces_members_but_never_the_id() {
        let doc = decoded().doc;
        let patched = Registration::patch(
            &doc,
            &json!({"endpoint": "http://other.example", "name": "n"}),
            &ctx(),
            Utc::now(),
        )
        .unwrap_or_else(|e| panic!("{e:?}"));
        assert_eq!(patched.doc["endpoint"], "http://other.example");
        assert_eq!(patched.doc["information"], doc["information"]);
        assert!(
            Registration::patch(&doc, &json!({"id": "urn:x:other"}), &ctx(), Utc::now()).is_err()
        );
        assert!(Registration::patch(&doc, &json!({"endpoint": 1}), &ctx(), Utc::now()).is_err());
    }
}
