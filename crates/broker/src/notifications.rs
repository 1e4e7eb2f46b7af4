//! The dispatcher: turns committed entity changes into queued notifications
//! (ETSI GS CIM 009 clause 5.8, 5.11). It reads the change log after its cursor,
//! matches each change against the subscriptions of the change's tenant, renders the
//! notification with the subscription's own `@context`, and queues the notifications
//! while moving the cursor, in one transaction. Delivery is someone else's job (the
//! server's workers), so a slow endpoint never holds the dispatcher up.
//!
//! A crash between reading and queueing repeats the batch; nothing committed is
//! skipped. Subscriptions are matched as they are when a change is dispatched, which
//! is at most a moment after it was committed.

use crate::contexts::ContextService;
use chrono::{DateTime, Utc};
use ngsi_ld::context::ActiveContext;
use ngsi_ld::subscription::{notification, Subscription};
use ngsi_ld::NgsiError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use store::subscriptions::{
    EntityChange, NewNotification, SharedSubscriptionStore, StoredSubscription,
};
use store::{SharedStore, Tenant};

/// How many changes one round reads.
const BATCH: usize = 500;

pub struct Dispatcher {
    store: SharedSubscriptionStore,
    entities: SharedStore,
    contexts: Arc<ContextService>,
    /// When each subscription was last notified from this node, for `throttling`
    /// and `timeInterval`.
    last_sent: Mutex<HashMap<(Tenant, String), DateTime<Utc>>>,
    decoded: Mutex<HashMap<(Tenant, String), Arc<Decoded>>>,
    /// Every subscription as the last dispatch round read it, with the epoch it was
    /// read at: reused while the epoch stays (see `SubscriptionStore::subscriptions_epoch`).
    for_dispatch: Mutex<Option<(i64, Arc<ForDispatch>)>>,
}

/// A stored subscription decoded, with the context its conditions are read in (the
/// one it was made in) and the one its notifications are rendered in (its
/// `jsonldContext` when it names one, clause 5.2.12).
struct Active {
    stored: StoredSubscription,
    subscription: Arc<Subscription>,
    ctx: Arc<ActiveContext>,
    render: Arc<ActiveContext>,
}

/// A subscription decoded and its contexts resolved, kept while its document stays
/// the same: decoding every subscription and resolving its contexts on every round
/// cost more than the matching itself.
struct Decoded {
    doc: serde_json::Value,
    subscription: Arc<Subscription>,
    ctx: Arc<ActiveContext>,
    render: Arc<ActiveContext>,
}

/// The subscriptions of a dispatch round, indexed by the entity ids and types their
/// selectors name, so that a change is matched against the few subscriptions that
/// can concern it rather than against all of them.
struct ForDispatch {
    all: Vec<Active>,
    by_id: HashMap<String, Vec<usize>>,
    by_type: HashMap<String, Vec<usize>>,
    /// Subscriptions without entity selectors, or with a type expression: tried
    /// against every change.
    always: Vec<usize>,
}

impl ForDispatch {
    fn new(all: Vec<Active>) -> ForDispatch {
        let mut index = ForDispatch {
            all: Vec::new(),
            by_id: HashMap::new(),
            by_type: HashMap::new(),
            always: Vec::new(),
        };
        for (i, active) in all.iter().enumerate() {
            let selectors = &active.subscription.entities;
            let expression = |t: &str| t.contains([',', ';', '|', '(', ')']);
            if selectors.is_empty() || selectors.iter().any(|s| expression(&s.type_iri)) {
                index.always.push(i);
                continue;
            }
            for selector in selectors {
                match &selector.id {
                    Some(id) => index.by_id.entry(id.clone()).or_default().push(i),
                    None => index
                        .by_type
                        .entry(selector.type_iri.clone())
                        .or_default()
                        .push(i),
                }
            }
        }
        index.all = all;
        index
    }

    /// The subscriptions that may concern `change`, each once, in stored order.
    fn candidates<'a>(&'a self, change: &EntityChange) -> impl Iterator<Item = &'a Active> {
        let mut picked: Vec<usize> = self.always.clone();
        if let Some(found) = self.by_id.get(&change.entity_id) {
            picked.extend(found);
        }
        for entity in [&change.before, &change.after].into_iter().flatten() {
            for t in &entity.types {
                if let Some(found) = self.by_type.get(t) {
                    picked.extend(found);
                }
            }
        }
        picked.sort_unstable();
        picked.dedup();
        picked.into_iter().filter_map(|i| self.all.get(i))
    }
}

impl Dispatcher {
    pub fn new(
        store: SharedSubscriptionStore,
        entities: SharedStore,
        contexts: Arc<ContextService>,
    ) -> Dispatcher {
        Dispatcher {
            store,
            entities,
            contexts,
            last_sent: Mutex::new(HashMap::new()),
            decoded: Mutex::new(HashMap::new()),
            for_dispatch: Mutex::new(None),
        }
    }

    /// Dispatches the changes waiting after the cursor (one batch); returns how many
    /// changes were dispatched, 0 when there were none.
    pub async fn dispatch_once(&self, now: DateTime<Utc>) -> Result<usize, NgsiError> {
        let cursor = self
            .store
            .dispatch_cursor()
            .await
            .map_err(crate::store_error)?;
        let changes = self
            .store
            .changes_after(cursor, BATCH)
            .await
            .map_err(crate::store_error)?;
        let Some(last) = changes.last().map(|c| c.seq) else {
            return Ok(0);
        };
        let subscriptions = self.dispatch_subscriptions().await?;
        let mut queued = Vec::new();
        for change in &changes {
            for active in subscriptions
                .candidates(change)
                .filter(|a| a.stored.tenant == change.tenant && a.subscription.is_active_at(now))
            {
                let sub = &active.subscription;
                // A change committed before the subscription existed is not its news
                // (it may still be in the log because another subscription wanted it).
                if change.at < sub.created_at {
                    continue;
                }
                let (before, after) = (change.before.as_ref(), change.after.as_ref());
                let Some(trigger) = sub.evaluate(before, after, &active.ctx, now) else {
                    continue;
                };
                if self.throttled(active, change.at) {
                    continue;
                }
                let mut data =
                    vec![sub.notification_data(before, after, &active.render, change.at)];
                if let (Some(join), Some(entity)) = (sub.notification.join.as_deref(), after) {
                    self.join(&change.tenant, sub, entity, join, &active.render, &mut data)
                        .await?;
                }
                queued.push(NewNotification {
                    tenant: change.tenant.clone(),
                    subscription_id: sub.id.clone(),
                    payload: notification(&sub.id, data, Some(trigger), now),
                });
            }
        }
        let dispatched = self
            .store
            .enqueue_notifications(queued, cursor, last)
            .await
            .map_err(crate::store_error)?;
        if !dispatched {
            // Another node dispatched these changes first; forget what this round
            // counted for throttling, and go on from where that node got to.
            self.last_sent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clear();
        }
        Ok(changes.len())
    }

    /// Queues the notifications of periodic subscriptions (`timeInterval`) whose
    /// period has come: every entity they cover, as it is now. The period counts from
    /// the subscription's creation, then from its last notification (on this node or,
    /// as the stored status says, on any).
    pub async fn notify_periodic(&self, now: DateTime<Utc>) -> Result<usize, NgsiError> {
        let mut queued = Vec::new();
        for active in self.active_subscriptions(now).await? {
            let sub = &active.subscription;
            let Some(seconds) = sub.time_interval else {
                continue;
            };
            let key = (active.stored.tenant.clone(), sub.id.clone());
            let last = {
                let last_sent = self.last_sent.lock().unwrap_or_else(|p| p.into_inner());
                [
                    last_sent.get(&key).copied(),
                    active.stored.status.last_notification,
                ]
                .into_iter()
                .flatten()
                .max()
                .unwrap_or(sub.created_at)
            };
            let period = chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
            if now < last + period {
                continue;
            }
            let mut data = Vec::new();
            for mut query in sub.selector_queries() {
                query.limit = crate::MAX_PAGE_SIZE;
                let page = self
                    .entities
                    .query_entities(&active.stored.tenant, &query)
                    .await
                    .map_err(crate::store_error)?;
                for entity in page.entities.iter().filter(|e| sub.covers(e, &active.ctx)) {
                    data.push(sub.notification_data(None, Some(entity), &active.render, now));
                }
            }
            self.last_sent
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .insert(key, now);
            if data.is_empty() {
                continue;
            }
            queued.push(NewNotification {
                tenant: active.stored.tenant.clone(),
                subscription_id: sub.id.clone(),
                payload: notification(&sub.id, data, None, now),
            });
        }
        let count = queued.len();
        if count > 0 {
            // Queued without moving the cursor: periodic notifications are not changes.
            let cursor = self
                .store
                .dispatch_cursor()
                .await
                .map_err(crate::store_error)?;
            self.store
                .enqueue_notifications(queued, cursor, cursor)
                .await
                .map_err(crate::store_error)?;
        }
        Ok(count)
    }

    /// Adds the entities the notified one links to (`notification.join`, clause
    /// 4.5.23): `flat` appends them to `data`, `inline` puts each inside the
    /// Relationship that names it (in place of the object for keyValues). Linked
    /// entities are read from the same tenant, `joinLevel` hops deep (1 by default),
    /// by the same walk queries join with.
    async fn join(
        &self,
        tenant: &Tenant,
        sub: &Subscription,
        entity: &ngsi_ld::model::Entity,
        join: &str,
        ctx: &ActiveContext,
        data: &mut Vec<serde_json::Value>,
    ) -> Result<(), NgsiError> {
        let levels =
            usize::try_from(sub.notification.join_level.unwrap_or(1).max(1)).unwrap_or(usize::MAX);
        let linked = crate::linked::follow_links(
            self.entities.as_ref(),
            tenant,
            &[entity],
            levels,
            &crate::Visibility::All,
        )
        .await?;
        let options = ngsi_ld::context::RenderOptions {
            format: sub.notification.format,
            sys_attrs: sub.notification.sys_attrs,
            lang: sub.lang.clone(),
        };
        let rendered: Vec<(String, serde_json::Value)> = linked
            .iter()
            .map(|(id, e)| {
                (
                    id.clone(),
                    ngsi_ld::context::encode_entity(e, ctx, &options),
                )
            })
            .collect();
        if join == "flat" {
            data.extend(rendered.into_iter().map(|(_, v)| v));
            return Ok(());
        }
        let key_values = sub.notification.format == ngsi_ld::context::Format::KeyValues;
        if let Some(serde_json::Value::Object(root)) = data.first_mut() {
            for value in root.values_mut() {
                let target = match &*value {
                    serde_json::Value::Object(rel)
                        if rel.get("type").and_then(|t| t.as_str()) == Some("Relationship") =>
                    {
                        rel.get("object")
                            .and_then(|o| o.as_str())
                            .map(str::to_owned)
                    }
                    serde_json::Value::String(object) if key_values => Some(object.clone()),
                    _ => None,
                };
                let Some((_, entity)) =
                    target.and_then(|t| rendered.iter().find(|(id, _)| *id == t))
                else {
                    continue;
                };
                match value {
                    serde_json::Value::Object(rel) => {
                        rel.insert("entity".into(), entity.clone());
                    }
                    other => *other = entity.clone(),
                }
            }
        }
        Ok(())
    }

    /// Whether `throttling` forbids another notification of this subscription now;
    /// records the notification when it does not.
    fn throttled(&self, active: &Active, at: DateTime<Utc>) -> bool {
        let key = (active.stored.tenant.clone(), active.subscription.id.clone());
        let mut last_sent = self.last_sent.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(seconds) = active.subscription.throttling {
            let previous = last_sent
                .get(&key)
                .copied()
                .or(active.stored.status.last_notification);
            let period = chrono::Duration::seconds(i64::try_from(seconds).unwrap_or(i64::MAX));
            if previous.is_some_and(|p| at < p + period) {
                return true;
            }
        }
        last_sent.insert(key, at);
        false
    }

    /// Every subscription for a dispatch round: read again only when the epoch moved,
    /// else those the last round read. The epoch is read after the changes, so any
    /// subscription committed before a change being dispatched is among them. (Their
    /// delivery status, which only throttling across nodes looks at, may be as old as
    /// the last read.)
    async fn dispatch_subscriptions(&self) -> Result<Arc<ForDispatch>, NgsiError> {
        let epoch = self
            .store
            .subscriptions_epoch()
            .await
            .map_err(crate::store_error)?;
        let cached = self
            .for_dispatch
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some((seen, subscriptions)) = cached {
            if seen == epoch {
                return Ok(subscriptions);
            }
        }
        let subscriptions = Arc::new(ForDispatch::new(self.all_decoded().await?));
        *self.for_dispatch.lock().unwrap_or_else(|p| p.into_inner()) =
            Some((epoch, subscriptions.clone()));
        Ok(subscriptions)
    }

    /// The subscriptions that may notify now, decoded, with their contexts resolved.
    async fn active_subscriptions(&self, now: DateTime<Utc>) -> Result<Vec<Active>, NgsiError> {
        let mut all = self.all_decoded().await?;
        all.retain(|a| a.subscription.is_active_at(now));
        Ok(all)
    }

    /// Every stored subscription, decoded. A subscription whose document or context
    /// cannot be read is skipped and logged, never allowed to stop the others.
    async fn all_decoded(&self) -> Result<Vec<Active>, NgsiError> {
        let all = self
            .store
            .all_subscriptions()
            .await
            .map_err(crate::store_error)?;
        let mut active = Vec::with_capacity(all.len());
        let mut kept = HashMap::with_capacity(all.len());
        for stored in all {
            let key = (stored.tenant.clone(), stored.id.clone());
            let cached = self
                .decoded
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .get(&key)
                .filter(|d| d.doc == stored.doc)
                .cloned();
            let decoded = match cached {
                Some(decoded) => decoded,
                None => match self.decode(&stored).await {
                    Some(decoded) => Arc::new(decoded),
                    None => continue,
                },
            };
            kept.insert(key, decoded.clone());
            active.push(Active {
                stored,
                subscription: decoded.subscription.clone(),
                ctx: decoded.ctx.clone(),
                render: decoded.render.clone(),
            });
        }
        // Deleted subscriptions leave the cache with the round that no longer sees them.
        *self.decoded.lock().unwrap_or_else(|p| p.into_inner()) = kept;
        Ok(active)
    }

    /// Decodes a stored subscription and resolves its contexts; `None` (logged) when
    /// either fails, so one bad subscription never stops the others.
    async fn decode(&self, stored: &StoredSubscription) -> Option<Decoded> {
        let subscription = match Subscription::from_document(&stored.doc) {
            Ok(subscription) => subscription,
            Err(error) => {
                tracing::error!(id = %stored.id, %error, "a stored subscription cannot be read");
                return None;
            }
        };
        let ctx = match self.contexts.resolve_uncounted(&subscription.context).await {
            Ok(ctx) => ctx,
            Err(error) => {
                tracing::warn!(id = %stored.id, %error, "the @context of a subscription is not available");
                return None;
            }
        };
        let render = match &subscription.jsonld_context {
            None => ctx.clone(),
            Some(url) => {
                let url = serde_json::Value::String(url.clone());
                match self.contexts.resolve_uncounted(&url).await {
                    Ok(render) => render,
                    Err(error) => {
                        tracing::warn!(id = %stored.id, %error, "the jsonldContext of a subscription is not available");
                        return None;
                    }
                }
            }
        };
        Some(Decoded {
            doc: stored.doc.clone(),
            subscription: Arc::new(subscription),
            ctx: Arc::new(ctx),
            render: Arc::new(render),
        })
    }
}
