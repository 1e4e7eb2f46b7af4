//! Reading the `notification` member of a subscription (clause 5.2.14,
//! NotificationParams) and its `endpoint` (clause 5.2.15).

use super::decode::{bad, is_entity_member, names};
use super::{Endpoint, NotificationParams};
use crate::context::{check_iri, ActiveContext, Format};
use crate::NgsiError;
use serde_json::{Map, Value};

const ENDPOINT_SCHEMES: &[&str] = &["http", "https", "mqtt", "mqtts"];
const ENDPOINT_ACCEPTS: &[&str] = &["application/json", "application/ld+json"];

pub(super) fn decode_notification(
    obj: &Map<String, Value>,
    ctx: &ActiveContext,
) -> Result<NotificationParams, NgsiError> {
    let member_name = |name: &String| {
        if is_entity_member(name) {
            name.clone()
        } else {
            ctx.expand_iri(name, true)
        }
    };
    let list = |member: &str| -> Result<Vec<String>, NgsiError> {
        match obj.get(member) {
            None | Some(Value::Null) => Ok(Vec::new()),
            Some(v) => names(&format!("notification.{member}"), v, false),
        }
    };
    let attributes: Vec<String> = list("attributes")?
        .iter()
        .map(|n| ctx.expand_iri(n, true))
        .collect();
    let pick: Vec<String> = list("pick")?.iter().map(member_name).collect();
    let omit: Vec<String> = list("omit")?.iter().map(member_name).collect();
    let picks_or_omits = !pick.is_empty() || !omit.is_empty();
    if !attributes.is_empty() && picks_or_omits {
        return Err(bad(
            "subscription member 'notification': 'attributes' cannot be used with 'pick' or 'omit'",
        ));
    }
    if let Some(both) = pick.iter().find(|p| omit.contains(p)) {
        return Err(bad(format!(
            "subscription member 'notification': '{}' is both picked and omitted",
            ctx.compact_iri(both, true)
        )));
    }
    let format = match obj.get("format") {
        None | Some(Value::Null) => Format::Normalized,
        Some(Value::String(f)) => match f.as_str() {
            "normalized" => Format::Normalized,
            "concise" => Format::Concise,
            "keyValues" | "simplified" => Format::KeyValues,
            _ => {
                return Err(bad(format!(
                    "subscription member 'notification.format' must be normalized, concise or keyValues, not '{f}'"
                )))
            }
        },
        Some(other) => {
            return Err(bad(format!(
                "subscription member 'notification.format' must be a string, not {other}"
            )))
        }
    };
    let flag = |member: &str| match obj.get(member) {
        None | Some(Value::Null) => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(other) => Err(bad(format!(
            "subscription member 'notification.{member}' must be true or false, not {other}"
        ))),
    };
    let join = match obj.get("join") {
        None | Some(Value::Null) => None,
        Some(Value::String(j)) if matches!(j.as_str(), "flat" | "inline" | "@none") => {
            Some(j.clone())
        }
        Some(other) => {
            return Err(bad(format!(
                "subscription member 'notification.join' must be flat, inline or @none, not {other}"
            )))
        }
    };
    let join_level = match obj.get("joinLevel") {
        None | Some(Value::Null) => None,
        Some(v) => match v.as_u64() {
            Some(n) if n > 0 => Some(n),
            _ => {
                return Err(bad(format!(
                "subscription member 'notification.joinLevel' must be a positive integer, not {v}"
            )))
            }
        },
    };
    let endpoint = match obj.get("endpoint") {
        Some(Value::Object(e)) => decode_endpoint(e)?,
        None | Some(Value::Null) => {
            return Err(bad(
                "subscription member 'notification.endpoint' is missing",
            ))
        }
        Some(other) => {
            return Err(bad(format!(
                "subscription member 'notification.endpoint' must be an object, not {other}"
            )))
        }
    };
    Ok(NotificationParams {
        attributes,
        pick,
        omit,
        format,
        show_changes: flag("showChanges")?,
        sys_attrs: flag("sysAttrs")?,
        join,
        join_level,
        endpoint,
    })
}

fn decode_endpoint(obj: &Map<String, Value>) -> Result<Endpoint, NgsiError> {
    let uri = match obj.get("uri") {
        Some(Value::String(uri)) => uri.clone(),
        None => {
            return Err(bad(
                "subscription member 'notification.endpoint.uri' is missing",
            ))
        }
        Some(other) => {
            return Err(bad(format!(
                "subscription member 'notification.endpoint.uri' must be a string, not {other}"
            )))
        }
    };
    check_iri("subscription member 'notification.endpoint.uri'", &uri)?;
    let scheme = uri
        .split_once(':')
        .map(|(s, _)| s.to_ascii_lowercase())
        .unwrap_or_default();
    if !ENDPOINT_SCHEMES.contains(&scheme.as_str()) {
        return Err(bad(format!(
            "subscription member 'notification.endpoint.uri' must use http, https, mqtt or mqtts, not '{scheme}'"
        )));
    }
    if !uri[scheme.len() + 1..].starts_with("//") || uri.len() <= scheme.len() + 3 {
        return Err(bad(format!(
            "subscription member 'notification.endpoint.uri' '{uri}' names no host"
        )));
    }
    let accept = match obj.get("accept") {
        None | Some(Value::Null) => "application/json".to_owned(),
        Some(Value::String(a)) if ENDPOINT_ACCEPTS.contains(&a.as_str()) => a.clone(),
        Some(other) => {
            return Err(bad(format!(
                "subscription member 'notification.endpoint.accept' must be application/json or application/ld+json, not {other}"
            )))
        }
    };
    Ok(Endpoint {
        uri,
        accept,
        receiver_info: key_values(obj, "receiverInfo")?,
        notifier_info: key_values(obj, "notifierInfo")?,
    })
}

/// `receiverInfo` / `notifierInfo`: an array of `{"key": …, "value": …}`.
fn key_values(obj: &Map<String, Value>, member: &str) -> Result<Vec<(String, String)>, NgsiError> {
    let at = format!("subscription member 'notification.endpoint.{member}'");
    match obj.get(member) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| {
                match (
                    item.get("key").and_then(Value::as_str),
                    item.get("value").and_then(Value::as_str),
                ) {
                    (Some(k), Some(v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
                    _ => Err(bad(format!(
                        "{at} must hold objects with a string 'key' and 'value', not {item}"
                    ))),
                }
            })
            .collect(),
        Some(other) => Err(bad(format!("{at} must be an array, not {other}"))),
    }
}
