//! What accompanies a notification whichever the binding: the headers of an HTTP
//! notification (clause 7.2) double as the `metadata` of an MQTT one (clause 7.3), and the
//! body differs between `application/json` and `application/ld+json` only by where the
//! context is named.

use crate::{Accept, Endpoint, Outgoing};

/// The `rel` and `type` parameters of a JSON-LD context `Link` header (JSON-LD 1.1 §6.1).
const CONTEXT_LINK_PARAMS: &str =
    r#"rel="http://www.w3.org/ns/json-ld#context"; type="application/ld+json""#;

/// The header carrying the tenant (clause 6.3.14).
pub(crate) const TENANT_HEADER: &str = "NGSILD-Tenant";

/// Headers (HTTP) or metadata entries (MQTT), in sending order: `Content-Type`, `Link` when
/// the context is not in the body, `NGSILD-Tenant` when there is a tenant, then every
/// `receiverInfo` pair as given.
pub(crate) fn notification_headers(
    endpoint: &Endpoint,
    outgoing: &Outgoing<'_>,
) -> Vec<(String, String)> {
    let mut headers = Vec::with_capacity(3 + endpoint.receiver_info.len());
    headers.push((
        "Content-Type".to_owned(),
        endpoint.accept.content_type().to_owned(),
    ));
    if endpoint.accept == Accept::Json {
        headers.push((
            "Link".to_owned(),
            format!("<{}>; {CONTEXT_LINK_PARAMS}", outgoing.context_url),
        ));
    }
    if let Some(tenant) = outgoing.tenant {
        headers.push((TENANT_HEADER.to_owned(), tenant.to_owned()));
    }
    headers.extend(endpoint.receiver_info.iter().cloned());
    headers
}

/// The notification as sent: unchanged for `application/json`; for
/// `application/ld+json` with `"@context"` added to the notification and to each
/// entity in its `data`, so that every entity can be read on its own.
pub(crate) fn notification_body(endpoint: &Endpoint, outgoing: &Outgoing<'_>) -> serde_json::Value {
    let mut body = outgoing.notification.clone();
    if endpoint.accept == Accept::JsonLd {
        let context = serde_json::Value::String(outgoing.context_url.to_owned());
        if let serde_json::Value::Object(members) = &mut body {
            if let Some(serde_json::Value::Array(data)) = members.get_mut("data") {
                for entity in data {
                    if let serde_json::Value::Object(entity) = entity {
                        entity.insert("@context".to_owned(), context.clone());
                    }
                }
            }
            members.insert("@context".to_owned(), context);
        }
    }
    body
}
