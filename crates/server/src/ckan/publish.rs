//! Publication of standard-dataset resources into the context broker (issue 5,
//! item 5): after a resource's file is loaded into its datastore table, the rows of
//! a standard dataset with coordinates become NGSI-LD entities in the tenant of the
//! dataset's organisation (mapping: `catalog::publish`), written with the broker's
//! batch upsert; entities the resource published before and no longer has are
//! deleted, so the broker stays in step with the file. Deleting the resource
//! withdraws its entities. Also serves the renkei JSON-LD context those entities
//! name, at `catalog::publish::CONTEXT_PATH` (the broker has it preloaded, so it
//! resolves without the network).
//!
//! What happened is kept with the resource, under `validation.publication`: the
//! type, how many entities were written and removed, and every row that was not
//! published with its reason (in Japanese and English), so nothing is dropped
//! silently. A broker failure does not undo the upload: the file and its table
//! stay, the failure is logged and the report says the publication failed.

use axum::http::header;
use axum::response::{IntoResponse, Response};
use broker::{BatchItem, UpsertMode, Visibility, MAX_PAGE_SIZE};
use catalog::package::Package;
use catalog::publish::{self, Publication, Tally, Target};
use ngsi_ld::context::{self as codec, ActiveContext};
use ngsi_ld::query::{AttrPath, EntityQuery, QExpr, QOp, QTerm, QValue, TypeExpr};
use ngsi_ld::{NgsiError, ProblemType};
use serde_json::{json, Value};
use std::collections::HashSet;
use store::datastore::RowQuery;
use store::{StoreError, Tenant};

use super::actions::internal;
use super::{CallerAccess, CkanError};
use crate::AppState;

/// Rows read from the datastore, and entities written to the broker, at a time.
const PAGE_ROWS: usize = 500;

/// Rows not published that the report lists one by one; all are counted.
const MAX_SKIPPED_DETAILS: usize = 1000;

/// Why a publication stopped: the datastore could not be read or the broker
/// refused a whole request (single entities it refuses are reported, not errors).
#[derive(Debug)]
pub enum PublishError {
    Datastore(StoreError),
    Broker(NgsiError),
}

impl std::fmt::Display for PublishError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PublishError::Datastore(e) => write!(f, "reading the datastore failed: {e}"),
            PublishError::Broker(e) => write!(f, "the broker refused: {e}"),
        }
    }
}

impl std::error::Error for PublishError {}

impl From<StoreError> for PublishError {
    fn from(e: StoreError) -> Self {
        PublishError::Datastore(e)
    }
}

impl From<NgsiError> for PublishError {
    fn from(e: NgsiError) -> Self {
        PublishError::Broker(e)
    }
}

/// What one publication of a resource did.
#[derive(Debug, Default)]
struct Outcome {
    entity_type: Option<&'static str>,
    tally: Tally,
    /// Entities the broker refused, with its reason.
    refused: Vec<(String, String)>,
    removed: usize,
}

/// `GET /contexts/opendata.jsonld`: the renkei context, to anyone.
pub async fn context() -> Response {
    (
        [(header::CONTENT_TYPE, "application/ld+json")],
        publish::context_document().to_string(),
    )
        .into_response()
}

/// Publishes resource `resource_id` of `package` after its file was loaded, keeps
/// the outcome with the resource and gives back the package as it now is. Never
/// fails the upload: a failure is logged and reported on the resource.
pub async fn publish_resource(
    state: &AppState,
    package: Package,
    resource_id: &str,
    access: &CallerAccess,
) -> Package {
    let report = match publish(state, &package.owner_org, resource_id).await {
        Ok(outcome) => report_of(&outcome),
        Err(e) => {
            tracing::error!(resource = %resource_id, error = %e, "publishing a resource into the broker failed");
            json!({
                "status": "failed",
                "message": "ブローカーへの公開に失敗しました",
                "message_en": "publishing into the broker failed",
            })
        }
    };
    let dict = [("id".to_owned(), json!(resource_id))]
        .into_iter()
        .collect();
    let updated = state
        .catalog
        .resource_update(&dict, true, access, |r| {
            let mut validation = match r.validation.take() {
                Some(Value::Object(map)) => map,
                _ => serde_json::Map::new(),
            };
            validation.insert("publication".into(), report.clone());
            r.validation = Some(Value::Object(validation));
        })
        .await;
    match updated {
        Ok((package, _)) => package,
        Err(e) => {
            tracing::error!(resource = %resource_id, error = ?e, "keeping the publication report failed");
            package
        }
    }
}

/// Deletes every entity resource `resource_id` published, before `resource_delete`
/// removes the resource (afterwards its organisation, the tenant, is no longer
/// known). Refuses, as the deletion itself would, a caller who may not change the
/// resource; a broker failure refuses the deletion, so that no entity outlives its
/// resource unnoticed.
pub async fn withdraw_resource(
    state: &AppState,
    resource_id: &str,
    access: &CallerAccess,
) -> Result<usize, CkanError> {
    let package = state.catalog.resource_package(resource_id, access).await?;
    if !catalog::service::Access::can_write(access, &package.owner_org) {
        return Err(CkanError::NotAuthorized(format!(
            "User not authorized to delete resource {resource_id}"
        )));
    }
    withdraw(state, &package.owner_org, resource_id)
        .await
        .map_err(internal)
}

/// Deletes every entity the resources of `package` published, once the dataset is
/// deleted or purged: what is no longer published in the catalog must not stay in the
/// broker (the shelter finder would keep showing it). The caller has already been
/// allowed the deletion. A broker failure is an error: deleting a deleted dataset
/// again withdraws what is left.
pub async fn withdraw_package(state: &AppState, package: &Package) -> Result<usize, CkanError> {
    let mut removed = 0;
    for resource in &package.resources {
        removed += withdraw(state, &package.owner_org, &resource.id)
            .await
            .map_err(internal)?;
    }
    Ok(removed)
}

async fn withdraw(
    state: &AppState,
    tenant: &str,
    resource_id: &str,
) -> Result<usize, PublishError> {
    let tenant = Tenant::named(tenant);
    let ids = published_ids(state, &tenant, resource_id).await?;
    delete(state, &tenant, ids).await
}

/// The report kept under `validation.publication`.
fn report_of(outcome: &Outcome) -> Value {
    let Some(entity_type) = outcome.entity_type else {
        return json!({
            "status": "not-published",
            "message": "座標を持つ標準データセットではないため、ブローカーには公開していません",
            "message_en": "not a standard dataset with coordinates, so not published into the broker",
            "removed": outcome.removed,
        });
    };
    let skipped: Vec<Value> = outcome
        .tally
        .skipped
        .iter()
        .take(MAX_SKIPPED_DETAILS)
        .map(|(row, skip)| {
            json!({
                "row": row,
                "code": skip.code(),
                "message": skip.message_ja(),
                "message_en": skip.to_string(),
            })
        })
        .collect();
    let refused: Vec<Value> = outcome
        .refused
        .iter()
        .take(MAX_SKIPPED_DETAILS)
        .map(|(id, why)| json!({"id": id, "message_en": why}))
        .collect();
    json!({
        "status": "published",
        "type": entity_type,
        "type_iri": publish::type_iri(entity_type),
        "context": publish::CONTEXT_PATH,
        "published": outcome.tally.published.saturating_sub(outcome.refused.len()),
        "skipped_count": outcome.tally.skipped.len(),
        "skipped": skipped,
        "refused_count": outcome.refused.len(),
        "refused": refused,
        "removed": outcome.removed,
    })
}

/// Writes the entities of the resource's table and removes those it no longer has.
async fn publish(
    state: &AppState,
    tenant: &str,
    resource_id: &str,
) -> Result<Outcome, PublishError> {
    let tenant_name = tenant;
    let tenant = Tenant::named(tenant_name);
    let mut outcome = Outcome::default();
    let table = state.datastore.table(resource_id).await?;
    let publication = table
        .as_ref()
        .and_then(|table| publish::publication_for(&table.fields).map(|p| (table, p)));
    if let Some((table, publication)) = publication {
        outcome.entity_type = Some(publication.entity_type());
        let context_url = publish::context_url(&state.config.public_url);
        let target = Target {
            tenant: tenant_name,
            resource_id,
            context_url: &context_url,
        };
        let ctx = state
            .broker
            .contexts()
            .resolve(Some(&json!([context_url, codec::CORE_CONTEXT_URL])))
            .await?;
        let mut columns = vec!["_id".to_owned()];
        columns.extend(table.fields.iter().map(|f| f.id.clone()));
        let mut after_id = None;
        loop {
            let query = RowQuery {
                columns: Some(columns.clone()),
                limit: PAGE_ROWS,
                after_id,
                ..Default::default()
            };
            let page = state.datastore.search_rows(resource_id, &query).await?;
            let count = page.rows.len();
            after_id = page.last_id();
            let items = entities_of(&publication, &target, &ctx, page.rows, &mut outcome);
            if !items.is_empty() {
                let report = state
                    .broker
                    .batch_upsert(&tenant, items, UpsertMode::ReplaceChanged)
                    .await?;
                outcome.refused.extend(
                    report
                        .errors
                        .into_iter()
                        .map(|(id, error)| (id, error.detail)),
                );
            }
            if count < PAGE_ROWS || after_id.is_none() {
                break;
            }
        }
    }
    let keep = outcome.tally.ids();
    // Every kept entity the broker did not refuse was just written with this resource
    // as its source: if the broker holds no more than those, none is stale, and one
    // counting pass spares listing them all (a listing is read page by page).
    let refused: HashSet<&str> = outcome.refused.iter().map(|(id, _)| id.as_str()).collect();
    let written = keep
        .iter()
        .filter(|id| !refused.contains(id.as_str()))
        .count();
    if published_count(state, &tenant, resource_id).await? > written as u64 {
        let stale: Vec<String> = published_ids(state, &tenant, resource_id)
            .await?
            .into_iter()
            .filter(|id| !keep.contains(id))
            .collect();
        outcome.removed = delete(state, &tenant, stale).await?;
    }
    Ok(outcome)
}

/// The entities of one page of rows (`_id` first in each), decoded as the broker
/// decodes what clients send, so that a published entity is one a client could
/// have written.
fn entities_of(
    publication: &Publication,
    target: &Target,
    ctx: &ActiveContext,
    rows: Vec<Vec<store::datastore::Cell>>,
    outcome: &mut Outcome,
) -> Vec<BatchItem> {
    let mut items = Vec::with_capacity(rows.len());
    for row in rows {
        let row_number = match row.first() {
            Some(store::datastore::Cell::Int(n)) => u64::try_from(*n).unwrap_or_default(),
            _ => 0,
        };
        let cells = row.get(1..).unwrap_or_default();
        let built = publication.entity(target, row_number, cells);
        let Some(entity) = outcome.tally.take(publication, row_number, built) else {
            continue;
        };
        let id = entity["id"].as_str().unwrap_or_default().to_owned();
        items.push(match codec::decode_entity(&entity, ctx) {
            Ok(decoded) => BatchItem::Valid(decoded),
            Err(error) => BatchItem::Invalid {
                entity_id: id,
                error,
            },
        });
    }
    items
}

/// The entities resource `resource_id` published, of any published type (a
/// resource re-uploaded as another dataset leaves none behind).
fn published_by(resource_id: &str) -> EntityQuery {
    let types: Vec<TypeExpr> = publish::entity_types()
        .into_iter()
        .map(|t| TypeExpr::Type(publish::type_iri(t)))
        .collect();
    let from_resource = QExpr::Term(QTerm {
        path: AttrPath {
            attr: publish::source_iri(),
            sub_attrs: Vec::new(),
            trailing: Vec::new(),
        },
        comparison: Some((QOp::Eq, QValue::Text(resource_id.to_owned()))),
    });
    EntityQuery {
        types: Some(TypeExpr::Or(types)),
        q: Some(from_resource),
        ..Default::default()
    }
}

/// How many entities resource `resource_id` published in `tenant`.
async fn published_count(
    state: &AppState,
    tenant: &Tenant,
    resource_id: &str,
) -> Result<u64, PublishError> {
    let query = EntityQuery {
        limit: 0,
        count: true,
        ..published_by(resource_id)
    };
    match state
        .broker
        .query_entities(tenant, &query, &Visibility::All)
        .await
    {
        Ok(page) => Ok(page.total.unwrap_or(0)),
        // Nothing was ever written there, so nothing was published.
        Err(e) if e.problem == ProblemType::NonexistentTenant => Ok(0),
        Err(e) => Err(e.into()),
    }
}

/// The ids of the entities resource `resource_id` published in `tenant`.
async fn published_ids(
    state: &AppState,
    tenant: &Tenant,
    resource_id: &str,
) -> Result<Vec<String>, PublishError> {
    let mut ids = Vec::new();
    loop {
        let query = EntityQuery {
            limit: MAX_PAGE_SIZE,
            offset: ids.len(),
            ..published_by(resource_id)
        };
        let page = match state
            .broker
            .query_entities(tenant, &query, &Visibility::All)
            .await
        {
            Ok(page) => page,
            // Nothing was ever written there, so nothing was published.
            Err(e) if e.problem == ProblemType::NonexistentTenant => return Ok(ids),
            Err(e) => return Err(e.into()),
        };
        let count = page.entities.len();
        ids.extend(page.entities.into_iter().map(|e| e.id));
        if count < MAX_PAGE_SIZE {
            return Ok(ids);
        }
    }
}

/// Deletes entities by id, a page at a time; gives how many went.
async fn delete(
    state: &AppState,
    tenant: &Tenant,
    ids: Vec<String>,
) -> Result<usize, PublishError> {
    let mut removed = 0;
    for chunk in ids.chunks(PAGE_ROWS) {
        let report = state.broker.batch_delete(tenant, chunk.to_vec()).await?;
        removed += report.success.len();
    }
    Ok(removed)
}
