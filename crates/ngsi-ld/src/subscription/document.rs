//! A subscription written out: as GET answers it (compacted, with its status), and as
//! the document stores keep (expanded, read back with [`Subscription::from_document`]).

use super::decode::decode_members;
use super::{Subscription, SubscriptionStatus, SUBSCRIPTION_TYPE};
use crate::context::{format_time, ActiveContext, Format};
use crate::query;
use crate::NgsiError;
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

impl Subscription {
    /// The subscription as GET answers it (clause 5.2.12), names compacted with `ctx`:
    /// its members, `status`, the delivery status inside `notification` (`timesSent`,
    /// `timesFailed`, and `lastNotification`, `lastSuccess`, `lastFailure` and `status`
    /// once there is one), `isActive` only when false (the conformance suite compares
    /// the answer exactly and expects no `isActive` on active subscriptions), and
    /// `createdAt`/`modifiedAt` with `sys_attrs`. No `@context`: that is the binding's.
    pub fn encode(
        &self,
        ctx: &ActiveContext,
        status: &SubscriptionStatus,
        sys_attrs: bool,
        now: DateTime<Utc>,
    ) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("type".into(), json!(SUBSCRIPTION_TYPE));
        let mut members = self.members(&|iri| ctx.compact_iri(iri, true));
        if self.is_active {
            members.shift_remove("isActive");
        }
        if let Some(Value::Object(notification)) = members.get_mut("notification") {
            // Shown once there is something to count (a new subscription's answer has
            // neither, as the conformance suite expects).
            if status.times_sent > 0 {
                notification.insert("timesSent".into(), json!(status.times_sent));
            }
            if status.times_failed > 0 {
                notification.insert("timesFailed".into(), json!(status.times_failed));
            }
            let times = [
                ("lastNotification", status.last_notification),
                ("lastSuccess", status.last_success),
                ("lastFailure", status.last_failure),
            ];
            for (name, time) in times {
                if let Some(t) = time {
                    notification.insert(name.into(), json!(format_time(&t)));
                }
            }
            if status.last_notification.is_some() {
                let failed = match (status.last_failure, status.last_success) {
                    (Some(failure), Some(success)) => failure > success,
                    (Some(_), None) => true,
                    _ => false,
                };
                notification.insert("status".into(), json!(if failed { "failed" } else { "ok" }));
            }
        }
        out.extend(members);
        out.insert("status".into(), json!(self.status_at(now)));
        if sys_attrs {
            out.insert("createdAt".into(), json!(format_time(&self.created_at)));
            out.insert("modifiedAt".into(), json!(format_time(&self.modified_at)));
        }
        Value::Object(out)
    }

    /// The document to store: every member with names expanded, plus `@context`,
    /// `createdAt` and `modifiedAt`.
    pub fn to_document(&self) -> Value {
        let mut out = Map::new();
        out.insert("id".into(), json!(self.id));
        out.insert("type".into(), json!(SUBSCRIPTION_TYPE));
        out.extend(self.members(&|iri| iri.to_owned()));
        out.insert("@context".into(), self.context.clone());
        out.insert("createdAt".into(), json!(format_time(&self.created_at)));
        out.insert("modifiedAt".into(), json!(format_time(&self.modified_at)));
        Value::Object(out)
    }

    /// Reads back what [`Subscription::to_document`] wrote.
    pub fn from_document(document: &Value) -> Result<Subscription, NgsiError> {
        let obj = document.as_object().ok_or_else(|| {
            NgsiError::bad_request_data("a stored subscription must be an object")
        })?;
        let id = obj
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| NgsiError::bad_request_data("a stored subscription has no id"))?;
        let time = |member: &str| {
            obj.get(member)
                .and_then(Value::as_str)
                .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
                .map(|t| t.with_timezone(&Utc))
                .ok_or_else(|| {
                    NgsiError::bad_request_data(format!("a stored subscription has no {member}"))
                })
        };
        // Expanded IRIs expand to themselves with the core context.
        decode_members(
            obj,
            &ActiveContext::core(),
            id.to_owned(),
            obj.get("@context").cloned().unwrap_or(Value::Null),
            time("createdAt")?,
            time("modifiedAt")?,
        )
    }

    /// The members other than `id` and `type`, in request form, IRIs passed through
    /// `compact`. Reading them back with the same context gives the same subscription.
    pub(super) fn members(&self, compact: &dyn Fn(&str) -> String) -> Map<String, Value> {
        let mut out = Map::new();
        let mut put = |name: &str, value: Option<Value>| {
            if let Some(v) = value {
                out.insert(name.to_owned(), v);
            }
        };
        let strings = |items: &[String]| -> Option<Value> {
            (!items.is_empty()).then(|| json!(items.iter().map(|i| compact(i)).collect::<Vec<_>>()))
        };
        put("subscriptionName", self.name.as_ref().map(|n| json!(n)));
        put("description", self.description.as_ref().map(|d| json!(d)));
        if !self.entities.is_empty() {
            let entities = self
                .entities
                .iter()
                .map(|selector| {
                    let mut e = Map::new();
                    if let Some(id) = &selector.id {
                        e.insert("id".into(), json!(id));
                    }
                    if let Some(p) = &selector.id_pattern {
                        e.insert("idPattern".into(), json!(p));
                    }
                    e.insert(
                        "type".into(),
                        json!(compact_type_expr(&selector.type_iri, compact)),
                    );
                    Value::Object(e)
                })
                .collect();
            put("entities", Some(Value::Array(entities)));
        }
        put("watchedAttributes", strings(&self.watched_attributes));
        let triggers: Vec<&str> = self.triggers().iter().map(|t| t.as_str()).collect();
        put("notificationTrigger", Some(json!(triggers)));
        put("timeInterval", self.time_interval.map(|t| json!(t)));
        put("q", self.q.as_ref().map(|q| json!(q)));
        put("geoQ", self.geo_q.clone());
        put("scopeQ", self.scope_q.as_ref().map(|s| json!(s)));
        put("csf", self.csf.as_ref().map(|c| json!(c)));
        put("lang", self.lang.as_ref().map(|l| json!(l)));
        put(
            "datasetId",
            (!self.dataset_id.is_empty()).then(|| json!(self.dataset_id)),
        );
        put(
            "jsonldContext",
            self.jsonld_context.as_ref().map(|c| json!(c)),
        );
        put("isActive", Some(json!(self.is_active)));
        put("expiresAt", self.expires_at.map(|t| json!(format_time(&t))));
        put("throttling", self.throttling.map(|t| json!(t)));

        let n = &self.notification;
        let mut notification = Map::new();
        if !n.attributes.is_empty() {
            notification.insert(
                "attributes".into(),
                json!(n.attributes.iter().map(|a| compact(a)).collect::<Vec<_>>()),
            );
        }
        let member = |m: &String| -> String {
            if super::decode::is_entity_member(m) {
                m.clone()
            } else {
                compact(m)
            }
        };
        if !n.pick.is_empty() {
            notification.insert(
                "pick".into(),
                json!(n.pick.iter().map(member).collect::<Vec<_>>()),
            );
        }
        if !n.omit.is_empty() {
            notification.insert(
                "omit".into(),
                json!(n.omit.iter().map(member).collect::<Vec<_>>()),
            );
        }
        let format = match n.format {
            Format::Normalized => "normalized",
            Format::Concise => "concise",
            Format::KeyValues => "keyValues",
        };
        notification.insert("format".into(), json!(format));
        if n.show_changes {
            notification.insert("showChanges".into(), json!(true));
        }
        if n.sys_attrs {
            notification.insert("sysAttrs".into(), json!(true));
        }
        if let Some(join) = &n.join {
            notification.insert("join".into(), json!(join));
        }
        if let Some(level) = n.join_level {
            notification.insert("joinLevel".into(), json!(level));
        }
        let key_values = |pairs: &[(String, String)]| {
            json!(pairs
                .iter()
                .map(|(k, v)| json!({"key": k, "value": v}))
                .collect::<Vec<_>>())
        };
        let mut endpoint = Map::new();
        endpoint.insert("uri".into(), json!(n.endpoint.uri));
        endpoint.insert("accept".into(), json!(n.endpoint.accept));
        if !n.endpoint.receiver_info.is_empty() {
            endpoint.insert("receiverInfo".into(), key_values(&n.endpoint.receiver_info));
        }
        if !n.endpoint.notifier_info.is_empty() {
            endpoint.insert("notifierInfo".into(), key_values(&n.endpoint.notifier_info));
        }
        notification.insert("endpoint".into(), Value::Object(endpoint));
        out.insert("notification".into(), Value::Object(notification));
        out
    }
}

/// A stored (expanded) type expression with its names compacted.
fn compact_type_expr(text: &str, compact: &dyn Fn(&str) -> String) -> String {
    match query::types::parse(text) {
        Ok(mut expr) => {
            expr.map_names(compact);
            expr.to_string()
        }
        // Only a hand-built selector can hold an unparsable text; show it as it is.
        Err(_) => text.to_owned(),
    }
}
