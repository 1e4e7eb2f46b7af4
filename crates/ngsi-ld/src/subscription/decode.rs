//! Reading a subscription from a request body (clause 5.8.1) and applying a PATCH
//! (clause 5.8.2). Every refusal is a `BadRequestData` naming the member at fault.

use super::params::decode_notification;
use super::{EntitySelector, Subscription, Trigger, SUBSCRIPTION_TYPE};
use crate::context::{check_iri, ActiveContext};
use crate::query;
use crate::NgsiError;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

pub(super) fn bad(detail: impl Into<String>) -> NgsiError {
    NgsiError::bad_request_data(detail)
}

/// Entity members that `pick` and `omit` may name besides attributes; they are kept
/// as written, attribute names are expanded.
const ENTITY_MEMBERS: &[&str] = &[
    "id",
    "type",
    "scope",
    "createdAt",
    "modifiedAt",
    "deletedAt",
];

pub(super) fn is_entity_member(name: &str) -> bool {
    ENTITY_MEMBERS.contains(&name)
}

impl Subscription {
    /// Decodes a subscription from a request body (parsed JSON; an `@context` member
    /// is ignored here) with the request's active context. `context` is kept as
    /// [`Subscription::context`]; `generated_id` is the id when the body has none.
    pub fn decode(
        body: &Value,
        ctx: &ActiveContext,
        context: Value,
        generated_id: &str,
        now: DateTime<Utc>,
    ) -> Result<Subscription, NgsiError> {
        let obj = body
            .as_object()
            .ok_or_else(|| bad("a subscription must be a JSON object"))?;
        let id = match obj.get("id") {
            None => generated_id.to_owned(),
            Some(Value::String(id)) => {
                check_iri("subscription member 'id'", id)?;
                id.clone()
            }
            Some(other) => {
                return Err(bad(format!(
                    "subscription member 'id' must be a URI string, not {other}"
                )))
            }
        };
        match obj.get("type") {
            Some(Value::String(t)) if t == SUBSCRIPTION_TYPE => {}
            None => {
                return Err(bad(
                    "subscription member 'type' is missing: it must be \"Subscription\"",
                ))
            }
            Some(other) => {
                return Err(bad(format!(
                    "subscription member 'type' must be \"Subscription\", not {other}"
                )))
            }
        }
        let subscription = decode_members(obj, ctx, id, context, now, now)?;
        if let Some(at) = subscription.expires_at {
            if at <= now {
                return Err(bad(format!(
                    "subscription member 'expiresAt' ({}) is not in the future",
                    crate::context::format_time(&at)
                )));
            }
        }
        Ok(subscription)
    }

    /// Applies a PATCH (clause 5.8.2): each member given replaces the stored one, `null`
    /// removes an optional member; the result must still be a valid subscription, and
    /// `id` and `type` cannot change. On error `self` is left as it was.
    pub fn update(
        &mut self,
        patch: &Value,
        ctx: &ActiveContext,
        now: DateTime<Utc>,
    ) -> Result<(), NgsiError> {
        let patch = patch
            .as_object()
            .ok_or_else(|| bad("a subscription fragment must be a JSON object"))?;
        if patch.keys().all(|k| k == "@context") {
            return Err(bad("the subscription fragment changes nothing"));
        }
        match patch.get("id") {
            None => {}
            Some(Value::String(id)) if *id == self.id => {}
            Some(other) => {
                return Err(bad(format!(
                    "subscription member 'id' cannot change (it is {}, the fragment has {other})",
                    self.id
                )))
            }
        }
        match patch.get("type") {
            None => {}
            Some(Value::String(t)) if t == SUBSCRIPTION_TYPE => {}
            Some(other) => {
                return Err(bad(format!(
                    "subscription member 'type' must be \"Subscription\", not {other}"
                )))
            }
        }
        // The stored members in the fragment's terms, overwritten by the fragment, read
        // again: one set of rules for creation and change.
        let mut merged = self.members(&|iri| ctx.compact_iri(iri, true));
        for (name, value) in patch {
            if matches!(name.as_str(), "@context" | "id" | "type") {
                continue;
            }
            if value.is_null() {
                if name == "notification" {
                    return Err(bad(
                        "subscription member 'notification' is mandatory and cannot be removed",
                    ));
                }
                merged.remove(name);
            } else {
                merged.insert(name.clone(), value.clone());
            }
        }
        let updated = decode_members(
            &merged,
            ctx,
            self.id.clone(),
            self.context.clone(),
            self.created_at,
            now,
        )?;
        if let (Some(Value::String(_)), Some(at)) = (patch.get("expiresAt"), updated.expires_at) {
            if at <= now {
                return Err(bad("subscription member 'expiresAt' is not in the future"));
            }
        }
        *self = updated;
        Ok(())
    }
}

/// Reads every member but `id` and `type`, and checks the rules that tie members
/// together. `expiresAt` in the past is the caller's check, since a stored
/// subscription may have expired.
pub(super) fn decode_members(
    obj: &Map<String, Value>,
    ctx: &ActiveContext,
    id: String,
    context: Value,
    created_at: DateTime<Utc>,
    modified_at: DateTime<Utc>,
) -> Result<Subscription, NgsiError> {
    let expand = |name: &str| ctx.expand_iri(name, true);
    let entities = match obj.get("entities") {
        None => Vec::new(),
        Some(v) => decode_entities(v, ctx)?,
    };
    let watched_attributes = match obj.get("watchedAttributes") {
        None => Vec::new(),
        Some(v) => names("watchedAttributes", v, true)?
            .iter()
            .map(|n| expand(n))
            .collect(),
    };
    if entities.is_empty() && watched_attributes.is_empty() {
        return Err(bad(
            "a subscription needs 'entities' or 'watchedAttributes' (or both)",
        ));
    }
    let notification_trigger = match obj.get("notificationTrigger") {
        // Kept explicitly so that GET shows the triggers in force, as the suite expects.
        None => Trigger::DEFAULT.to_vec(),
        Some(v) => names("notificationTrigger", v, true)?
            .iter()
            .map(|t| {
                Trigger::parse(t).ok_or_else(|| {
                    bad(format!(
                        "subscription member 'notificationTrigger' has an unknown trigger '{t}'"
                    ))
                })
            })
            .collect::<Result<_, _>>()?,
    };
    let time_interval = positive_seconds(obj, "timeInterval")?;
    let throttling = positive_seconds(obj, "throttling")?;
    if time_interval.is_some() && !watched_attributes.is_empty() {
        return Err(bad(
            "subscription members 'timeInterval' and 'watchedAttributes' cannot be used together",
        ));
    }
    if time_interval.is_some() && throttling.is_some() {
        return Err(bad(
            "subscription members 'timeInterval' and 'throttling' cannot be used together",
        ));
    }
    // `q` is written as in a query string (the suite sends `name=="Eiffel%20Tower"`):
    // kept decoded, as the query parameter is.
    let q = text(obj, "q")?.map(|q| percent_decode(&q));
    if let Some(q) = &q {
        query::q::parse(q).map_err(|e| bad(format!("subscription member 'q': {}", e.detail)))?;
    }
    let scope_q = text(obj, "scopeQ")?;
    if let Some(scope) = &scope_q {
        query::scope::parse(scope)
            .map_err(|e| bad(format!("subscription member 'scopeQ': {}", e.detail)))?;
    }
    let geo_q = match obj.get("geoQ") {
        None | Some(Value::Null) => None,
        Some(v) => {
            parse_geo_q(v)?;
            Some(v.clone())
        }
    };
    let dataset_id = match obj.get("datasetId") {
        None => Vec::new(),
        Some(v) => {
            let ids = names("datasetId", v, true)?;
            for id in &ids {
                if id != "@none" {
                    check_iri("subscription member 'datasetId'", id)?;
                }
            }
            ids
        }
    };
    let jsonld_context = text(obj, "jsonldContext")?;
    if let Some(url) = &jsonld_context {
        check_iri("subscription member 'jsonldContext'", url)?;
    }
    let is_active = match obj.get("isActive") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(bad(format!(
                "subscription member 'isActive' must be true or false, not {other}"
            )))
        }
    };
    let expires_at = match obj.get("expiresAt") {
        None => None,
        Some(Value::String(t)) => Some(
            DateTime::parse_from_rfc3339(t)
                .map_err(|_| {
                    bad(format!(
                        "subscription member 'expiresAt' must be a date-time such as 2030-04-01T09:00:00Z, not '{t}'"
                    ))
                })?
                .with_timezone(&Utc),
        ),
        Some(other) => {
            return Err(bad(format!(
                "subscription member 'expiresAt' must be a date-time string, not {other}"
            )))
        }
    };
    let notification = match obj.get("notification") {
        Some(Value::Object(n)) => decode_notification(n, ctx)?,
        None => return Err(bad("subscription member 'notification' is missing")),
        Some(other) => {
            return Err(bad(format!(
                "subscription member 'notification' must be an object, not {other}"
            )))
        }
    };
    Ok(Subscription {
        id,
        name: text(obj, "subscriptionName")?.or(text(obj, "name")?),
        description: text(obj, "description")?,
        entities,
        watched_attributes,
        notification_trigger,
        time_interval,
        q,
        geo_q,
        scope_q,
        csf: text(obj, "csf")?,
        lang: text(obj, "lang")?,
        dataset_id,
        jsonld_context,
        is_active,
        expires_at,
        throttling,
        notification,
        context,
        created_at,
        modified_at,
    })
}

fn decode_entities(value: &Value, ctx: &ActiveContext) -> Result<Vec<EntitySelector>, NgsiError> {
    let items = match value {
        Value::Array(items) if !items.is_empty() => items,
        _ => {
            return Err(bad(
                "subscription member 'entities' must be a non-empty array",
            ))
        }
    };
    items
        .iter()
        .enumerate()
        .map(|(i, item)| {
            let at = format!("subscription member 'entities[{i}]'");
            let obj = item
                .as_object()
                .ok_or_else(|| bad(format!("{at} must be an object")))?;
            let type_text = match obj.get("type") {
                Some(Value::String(t)) => t,
                None => return Err(bad(format!("{at} has no 'type'"))),
                Some(other) => {
                    return Err(bad(format!("{at}: 'type' must be a string, not {other}")))
                }
            };
            let mut types = query::types::parse(type_text)
                .map_err(|e| bad(format!("{at}: 'type': {}", e.detail)))?;
            types.map_names(&|name| ctx.expand_iri(name, true));
            let id = match obj.get("id") {
                None => None,
                Some(Value::String(id)) => {
                    check_iri(&format!("{at} 'id'"), id)?;
                    Some(id.clone())
                }
                Some(other) => return Err(bad(format!("{at}: 'id' must be a URI, not {other}"))),
            };
            let id_pattern = match obj.get("idPattern") {
                None => None,
                Some(Value::String(p)) => {
                    regex::Regex::new(p).map_err(|e| {
                        bad(format!(
                            "{at}: 'idPattern' is not a valid regular expression: {e}"
                        ))
                    })?;
                    Some(p.clone())
                }
                Some(other) => {
                    return Err(bad(format!(
                        "{at}: 'idPattern' must be a string, not {other}"
                    )))
                }
            };
            Ok(EntitySelector {
                id,
                id_pattern,
                type_iri: types.to_string(),
            })
        })
        .collect()
}

/// A list of non-empty strings; `non_empty` refuses an empty list.
pub(super) fn names(
    member: &str,
    value: &Value,
    non_empty: bool,
) -> Result<Vec<String>, NgsiError> {
    let items = value.as_array().ok_or_else(|| {
        bad(format!(
            "subscription member '{member}' must be an array of strings"
        ))
    })?;
    if non_empty && items.is_empty() {
        return Err(bad(format!(
            "subscription member '{member}' must not be empty"
        )));
    }
    items
        .iter()
        .map(|item| match item {
            Value::String(s) if !s.trim().is_empty() => Ok(s.clone()),
            other => Err(bad(format!(
                "subscription member '{member}' must hold non-empty strings, not {other}"
            ))),
        })
        .collect()
}

fn text(obj: &Map<String, Value>, member: &str) -> Result<Option<String>, NgsiError> {
    match obj.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(other) => Err(bad(format!(
            "subscription member '{member}' must be a string, not {other}"
        ))),
    }
}

/// A number of seconds that must be a positive integer.
fn positive_seconds(obj: &Map<String, Value>, member: &str) -> Result<Option<u64>, NgsiError> {
    match obj.get(member) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Ok(Some(n)),
            _ => Err(bad(format!(
                "subscription member '{member}' must be a positive whole number of seconds, not {v}"
            ))),
        },
    }
}

/// Parses a subscription's `geoQ` object with the query-parameter parser.
pub(super) fn parse_geo_q(value: &Value) -> Result<query::GeoQuery, NgsiError> {
    let obj = value
        .as_object()
        .ok_or_else(|| bad("subscription member 'geoQ' must be an object"))?;
    let member = |name: &str| -> Result<String, NgsiError> {
        match obj.get(name) {
            Some(Value::String(s)) => Ok(s.clone()),
            // Coordinates are a JSON array in a body and the same text in a query.
            Some(v @ Value::Array(_)) if name == "coordinates" => Ok(v.to_string()),
            None => Err(bad(format!("subscription member 'geoQ' has no '{name}'"))),
            Some(other) => Err(bad(format!(
                "subscription member 'geoQ': '{name}' is not valid: {other}"
            ))),
        }
    };
    let geoproperty = match obj.get("geoproperty") {
        None => None,
        Some(Value::String(s)) => Some(s.as_str()),
        Some(other) => {
            return Err(bad(format!(
                "subscription member 'geoQ': 'geoproperty' must be a string, not {other}"
            )))
        }
    };
    query::geo::parse_geo_query(
        &member("georel")?,
        &member("geometry")?,
        &member("coordinates")?,
        geoproperty,
    )
    .map_err(|e| bad(format!("subscription member 'geoQ': {}", e.detail)))
}

/// Decodes `%XX` escapes (UTF-8); anything that is not a valid escape stays as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(high), Some(low)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((high * 16 + low) as u8);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8(out).unwrap_or_else(|_| text.to_owned())
}

#[cfg(test)]
mod percent_tests {
    use super::percent_decode;

    #[test]
    fn q_escapes_are_decoded_and_stray_percents_kept() {
        assert_eq!(
            percent_decode("name==\"Eiffel%20Tower\""),
            "name==\"Eiffel Tower\""
        );
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%E6%B5%9C"), "浜");
        assert_eq!(percent_decode("%FF"), "%FF");
    }
}
