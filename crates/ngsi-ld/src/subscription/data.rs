//! What a notification says about a change (clause 5.2.14), with the shapes the
//! conformance suite expects for deletions (`deletedAt`, the NGSI-LD Null) and
//! `showChanges` (`previousValue`, `previousObject`, …), and the notification itself.

use super::decode::is_entity_member;
use super::{Subscription, Trigger};
use crate::context::codec::NGSI_LD_NULL;
use crate::context::{encode_entity, format_time, ActiveContext, Format, RenderOptions};
use crate::model::{Attribute, AttributeValue, Entity, RelationshipObject};
use chrono::{DateTime, Utc};
use serde_json::{json, Map, Value};

/// The members that hold an attribute's value, one per kind.
const VALUE_MEMBERS: &[&str] = &[
    "value",
    "object",
    "languageMap",
    "vocab",
    "valueList",
    "objectList",
    "json",
];

/// How an instance shown in a notification changed, with its value before.
enum Mark {
    Deleted(Attribute),
    Updated(Attribute),
}

impl Subscription {
    /// The data entry for one entity in a notification: the entity after the change
    /// with only `notification.attributes` (if any) and the instances `datasetId` lets
    /// count, in `notification.format`, with `sysAttrs` and `lang`, compacted with
    /// `ctx`, then `pick`/`omit` applied. Attributes the change deleted are shown with
    /// the NGSI-LD Null as value (and `deletedAt` with sysAttrs). With `showChanges`,
    /// updated and deleted instances carry their value before (`previousValue`,
    /// `previousObject`, `previousLanguageMap`, …).
    ///
    /// A deleted entity is shown as `id`, `type` and `deletedAt` (`changed_at`), with
    /// `createdAt`/`modifiedAt` under sysAttrs, and as deleted attributes those that
    /// are watched or asked for in `notification.attributes` — all of them with
    /// `showChanges`.
    pub fn notification_data(
        &self,
        before: Option<&Entity>,
        after: Option<&Entity>,
        ctx: &ActiveContext,
        changed_at: DateTime<Utc>,
    ) -> Value {
        let Some(base) = after.or(before) else {
            return Value::Null;
        };
        let params = &self.notification;
        let projected = |name: &str| {
            params.attributes.is_empty() || params.attributes.iter().any(|a| a == name)
        };
        let mut display = Entity {
            attributes: Default::default(),
            ..base.clone()
        };
        let mut marks: Vec<(String, Option<String>, Mark)> = Vec::new();
        match after {
            None => {
                let named = |name: &String| {
                    params.show_changes
                        || self.watched_attributes.contains(name)
                        || params.attributes.contains(name)
                };
                for (name, instances) in &base.attributes {
                    if !projected(name) || !named(name) {
                        continue;
                    }
                    for instance in instances.iter().filter(|i| self.counts(i)) {
                        display
                            .attributes
                            .entry(name.clone())
                            .or_default()
                            .push(instance.clone());
                        marks.push((
                            name.clone(),
                            instance.dataset_id.clone(),
                            Mark::Deleted(instance.clone()),
                        ));
                    }
                }
            }
            Some(after) => {
                for (name, instances) in &after.attributes {
                    if !projected(name) {
                        continue;
                    }
                    for instance in instances.iter().filter(|i| self.counts(i)) {
                        display
                            .attributes
                            .entry(name.clone())
                            .or_default()
                            .push(instance.clone());
                        let previous =
                            before.and_then(|b| b.attribute(name, instance.dataset_id.as_deref()));
                        if let Some(previous) = previous {
                            if previous.value != instance.value {
                                marks.push((
                                    name.clone(),
                                    instance.dataset_id.clone(),
                                    Mark::Updated(previous.clone()),
                                ));
                            }
                        }
                    }
                }
                for (name, instances) in before.map(|b| &b.attributes).into_iter().flatten() {
                    if !projected(name) {
                        continue;
                    }
                    for instance in instances.iter().filter(|i| self.counts(i)) {
                        if after
                            .attribute(name, instance.dataset_id.as_deref())
                            .is_none()
                        {
                            display
                                .attributes
                                .entry(name.clone())
                                .or_default()
                                .push(instance.clone());
                            marks.push((
                                name.clone(),
                                instance.dataset_id.clone(),
                                Mark::Deleted(instance.clone()),
                            ));
                        }
                    }
                }
            }
        }
        let options = RenderOptions {
            format: params.format,
            sys_attrs: params.sys_attrs,
            lang: self.lang.clone(),
        };
        let mut out = match encode_entity(&display, ctx, &options) {
            Value::Object(map) => map,
            _ => Map::new(),
        };
        for (name, dataset_id, mark) in &marks {
            let instances = &display.attributes[name];
            let Some(slot) = out.get_mut(&ctx.compact_iri(name, true)) else {
                continue;
            };
            self.mark_instance(
                slot,
                instances,
                dataset_id.as_deref(),
                mark,
                ctx,
                changed_at,
                after.is_none(),
            );
        }
        // The entity's own timestamps: the renderer leaves them out of keyValues, but a
        // notification asked for with sysAttrs carries them in every format.
        if params.sys_attrs && (after.is_none() || params.format == Format::KeyValues) {
            for (member, time) in [
                ("createdAt", base.created_at),
                ("modifiedAt", base.modified_at),
            ] {
                if let Some(t) = time {
                    out.insert(member.into(), json!(format_time(&t)));
                }
            }
        }
        if after.is_none() {
            out.insert("deletedAt".into(), json!(format_time(&changed_at)));
        }
        self.pick_and_omit(&mut out, ctx);
        Value::Object(out)
    }

    /// Rewrites the rendering of one instance for its change: the NGSI-LD Null for a
    /// deletion, the `previous…` member with `showChanges`.
    #[allow(clippy::too_many_arguments)]
    fn mark_instance(
        &self,
        slot: &mut Value,
        instances: &[Attribute],
        dataset_id: Option<&str>,
        mark: &Mark,
        ctx: &ActiveContext,
        changed_at: DateTime<Utc>,
        entity_deleted: bool,
    ) {
        let Some(index) = instances
            .iter()
            .position(|i| i.dataset_id.as_deref() == dataset_id)
        else {
            return;
        };
        let params = &self.notification;
        if matches!(mark, Mark::Updated(_)) && !params.show_changes {
            return;
        }
        if params.format == Format::KeyValues {
            // keyValues shows one instance: the default one, else the first.
            let shown = instances
                .iter()
                .position(|i| i.dataset_id.is_none())
                .unwrap_or(0);
            if shown == index && matches!(mark, Mark::Deleted(_)) {
                *slot = json!(NGSI_LD_NULL);
            }
            return;
        }
        let target = if instances.len() == 1 {
            slot
        } else {
            match slot.get_mut(index) {
                Some(t) => t,
                None => return,
            }
        };
        if !target.is_object() {
            // A concise bare value has nowhere to put the change: give it its member.
            *target = json!({ "value": target.take() });
        }
        let Value::Object(object) = target else {
            return;
        };
        match mark {
            Mark::Deleted(previous) => {
                for member in VALUE_MEMBERS {
                    if let Some(value) = object.get_mut(*member) {
                        // A deleted LanguageProperty's null keeps the map shape
                        // (clause 4.5.18); a deleted entity's attributes are plain
                        // nulls (as the suite's 046_34 and 046_37 expect).
                        *value = if *member == "languageMap" && !entity_deleted {
                            json!({"@none": NGSI_LD_NULL})
                        } else {
                            json!(NGSI_LD_NULL)
                        };
                    }
                }
                if params.sys_attrs {
                    object.insert("deletedAt".into(), json!(format_time(&changed_at)));
                }
                if params.show_changes {
                    let (member, value) = previous_member(&previous.value, ctx);
                    object.insert(member.into(), value);
                }
            }
            Mark::Updated(previous) => {
                let (member, value) = previous_member(&previous.value, ctx);
                object.insert(member.into(), value);
            }
        }
    }

    /// Applies `notification.pick` and `notification.omit` to the rendered entity.
    fn pick_and_omit(&self, out: &mut Map<String, Value>, ctx: &ActiveContext) {
        let compact = |name: &String| {
            if is_entity_member(name) {
                name.clone()
            } else {
                ctx.compact_iri(name, true)
            }
        };
        let params = &self.notification;
        if !params.pick.is_empty() {
            let keep: Vec<String> = params.pick.iter().map(compact).collect();
            out.retain(|member, _| keep.contains(member));
        }
        for member in params.omit.iter().map(compact) {
            out.shift_remove(&member);
        }
    }
}

/// The `previous…` member for a value before a change (clause 4.5.18, showChanges).
fn previous_member(value: &AttributeValue, ctx: &ActiveContext) -> (&'static str, Value) {
    match value {
        AttributeValue::Property(v) | AttributeValue::GeoProperty(v) => {
            ("previousValue", v.clone())
        }
        AttributeValue::Relationship { object, .. } => (
            "previousObject",
            match object {
                RelationshipObject::One(o) => json!(o),
                RelationshipObject::Many(os) => json!(os),
            },
        ),
        AttributeValue::LanguageProperty(map) => ("previousLanguageMap", json!(map)),
        AttributeValue::VocabProperty(terms) => {
            let compacted: Vec<String> = terms.iter().map(|t| ctx.compact_iri(t, true)).collect();
            let value = match compacted.as_slice() {
                [one] => json!(one),
                _ => json!(compacted),
            };
            ("previousVocab", value)
        }
        AttributeValue::ListProperty(items) => ("previousValueList", json!(items)),
        AttributeValue::ListRelationship(items) => ("previousObjectList", json!(items)),
        AttributeValue::JsonProperty(v) => ("previousJson", v.clone()),
    }
}

/// A whole notification (clause 5.2.14): a fresh `urn:ngsi-ld:Notification:<uuid>`,
/// the subscription, the time, the data and, for a change, why it was sent.
pub fn notification(
    subscription_id: &str,
    data: Vec<Value>,
    trigger: Option<Trigger>,
    now: DateTime<Utc>,
) -> Value {
    let mut out = Map::new();
    out.insert(
        "id".into(),
        json!(format!("urn:ngsi-ld:Notification:{}", uuid::Uuid::new_v4())),
    );
    out.insert("type".into(), json!("Notification"));
    out.insert("subscriptionId".into(), json!(subscription_id));
    out.insert("notifiedAt".into(), json!(format_time(&now)));
    out.insert("data".into(), Value::Array(data));
    if let Some(trigger) = trigger {
        out.insert("triggerReason".into(), json!(trigger.as_str()));
    }
    Value::Object(out)
}
