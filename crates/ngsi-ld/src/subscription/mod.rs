//! The NGSI-LD Subscription (ETSI GS CIM 009 clause 5.2.12) and its behaviour, free of
//! storage and HTTP: reading one from a request body and validating it (clause 5.8.1),
//! applying a PATCH (clause 5.8.2), rendering it as GET answers it, deciding whether a
//! change of an entity triggers a notification (clauses 5.8.6 and 5.11) and building
//! that notification's data (clause 5.2.14).
//!
//! Names inside a subscription are kept expanded (entity types, watched and notified
//! attributes), like entities, so a subscription made with one `@context` matches
//! entities written with another that means the same. The `q`, `scopeQ` and `geoQ`
//! texts are kept as written: they are validated on the way in and expanded with the
//! subscription's own context when evaluated.
//!
//! The ETSI conformance suite is the yardstick for the shapes: what GET shows (no
//! `isActive` unless it is false, `notificationTrigger` always), what a deleted entity
//! or attribute looks like in a notification (`deletedAt`, the NGSI-LD Null value,
//! `previous…` members with `showChanges`).

mod data;
mod decode;
mod document;
mod notify;
mod params;
#[cfg(test)]
mod tests;

pub use data::notification;

use crate::context::Format;
use chrono::{DateTime, Utc};
use serde_json::Value;

/// The `type` every subscription has.
pub const SUBSCRIPTION_TYPE: &str = "Subscription";

/// One member of `entities` (clause 5.2.33, EntitySelector).
#[derive(Debug, Clone, PartialEq)]
pub struct EntitySelector {
    pub id: Option<String>,
    /// A regular expression the entity id must match, checked to compile.
    pub id_pattern: Option<String>,
    /// The entity type or type expression (clause 4.17, `Building,Tower`), with every
    /// type name expanded; a single type is just its IRI.
    pub type_iri: String,
}

/// What kind of change a notification is about (`notificationTrigger`, clause 5.2.12).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Trigger {
    EntityCreated,
    EntityUpdated,
    EntityDeleted,
    AttributeCreated,
    AttributeUpdated,
    AttributeDeleted,
}

impl Trigger {
    pub const ALL: [Trigger; 6] = [
        Trigger::EntityCreated,
        Trigger::EntityUpdated,
        Trigger::EntityDeleted,
        Trigger::AttributeCreated,
        Trigger::AttributeUpdated,
        Trigger::AttributeDeleted,
    ];

    /// The triggers of a subscription that names none (V1.8: attribute creations and
    /// updates, as the conformance suite expects GET to show).
    pub const DEFAULT: [Trigger; 2] = [Trigger::AttributeCreated, Trigger::AttributeUpdated];

    pub fn as_str(self) -> &'static str {
        match self {
            Trigger::EntityCreated => "entityCreated",
            Trigger::EntityUpdated => "entityUpdated",
            Trigger::EntityDeleted => "entityDeleted",
            Trigger::AttributeCreated => "attributeCreated",
            Trigger::AttributeUpdated => "attributeUpdated",
            Trigger::AttributeDeleted => "attributeDeleted",
        }
    }

    pub fn parse(text: &str) -> Option<Trigger> {
        Trigger::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// Where and how notifications are delivered (clause 5.2.15, Endpoint).
#[derive(Debug, Clone, PartialEq)]
pub struct Endpoint {
    /// An absolute URI with scheme http, https, mqtt or mqtts.
    pub uri: String,
    /// `application/json` (the default) or `application/ld+json`.
    pub accept: String,
    /// Headers (HTTP) or user properties (MQTT) to send with each notification.
    pub receiver_info: Vec<(String, String)>,
    /// Settings of the notifier itself (for MQTT: `MQTT-Version`, `MQTT-QoS`).
    pub notifier_info: Vec<(String, String)>,
}

/// The `notification` member (clause 5.2.14, NotificationParams) as configured; the
/// delivery status members live in [`SubscriptionStatus`].
#[derive(Debug, Clone, PartialEq)]
pub struct NotificationParams {
    /// Attributes to include (expanded); empty means all.
    pub attributes: Vec<String>,
    /// Entity members to keep (clause 4.21, `pick`); attribute names expanded, `id`,
    /// `type` and the other entity members as they are. Empty means no picking.
    pub pick: Vec<String>,
    /// Entity members to leave out (`omit`), named like `pick`.
    pub omit: Vec<String>,
    pub format: Format,
    pub show_changes: bool,
    pub sys_attrs: bool,
    /// `join` (`flat`, `inline` or `@none`) and `joinLevel`: rendering linked entities
    /// needs the store, so the dispatcher does it.
    pub join: Option<String>,
    pub join_level: Option<u64>,
    pub endpoint: Endpoint,
}

/// A subscription as kept, names expanded.
#[derive(Debug, Clone, PartialEq)]
pub struct Subscription {
    pub id: String,
    pub name: Option<String>,
    pub description: Option<String>,
    pub entities: Vec<EntitySelector>,
    /// Expanded attribute IRIs; empty means any attribute.
    pub watched_attributes: Vec<String>,
    /// As given, else [`Trigger::DEFAULT`] (decoding fills it in); empty is read as
    /// the default too.
    pub notification_trigger: Vec<Trigger>,
    /// Seconds between periodic notifications; excludes watchedAttributes and throttling.
    pub time_interval: Option<u64>,
    pub q: Option<String>,
    /// The `geoQ` object as given (`geometry`, `coordinates`, `georel`, `geoproperty`).
    pub geo_q: Option<Value>,
    pub scope_q: Option<String>,
    pub csf: Option<String>,
    pub lang: Option<String>,
    /// `datasetId` (V1.8): only these attribute instances count and are notified;
    /// `@none` stands for the default instance. Empty means all instances.
    pub dataset_id: Vec<String>,
    /// `jsonldContext`: the URL of the context to compact notifications with, when the
    /// subscriber wants another than the one the subscription was created with.
    pub jsonld_context: Option<String>,
    pub is_active: bool,
    pub expires_at: Option<DateTime<Utc>>,
    /// Minimal seconds between two notifications.
    pub throttling: Option<u64>,
    pub notification: NotificationParams,
    /// The `@context` the subscription was created with (URL, object or array).
    pub context: Value,
    pub created_at: DateTime<Utc>,
    pub modified_at: DateTime<Utc>,
}

/// The delivery status of a subscription, kept by whoever delivers notifications.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SubscriptionStatus {
    pub times_sent: u64,
    pub times_failed: u64,
    pub last_notification: Option<DateTime<Utc>>,
    pub last_success: Option<DateTime<Utc>>,
    pub last_failure: Option<DateTime<Utc>>,
}

impl Subscription {
    /// Whether notifications may be sent at `now`: not paused and not expired.
    pub fn is_active_at(&self, now: DateTime<Utc>) -> bool {
        self.is_active && self.expires_at.is_none_or(|at| at > now)
    }

    /// `status` as clause 5.2.12 defines it: `expired` once `expiresAt` has passed,
    /// `paused` while `isActive` is false, else `active`.
    pub fn status_at(&self, now: DateTime<Utc>) -> &'static str {
        if self.expires_at.is_some_and(|at| at <= now) {
            "expired"
        } else if !self.is_active {
            "paused"
        } else {
            "active"
        }
    }

    /// The triggers in force: the given ones, else the default.
    pub fn triggers(&self) -> &[Trigger] {
        if self.notification_trigger.is_empty() {
            &Trigger::DEFAULT
        } else {
            &self.notification_trigger
        }
    }
}
