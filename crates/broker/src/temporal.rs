//! The temporal API's domain logic (clauses 5.6.11–5.6.16 and 5.7.3–5.7.4): writing
//! history through the entity itself, and reading it back selected, paginated and,
//! where asked, aggregated.
//!
//! A temporal entity is the history of an ordinary entity. Creating one creates (or
//! updates) the entity with the latest instance of each attribute and records every
//! instance sent, in one transaction; ordinary entity writes record their changes the
//! same way. Editing or deleting one instance, or one attribute's series, touches the
//! history alone; deleting the temporal entity deletes the entity and its history.
//!
//! Aggregations over whole hours on `observedAt` read the store's hourly rollups
//! instead of every instance ([`ngsi_ld::temporal::aggregate_rollups`]), with the same
//! answers.

use crate::{store_error, Visibility};
use chrono::{DateTime, SubsecRound, Utc};
use ngsi_ld::model::{Attribute, Entity};
use ngsi_ld::query::eval::Matcher;
use ngsi_ld::query::EntityQuery;
use ngsi_ld::temporal::{
    aggregate_rollups, latest_attributes, paginate, recorded, AggregatedSeries, AggregationWindow,
    ContentRange, TemporalEntity, TemporalForm, TemporalInstance, TemporalQuery, TimeProperty,
};
use ngsi_ld::NgsiError;
use std::sync::{Arc, Mutex};
use store::temporal::{DatasetSelector, HistoryRead, SharedTemporalStore, TemporalHead};
use store::{Modification, SharedStore, Tenant, Write};

/// How many instances of one attribute series an answer holds at most before it is
/// cut into pages (clause 6.3.10), unless configured otherwise.
pub const DEFAULT_INSTANCE_LIMIT: usize = 1000;

/// What one temporal entity's answer holds.
#[derive(Debug, Clone, PartialEq)]
pub enum TemporalBody {
    /// Selected instances, in ascending time, for the normalized and simplified forms.
    Instances(Vec<TemporalInstance>),
    /// Aggregated series, for `aggregatedValues`.
    Aggregated(Vec<AggregatedSeries>),
}

/// One temporal entity as read.
#[derive(Debug, Clone, PartialEq)]
pub struct TemporalView {
    pub head: TemporalHead,
    pub body: TemporalBody,
    /// Attributes (expanded name and kind) whose every instance fell beyond the cut
    /// of a paginated answer: shown with no instances, so the client knows to ask for
    /// the next page.
    pub emptied: Vec<(String, &'static str)>,
}

/// A page of a temporal query: the entities, their total when asked for, and the
/// range when their histories were cut.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct TemporalPage {
    pub entities: Vec<TemporalView>,
    pub total: Option<u64>,
    pub range: Option<ContentRange>,
}

/// The temporal side of the broker.
#[derive(Clone)]
pub struct History {
    entities: SharedStore,
    history: SharedTemporalStore,
    instance_limit: usize,
}

fn not_found(id: &str) -> NgsiError {
    NgsiError::not_found(format!("entity {id} has no temporal representation"))
}

/// Now, in the microseconds every store keeps.
fn now() -> DateTime<Utc> {
    Utc::now().trunc_subsecs(6)
}

impl History {
    pub fn new(entities: SharedStore, history: SharedTemporalStore, instance_limit: usize) -> Self {
        History {
            entities,
            history,
            instance_limit,
        }
    }

    /// Create or update temporal representation of an entity (clause 5.6.11): records
    /// every instance sent and sets the entity's attributes to the latest of each.
    /// Returns true when the entity was created.
    pub async fn create_or_update(
        &self,
        tenant: &Tenant,
        temporal: TemporalEntity,
    ) -> Result<bool, NgsiError> {
        let at = now();
        let instances: Vec<TemporalInstance> = temporal
            .instances
            .into_iter()
            .map(|i| stamped(i, at))
            .collect();
        let latest = latest_attributes(&instances);
        let TemporalEntity {
            id, types, scopes, ..
        } = temporal;
        let created = Arc::new(Mutex::new(false));
        let was_created = created.clone();
        let entity_id = id.clone();
        let modification = Modification::new(id.clone(), move |current| {
            let entity = match current {
                None => {
                    *was_created.lock().unwrap_or_else(|p| p.into_inner()) = true;
                    let mut entity = Entity::new(entity_id, types);
                    entity.scopes = scopes;
                    entity.attributes = latest;
                    crate::ops::stamp_new_entity(&mut entity, at);
                    entity
                }
                Some(mut entity) => {
                    let patch = crate::ops::EntityPatch {
                        types,
                        scopes: (!scopes.is_empty()).then_some(scopes),
                        attributes: latest,
                    };
                    crate::ops::append_attributes(&mut entity, patch, false, at);
                    entity
                }
            };
            Ok(Write::Put(entity))
        })
        .with_history(instances);
        self.run(tenant, modification).await?;
        let created = *created.lock().unwrap_or_else(|p| p.into_inner());
        Ok(created)
    }

    /// Add attributes to temporal representation of an entity (clause 5.6.12).
    pub async fn add_attributes(
        &self,
        tenant: &Tenant,
        id: &str,
        instances: Vec<TemporalInstance>,
    ) -> Result<(), NgsiError> {
        let at = now();
        let instances: Vec<_> = instances.into_iter().map(|i| stamped(i, at)).collect();
        let latest = latest_attributes(&instances);
        let missing = id.to_owned();
        let modification = Modification::new(id, move |current| {
            let mut entity = current.ok_or_else(|| not_found(&missing))?;
            let patch = crate::ops::EntityPatch {
                attributes: latest,
                ..Default::default()
            };
            crate::ops::append_attributes(&mut entity, patch, false, at);
            Ok(Write::Put(entity))
        })
        .with_history(instances);
        self.run(tenant, modification).await
    }

    /// Delete temporal representation of an entity (clause 5.6.16): the entity and
    /// its whole history.
    pub async fn delete(&self, tenant: &Tenant, id: &str) -> Result<(), NgsiError> {
        let modification = Modification::new(id, |current| {
            Ok(if current.is_some() {
                Write::Delete
            } else {
                Write::Unchanged
            })
        });
        self.run(tenant, modification).await?;
        if self
            .history
            .delete_history(tenant, id)
            .await
            .map_err(store_error)?
        {
            Ok(())
        } else {
            Err(not_found(id))
        }
    }

    /// Delete attribute from temporal representation (clause 5.6.13): the selected
    /// series of its history.
    pub async fn delete_attribute(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        dataset: &DatasetSelector,
    ) -> Result<(), NgsiError> {
        self.require_head(tenant, id).await?;
        let deleted = self
            .history
            .delete_attribute_history(tenant, id, attr, dataset)
            .await
            .map_err(store_error)?;
        deleted.then_some(()).ok_or_else(|| {
            NgsiError::not_found(format!("entity {id} has no history of attribute {attr}"))
        })
    }

    /// Modify attribute instance (clause 5.6.14): the members given replace those of
    /// the stored instance; its instance id and recording time stay.
    pub async fn modify_instance(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        instance_id: &str,
        change: Attribute,
    ) -> Result<(), NgsiError> {
        let stored = self
            .history
            .history_instance(tenant, id, attr, instance_id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| instance_not_found(id, attr, instance_id))?;
        // A partial update: what the change leaves out stays as stored.
        let mut attribute = change;
        let kept = stored.attribute;
        attribute.created_at = kept.created_at;
        attribute.modified_at = Some(now());
        attribute.dataset_id = attribute.dataset_id.or(kept.dataset_id);
        attribute.observed_at = attribute.observed_at.or(kept.observed_at);
        attribute.unit_code = attribute.unit_code.or(kept.unit_code);
        if attribute.sub_attributes.is_empty() {
            attribute.sub_attributes = kept.sub_attributes;
        }
        let replaced = self
            .history
            .replace_history_instance(tenant, id, attr, instance_id, attribute)
            .await
            .map_err(store_error)?;
        replaced
            .then_some(())
            .ok_or_else(|| instance_not_found(id, attr, instance_id))
    }

    /// Delete attribute instance (clause 5.6.15).
    pub async fn delete_instance(
        &self,
        tenant: &Tenant,
        id: &str,
        attr: &str,
        instance_id: &str,
    ) -> Result<(), NgsiError> {
        let deleted = self
            .history
            .delete_history_instance(tenant, id, attr, instance_id)
            .await
            .map_err(store_error)?;
        deleted
            .then_some(())
            .ok_or_else(|| instance_not_found(id, attr, instance_id))
    }

    async fn run(&self, tenant: &Tenant, modification: Modification) -> Result<(), NgsiError> {
        let mut results = self
            .entities
            .modify(tenant, vec![modification])
            .await
            .map_err(store_error)?;
        results.pop().unwrap_or(Ok(Write::Unchanged)).map(drop)
    }

    async fn require_head(&self, tenant: &Tenant, id: &str) -> Result<TemporalHead, NgsiError> {
        self.history
            .temporal_head(tenant, id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| not_found(id))
    }
}

fn instance_not_found(id: &str, attr: &str, instance_id: &str) -> NgsiError {
    NgsiError::not_found(format!(
        "entity {id} has no instance {instance_id} of attribute {attr}"
    ))
}

/// An instance sent by a client, stamped as recorded `at` (its id is already fresh).
fn stamped(instance: TemporalInstance, at: DateTime<Utc>) -> TemporalInstance {
    let mut stamped = recorded(&instance.name, instance.attribute, at);
    stamped.instance_id = instance.instance_id;
    stamped
}

impl History {
    /// Retrieve temporal evolution of an entity (clause 5.7.3) of the named attributes
    /// (every attribute when empty), with the range when its history was cut.
    pub async fn retrieve(
        &self,
        tenant: &Tenant,
        id: &str,
        attrs: &[String],
        query: &TemporalQuery,
        visibility: &Visibility,
    ) -> Result<(TemporalView, Option<ContentRange>), NgsiError> {
        let head = self.require_head(tenant, id).await?;
        if !visible(visibility, &head) {
            return Err(not_found(id));
        }
        let body = self.read_body(tenant, &head.id, attrs, query).await?;
        let mut views = vec![TemporalView {
            head,
            body,
            emptied: Vec::new(),
        }];
        let range = self.cut(&mut views, query);
        // The cut keeps the instances up to the cut instant, so one entity stays.
        let view = views.pop().ok_or_else(|| not_found(id))?;
        Ok((view, range))
    }

    /// Query temporal evolution of entities (clause 5.7.4): the entities whose
    /// history matches the entity query (its `q`, `geoQ` and `attrs` on the latest
    /// values within the time window), a page at a time in id order. Entities without
    /// history in the window are not listed.
    pub async fn query(
        &self,
        tenant: &Tenant,
        entity_query: &EntityQuery,
        query: &TemporalQuery,
        visibility: &Visibility,
    ) -> Result<TemporalPage, NgsiError> {
        let heads = self
            .history
            .temporal_heads(tenant, &entity_query.ids)
            .await
            .map_err(store_error)?;
        let matcher = Matcher::new(entity_query);
        // What a head alone decides (types, ids, scopes) is checked before any history
        // is read for it.
        let by_head = Matcher::new(&EntityQuery {
            types: entity_query.types.clone(),
            ids: entity_query.ids.clone(),
            id_pattern: entity_query.id_pattern.clone(),
            scope_q: entity_query.scope_q.clone(),
            ..EntityQuery::default()
        });
        let latest = HistoryRead {
            attrs: Vec::new(),
            time_property: query.time_property,
            window: query.timerel,
            last_n: Some(1),
        };
        let mut matched = Vec::new();
        for head in heads {
            let mut snapshot = Entity::new(head.id.clone(), head.types.clone());
            snapshot.scopes = head.scopes.clone();
            if !visible(visibility, &head) || !by_head.matches(&snapshot) {
                continue;
            }
            // An entity with no history in the window is no part of the answer; the
            // latest instances in it are what `q`, `geoQ` and `attrs` look at.
            let instances = self
                .history
                .history(tenant, &head.id, &latest)
                .await
                .map_err(store_error)?;
            snapshot.attributes = latest_attributes(&instances);
            if !snapshot.attributes.is_empty() && matcher.matches(&snapshot) {
                matched.push(head);
            }
        }
        let total = entity_query.count.then_some(matched.len() as u64);
        let mut entities = Vec::new();
        for head in matched
            .into_iter()
            .skip(entity_query.offset)
            .take(entity_query.limit)
        {
            let body = self
                .read_body(tenant, &head.id, &entity_query.attrs, query)
                .await?;
            entities.push(TemporalView {
                head,
                body,
                emptied: Vec::new(),
            });
        }
        let range = self.cut(&mut entities, query);
        Ok(TemporalPage {
            entities,
            total,
            range,
        })
    }

    async fn read_body(
        &self,
        tenant: &Tenant,
        id: &str,
        attrs: &[String],
        query: &TemporalQuery,
    ) -> Result<TemporalBody, NgsiError> {
        let mut read = HistoryRead {
            attrs: attrs.to_vec(),
            time_property: query.time_property,
            window: query.timerel,
            last_n: query.last_n,
        };
        if let TemporalForm::Aggregated(aggregation) = &query.form {
            if let Some(series) = self
                .aggregate_from_rollups(tenant, id, &read, aggregation)
                .await?
            {
                return Ok(TemporalBody::Aggregated(series));
            }
            read.last_n = None;
        }
        let instances = self
            .history
            .history(tenant, id, &read)
            .await
            .map_err(store_error)?;
        Ok(TemporalBody::Instances(instances))
    }

    /// The aggregation of every series from the hourly rollups, or `None` when some
    /// series cannot be answered from them exactly.
    async fn aggregate_from_rollups(
        &self,
        tenant: &Tenant,
        id: &str,
        read: &HistoryRead,
        aggregation: &ngsi_ld::temporal::Aggregation,
    ) -> Result<Option<Vec<AggregatedSeries>>, NgsiError> {
        let window = AggregationWindow::from(read.window);
        if read.time_property != TimeProperty::ObservedAt || read.last_n.is_some() {
            return Ok(None);
        }
        if aggregation.period.is_none() || window.start.is_none() {
            return Ok(None);
        }
        // The latest instance of each series in the window names the series and kinds.
        let latest = HistoryRead {
            last_n: Some(1),
            ..read.clone()
        };
        let series_heads = self
            .history
            .history(tenant, id, &latest)
            .await
            .map_err(store_error)?;
        let rollups = self
            .history
            .hourly_rollups(tenant, id, &read.attrs, window.start, window.end)
            .await
            .map_err(store_error)?;
        let mut heads: Vec<&TemporalInstance> = series_heads.iter().collect();
        heads.sort_by(|a, b| {
            (&a.name, &a.attribute.dataset_id).cmp(&(&b.name, &b.attribute.dataset_id))
        });
        let mut series = Vec::with_capacity(heads.len());
        for head in heads {
            let own: Vec<_> = rollups
                .iter()
                .filter(|r| r.name == head.name && r.dataset_id == head.attribute.dataset_id)
                .cloned()
                .collect();
            let Some(results) = aggregate_rollups(
                &own,
                &aggregation.methods,
                aggregation.period.as_ref(),
                window,
            ) else {
                return Ok(None);
            };
            series.push(AggregatedSeries {
                name: head.name.clone(),
                kind: head.attribute.value.kind_name(),
                dataset_id: head.attribute.dataset_id.clone(),
                results,
            });
        }
        Ok(Some(series))
    }

    /// Cuts the instance histories of an answer to the instance limit, noting the
    /// attributes the cut left without instances (they are shown empty).
    fn cut(&self, views: &mut [TemporalView], query: &TemporalQuery) -> Option<ContentRange> {
        // Aggregated answers hold a value per period, however many instances made it.
        if matches!(query.form, TemporalForm::Aggregated(_)) {
            return None;
        }
        let mut histories: Vec<Vec<TemporalInstance>> = views
            .iter_mut()
            .map(|v| match &mut v.body {
                TemporalBody::Instances(instances) => std::mem::take(instances),
                TemporalBody::Aggregated(_) => Vec::new(),
            })
            .collect();
        let names = |history: &[TemporalInstance]| -> Vec<(String, &'static str)> {
            let mut names: Vec<_> = history
                .iter()
                .map(|i| (i.name.clone(), i.attribute.value.kind_name()))
                .collect();
            names.sort_unstable();
            names.dedup_by(|a, b| a.0 == b.0);
            names
        };
        let before: Vec<Vec<_>> = histories.iter().map(|h| names(h)).collect();
        let range = paginate(&mut histories, query, self.instance_limit);
        for ((view, history), had) in views.iter_mut().zip(histories).zip(before) {
            if let TemporalBody::Instances(instances) = &mut view.body {
                let has = names(&history);
                view.emptied = had
                    .into_iter()
                    .filter(|(name, _)| !has.iter().any(|(n, _)| n == name))
                    .collect();
                *instances = history;
            }
        }
        range
    }
}

fn visible(visibility: &Visibility, head: &TemporalHead) -> bool {
    head.types.iter().any(|t| visibility.allows_type(t))
}
