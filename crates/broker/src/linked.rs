//! Linked entity retrieval (ETSI GS CIM 009 V1.8 clause 4.5.23): following the
//! Relationships of retrieved entities to the entities they point at, level by level
//! (`joinLevel`), within the same tenant. How the linked entities are shown (`flat`
//! or `inline`) is the renderer's business; this module only finds them.

use crate::visibility::Visibility;
use crate::{store_error, Broker};
use ngsi_ld::model::{AttributeValue, Entity, RelationshipObject};
use ngsi_ld::NgsiError;
use std::collections::{BTreeMap, BTreeSet};
use store::{EntityStore, Tenant};

/// At most this many linked entities are fetched for one answer, so that a high
/// `joinLevel` over a densely linked graph cannot make one request read the store dry.
pub const MAX_LINKED_ENTITIES: usize = 1000;

/// Entities reached by following relationships, by id.
pub type LinkedEntities = BTreeMap<String, Entity>;

/// The ids an entity's top-level Relationships point at, in attribute order.
pub fn relationship_targets(entity: &Entity) -> Vec<&str> {
    let mut targets = Vec::new();
    for instances in entity.attributes.values() {
        for attribute in instances {
            if let AttributeValue::Relationship { object, .. } = &attribute.value {
                match object {
                    RelationshipObject::One(id) => targets.push(id.as_str()),
                    RelationshipObject::Many(ids) => targets.extend(ids.iter().map(String::as_str)),
                }
            }
        }
    }
    targets
}

impl Broker {
    /// The entities linked from `roots` through up to `levels` hops of Relationships,
    /// as [`follow_links`] finds them in this broker's store.
    pub async fn linked_entities(
        &self,
        tenant: &Tenant,
        roots: &[&Entity],
        levels: usize,
        visibility: &Visibility,
    ) -> Result<LinkedEntities, NgsiError> {
        follow_links(self.store().as_ref(), tenant, roots, levels, visibility).await
    }
}

/// The entities linked from `roots` through up to `levels` hops of Relationships.
/// Targets that do not exist are skipped, as the specification asks; neither roots
/// nor entities seen before are fetched again, so cycles end. Entities the reader
/// may not see are skipped as if they did not exist. Queries and notifications
/// (`notification.join`) both join through here.
pub async fn follow_links(
    store: &dyn EntityStore,
    tenant: &Tenant,
    roots: &[&Entity],
    levels: usize,
    visibility: &Visibility,
) -> Result<LinkedEntities, NgsiError> {
    let mut found = LinkedEntities::new();
    let mut seen: BTreeSet<String> = roots.iter().map(|e| e.id.clone()).collect();
    let mut frontier: Vec<String> = Vec::new();
    for root in roots {
        frontier.extend(relationship_targets(root).into_iter().map(str::to_owned));
    }
    for _ in 0..levels {
        let mut next = Vec::new();
        for id in frontier {
            if !seen.insert(id.clone()) {
                continue;
            }
            if found.len() >= MAX_LINKED_ENTITIES {
                return Ok(found);
            }
            let entity = store.get_entity(tenant, &id).await.map_err(store_error)?;
            // A hidden entity is treated as absent: neither shown nor followed.
            if let Some(entity) = entity.filter(|e| visibility.allows(e)) {
                next.extend(relationship_targets(&entity).into_iter().map(str::to_owned));
                found.insert(id, entity);
            }
        }
        if next.is_empty() {
            break;
        }
        frontier = next;
    }
    Ok(found)
}

#[cfg(test)]
mod tests {
    use super::*;
    use ngsi_ld::model::Attribute;
    use serde_json::json;

    #[test]
    fn targets_are_the_objects_of_relationships_only() {
        let mut entity = Entity::new("urn:ngsi-ld:Shelter:1", vec!["Shelter".into()]);
        let rel = |object| {
            Attribute::new(AttributeValue::Relationship {
                object,
                object_type: None,
            })
        };
        entity.attributes.insert(
            "https://ex.org/a".into(),
            vec![rel(RelationshipObject::One("urn:x:1".into()))],
        );
        entity.attributes.insert(
            "https://ex.org/b".into(),
            vec![rel(RelationshipObject::Many(vec![
                "urn:x:2".into(),
                "urn:x:3".into(),
            ]))],
        );
        entity.attributes.insert(
            "https://ex.org/c".into(),
            vec![Attribute::new(AttributeValue::Property(json!("urn:x:4")))],
        );
        assert_eq!(
            relationship_targets(&entity),
            ["urn:x:1", "urn:x:2", "urn:x:3"]
        );
    }
}
