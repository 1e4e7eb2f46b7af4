//! Handlers for `/entityOperations/*` (clause 6.14–6.23): batch create, upsert, update,
//! merge and delete with their 201/204/207 answers, and the query operation with a
//! Query document in the body.

use super::entities::{entity_patch, list_response};
use super::query::{self, check_iri, expand_query, AttributeFilter, DEFAULT_PAGE_SIZE};
use super::{negotiate, read_json_body, MediaType, NgsiRequest, RESULTS_COUNT_HEADER};
use crate::admission::Admitted;
use crate::problem::{problem_body, ApiError};
use crate::AppState;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use broker::{BatchItem, BatchReport, UpsertMode};
use ngsi_ld::context::{self as codec, ActiveContext};
use ngsi_ld::json::{JsonNode, JsonRef};
use ngsi_ld::model::Entity;
use ngsi_ld::query::attrs::Projection;
use ngsi_ld::query::{geo, q, scope, types, EntityQuery};
use ngsi_ld::NgsiError;
use serde_json::{json, Value};

type Answer = Result<Response, ApiError>;

/// The buffered body of a batch, and whether it came as `application/ld+json` (each
/// entity bringing its own context). The headers are judged before the body is read.
async fn buffer_batch_body(
    state: &AppState,
    request: &NgsiRequest,
    headers: &HeaderMap,
    body: Body,
) -> Result<(Bytes, bool), ApiError> {
    let json_ld = super::body_is_json_ld(headers, &[])?;
    if json_ld && request.link_context.is_some() {
        return Err(NgsiError::bad_request_data(
            "with Content-Type application/ld+json the @context goes in the body, not in a Link header",
        )
        .into());
    }
    Ok((super::buffer_body(state, body).await?, json_ld))
}

/// The items of a batch body: a JSON array, not empty, parsed into a tree that borrows
/// its strings from the body (a thousand entities parsed into `Value`s cost twice as
/// much, most of it in allocations and hashing member names).
fn batch_array(bytes: &[u8]) -> Result<Vec<JsonRef<'_>>, ApiError> {
    let JsonRef::Array(items) = super::checked_body_tree(bytes, JsonRef::parse(bytes))? else {
        return Err(NgsiError::bad_request_data(
            "the body of a batch operation must be a JSON array",
        )
        .into());
    };
    if items.is_empty() {
        return Err(NgsiError::bad_request_data("the batch is empty").into());
    }
    Ok(items)
}

/// Reads a batch of entities and decodes each on its own, so that one bad entity is
/// reported without failing the others. The rules of clause 6.3.5 on where the
/// `@context` goes apply to each entity on its own too, so that one item breaking them
/// is reported in the 207 (the shared `read_json_body` would refuse the whole request).
///
/// The body and its parsed tree are freed here, on the worker thread that made them,
/// before the caller awaits the store: the task may resume on the other worker, and
/// mimalloc frees another thread's memory at several times the cost (callgrind, 10,000
/// batch-upserted entities: freeing 200 M instructions before, 163 M after).
///
/// Decoding waits for the body's place in the budget of batches in flight (module
/// `admission`); the caller holds it until the store has answered.
async fn batch_items(
    state: &AppState,
    request: &NgsiRequest,
    headers: &HeaderMap,
    body: Body,
    decode: impl for<'b> Fn(&JsonRef<'b>, &ActiveContext) -> Result<Entity, NgsiError>,
) -> Result<(Vec<BatchItem>, Admitted), ApiError> {
    let (bytes, json_ld) = buffer_batch_body(state, request, headers, body).await?;
    let admitted = state.batch_admission.admit(bytes.len()).await;
    let items = batch_array(&bytes)?;
    let mut out = Vec::with_capacity(items.len());
    for item in &items {
        let entity_id = item
            .get("id")
            .and_then(JsonRef::as_str)
            .unwrap_or("")
            .to_owned();
        let decoded = match item_context(request, json_ld, item) {
            Ok(local) => match state.broker.contexts().resolve(local.as_ref()).await {
                Ok(ctx) => decode(item, &ctx),
                Err(e) => Err(e),
            },
            Err(e) => Err(e),
        };
        out.push(match decoded {
            Ok(entity) => BatchItem::Valid(entity),
            Err(error) => BatchItem::Invalid { entity_id, error },
        });
    }
    Ok((out, admitted))
}

/// A batch item read as a whole entity (create, upsert, update).
fn whole_entity(item: &JsonRef<'_>, ctx: &ActiveContext) -> Result<Entity, NgsiError> {
    codec::decode_entity(item, ctx)
}

/// The local context of one batch entity: its own `@context` in JSON-LD (required
/// there), the Link header's in plain JSON (where an inline one is refused).
fn item_context(
    request: &NgsiRequest,
    json_ld: bool,
    item: &JsonRef,
) -> Result<Option<Value>, NgsiError> {
    let inline = item.get("@context").map(JsonRef::to_value);
    match (json_ld, inline) {
        (true, Some(context)) => Ok(Some(context)),
        (true, None) => Err(NgsiError::bad_request_data(
            "with Content-Type application/ld+json every entity must have an @context member",
        )),
        (false, Some(_)) => Err(NgsiError::bad_request_data(
            "with Content-Type application/json an entity must not have an @context member: send the context in a Link header, or use application/ld+json",
        )),
        (false, None) => Ok(request.link_context.clone().map(Value::String)),
    }
}

/// A 207 body: BatchOperationResult (clause 5.2.16).
fn batch_result(report: &BatchReport) -> Value {
    json!({
        "success": report.success,
        "errors": report.errors.iter().map(|(id, error)| json!({
            "entityId": id,
            "error": problem_body(error),
        })).collect::<Vec<_>>(),
    })
}

fn multi_status(request: &NgsiRequest, report: &BatchReport) -> Response {
    request.respond(
        StatusCode::MULTI_STATUS,
        MediaType::Json,
        batch_result(report),
    )
}

pub async fn create(
    State(state): State<AppState>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    let (items, _admitted) = batch_items(&state, &request, &headers, body, whole_entity).await?;
    let report = state.broker.batch_create(&request.tenant, items).await?;
    Ok(if report.errors.is_empty() {
        request.respond(StatusCode::CREATED, MediaType::Json, json!(report.success))
    } else {
        multi_status(&request, &report)
    })
}

pub async fn upsert(
    State(state): State<AppState>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&["options"])?;
    let mode = match request.params.get("options")? {
        None | Some("replace") => UpsertMode::Replace,
        Some("update") => UpsertMode::Update,
        Some(other) => {
            return Err(NgsiError::bad_request_data(format!(
                "upsert takes options=replace or options=update, not '{other}'"
            ))
            .into())
        }
    };
    let (items, _admitted) = batch_items(&state, &request, &headers, body, whole_entity).await?;
    let report = state
        .broker
        .batch_upsert(&request.tenant, items, mode)
        .await?;
    Ok(if !report.errors.is_empty() {
        multi_status(&request, &report)
    } else if report.created.is_empty() {
        request.respond_empty(StatusCode::NO_CONTENT)
    } else {
        request.respond(StatusCode::CREATED, MediaType::Json, json!(report.created))
    })
}

pub async fn update(
    State(state): State<AppState>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&["options"])?;
    let no_overwrite = request
        .params
        .list("options")?
        .iter()
        .any(|o| o == "noOverwrite");
    let (items, _admitted) = batch_items(&state, &request, &headers, body, whole_entity).await?;
    let report = state
        .broker
        .batch_update(&request.tenant, items, no_overwrite)
        .await?;
    Ok(no_content_or_multi_status(&request, &report))
}

pub async fn merge(
    State(state): State<AppState>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    // A merge item needs an id, and its type is optional.
    let (items, _admitted) = batch_items(&state, &request, &headers, body, |item, ctx| {
        let id = item.get("id").and_then(JsonRef::as_str).ok_or_else(|| {
            NgsiError::bad_request_data("every entity of a batch merge needs an id")
        })?;
        check_iri("entity id", id)?;
        let patch = entity_patch(item, id, ctx)?;
        let mut entity = Entity::new(id, patch.types);
        entity.scopes = patch.scopes.unwrap_or_default();
        entity.attributes = patch.attributes;
        Ok(entity)
    })
    .await?;
    let report = state.broker.batch_merge(&request.tenant, items).await?;
    Ok(no_content_or_multi_status(&request, &report))
}

fn no_content_or_multi_status(request: &NgsiRequest, report: &BatchReport) -> Response {
    if report.errors.is_empty() {
        request.respond_empty(StatusCode::NO_CONTENT)
    } else {
        multi_status(request, report)
    }
}

pub async fn delete(
    State(state): State<AppState>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    // Ids need no @context, so a JSON-LD body without one is fine here.
    let (bytes, _) = buffer_batch_body(&state, &request, &headers, body).await?;
    let mut valid = Vec::new();
    let mut refused = BatchReport::default();
    for id in &batch_array(&bytes)? {
        match id.as_str().map(|i| check_iri("entity id", i).map(|_| i)) {
            Some(Ok(i)) => valid.push(i.to_owned()),
            Some(Err(error)) => refused
                .errors
                .push((id.as_str().unwrap_or("").to_owned(), error)),
            None => refused.errors.push((
                id.to_string(),
                NgsiError::bad_request_data("a batch delete lists entity ids as strings"),
            )),
        }
    }
    let mut report = if valid.is_empty() {
        BatchReport::default()
    } else {
        state.broker.batch_delete(&request.tenant, valid).await?
    };
    report.errors.extend(refused.errors);
    Ok(no_content_or_multi_status(&request, &report))
}

/// Query entities with a Query document in the body (clause 6.23).
pub async fn query(
    State(state): State<AppState>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[
        "limit",
        "offset",
        "count",
        "options",
        "format",
        "lang",
        "local",
        "via",
        "geometryProperty",
        "join",
        "joinLevel",
        "containedBy",
        "datasetId",
    ])?;
    let media = negotiate(request.accept.as_deref(), true)?;
    let body = read_json_body(&state, &request, &headers, body).await?;
    let ctx = body.context(&state).await?;
    let mut query = query_document(&body.value)?;
    let local = request.params.bool("local")?
        || body.value.get("local").and_then(Value::as_bool) == Some(true);
    if !query::selects_something(&query) && !local {
        return Err(NgsiError::bad_request_data(
            "a Query needs at least one of entities (with a type), attrs, q, geoQ or scopeQ, or local=true",
        )
        .into());
    }
    query.limit = request.params.usize("limit")?.unwrap_or(DEFAULT_PAGE_SIZE);
    query.offset = request.params.usize("offset")?.unwrap_or(0);
    query.count = request.params.bool("count")?;
    let filter = AttributeFilter::new(query.attrs.clone(), Projection::All, &ctx)?;
    expand_query(&mut query, &ctx);
    let mut options = query::render_options(&request.params)?;
    if let Some(lang) = body.value.get("lang").and_then(Value::as_str) {
        options.lang = Some(lang.to_owned());
    }
    let join = match query::join(&request.params)? {
        Some(join) => Some(join),
        None => document_join(&body.value)?,
    };
    let mut page = state
        .broker
        .query_entities(&request.tenant, &query, &request.visibility)
        .await?;
    let linked =
        query::project_page(&state.broker, &request, &mut page.entities, &filter, join).await?;
    let geometry = match media {
        MediaType::GeoJson => Some(
            ctx.expand_iri(
                request
                    .params
                    .get("geometryProperty")?
                    .or_else(|| body.value.get("geometryProperty").and_then(Value::as_str))
                    .unwrap_or("location"),
                true,
            ),
        ),
        _ => None,
    };
    let renderer = query::Renderer::new(&ctx, &options, geometry.as_deref(), join, &linked);
    let mut response = list_response(&request, &renderer, media, &page.entities, &filter)?;
    if let Some(total) = page.total {
        response
            .headers_mut()
            .insert(RESULTS_COUNT_HEADER, HeaderValue::from(total));
    }
    Ok(response)
}

/// The `join` and `joinLevel` members of a Query document (clause 5.2.23).
fn document_join(value: &Value) -> Result<Option<query::Join>, NgsiError> {
    let mode = match value.get("join") {
        None => None,
        Some(Value::String(mode)) => Some(mode.as_str()),
        Some(_) => {
            return Err(NgsiError::bad_request_data(
                "join of a Query must be a string",
            ))
        }
    };
    let levels = match value.get("joinLevel") {
        None => None,
        Some(level) => Some(
            level
                .as_u64()
                .or_else(|| level.as_str().and_then(|s| s.parse().ok()))
                .and_then(|l| usize::try_from(l).ok())
                .ok_or_else(|| {
                    NgsiError::bad_request_data(format!(
                        "joinLevel of a Query must be a positive integer, not {level}"
                    ))
                })?,
        ),
    };
    query::parse_join(mode, levels)
}

/// Reads a Query document (clause 5.2.23) into an unexpanded EntityQuery.
pub(super) fn query_document(value: &Value) -> Result<EntityQuery, NgsiError> {
    let obj = value
        .as_object()
        .ok_or_else(|| NgsiError::bad_request_data("the body must be a Query object"))?;
    if obj.get("type").and_then(Value::as_str) != Some("Query") {
        return Err(NgsiError::bad_request_data(
            "the body must be a Query object with \"type\": \"Query\"",
        ));
    }
    let text = |name: &str| -> Result<Option<&str>, NgsiError> {
        match obj.get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(_) => Err(NgsiError::bad_request_data(format!(
                "member '{name}' of a Query must be a string"
            ))),
        }
    };
    let mut query = EntityQuery {
        q: text("q")?.map(q::parse).transpose()?,
        scope_q: text("scopeQ")?.map(scope::parse).transpose()?,
        ..Default::default()
    };
    if let Some(attrs) = obj.get("attrs") {
        query.attrs = attrs
            .as_array()
            .ok_or_else(|| NgsiError::bad_request_data("attrs of a Query must be a list of names"))?
            .iter()
            .map(|a| {
                a.as_str()
                    .map(str::to_owned)
                    .ok_or_else(|| NgsiError::bad_request_data("attrs of a Query must be strings"))
            })
            .collect::<Result<_, _>>()?;
        query::check_attribute_names(&query.attrs)?;
    }
    if let Some(entities) = obj.get("entities") {
        let selectors = entities
            .as_array()
            .ok_or_else(|| NgsiError::bad_request_data("entities of a Query must be a list"))?;
        // Several selectors would need an OR across id and type together; renkei takes
        // the common case of one selector, or several that only name types.
        let mut type_names = Vec::new();
        for selector in selectors {
            if let Some(t) = selector.get("type").and_then(Value::as_str) {
                type_names.push(t.to_owned());
            }
            if let Some(id) = selector.get("id").and_then(Value::as_str) {
                check_iri("entity id", id)?;
                query.ids.push(id.to_owned());
            }
            if let Some(pattern) = selector.get("idPattern").and_then(Value::as_str) {
                query::check_id_pattern(pattern)?;
                query.id_pattern = Some(pattern.to_owned());
            }
        }
        if !type_names.is_empty() {
            query.types = Some(types::parse(&type_names.join(","))?);
        }
    }
    if let Some(geo_q) = obj.get("geoQ") {
        let member = |name: &str| geo_q.get(name);
        let georel = member("georel")
            .and_then(Value::as_str)
            .ok_or_else(|| NgsiError::bad_request_data("geoQ needs georel"))?;
        let geometry = member("geometry")
            .and_then(Value::as_str)
            .ok_or_else(|| NgsiError::bad_request_data("geoQ needs geometry"))?;
        let coordinates = match member("coordinates") {
            Some(Value::String(s)) => s.clone(),
            Some(v @ Value::Array(_)) => v.to_string(),
            _ => return Err(NgsiError::bad_request_data("geoQ needs coordinates")),
        };
        query.geo_q = Some(geo::parse_geo_query(
            georel,
            geometry,
            &coordinates,
            member("geoproperty").and_then(Value::as_str),
        )?);
    }
    Ok(query)
}
