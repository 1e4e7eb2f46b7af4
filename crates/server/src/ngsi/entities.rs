//! Handlers for `/entities` and its attributes (clause 6.4–6.7): each parses the
//! request, calls the broker, and renders the result.

use super::params::Params;
use super::query::{self, check_iri, AttributeFilter};
use super::{
    body_is_json_ld, buffer_body, checked_body_tree, json_body, negotiate, read_json_body,
    MediaType, NgsiRequest, MERGE_PATCH, RESULTS_COUNT_HEADER,
};
use crate::problem::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use broker::ops::{EntityPatch, UpdateReport, SCOPE};
use ngsi_ld::context::codec::{check_attribute_name, decode_fragment, decode_scopes, decode_types};
use ngsi_ld::context::{self as codec, ActiveContext};
use ngsi_ld::json::{JsonNode, JsonRef};
use ngsi_ld::model::Entity;
use ngsi_ld::NgsiError;
use serde_json::{json, Value};

type Answer = Result<Response, ApiError>;

/// Parameters understood by the query and retrieve operations.
const QUERY_PARAMS: &[&str] = &[
    "id",
    "type",
    "idPattern",
    "attrs",
    "pick",
    "omit",
    "q",
    "csf",
    "georel",
    "geometry",
    "coordinates",
    "geoproperty",
    "geometryProperty",
    "lang",
    "scopeQ",
    "options",
    "format",
    "limit",
    "offset",
    "count",
    "local",
    "via",
    "datasetId",
    "join",
    "joinLevel",
    // The ids a distributed join has already visited: renkei forwards nothing, so
    // it has nothing to avoid and the list is accepted and left unused.
    "containedBy",
];
const RETRIEVE_PARAMS: &[&str] = &[
    "attrs",
    "pick",
    "omit",
    "geometryProperty",
    "lang",
    "options",
    "format",
    "local",
    "via",
    "datasetId",
    "join",
    "joinLevel",
    // The ids a distributed join has already visited: renkei forwards nothing, so
    // it has nothing to avoid and the list is accepted and left unused.
    "containedBy",
];

pub async fn create(
    State(state): State<AppState>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    let bytes = buffer_body(&state, body).await?;
    let parsed = JsonRef::parse(&bytes);
    // JSON that is no object (`[]`, `42`) is malformed whatever its `@context`, so it
    // is an InvalidRequest before the context rules would call it BadRequestData.
    if parsed.as_ref().is_ok_and(|value| !value.is_object()) {
        return Err(NgsiError::invalid_request("the body must be a JSON object").into());
    }
    let is_json_ld = body_is_json_ld(&headers, &[MERGE_PATCH])?;
    let body = json_body(&request, is_json_ld, checked_body_tree(&bytes, parsed)?)?;
    let ctx = body.context(&state).await?;
    let entity = codec::decode_entity(&body.value, &ctx)?;
    // Freed before the store is awaited, on the thread that parsed it (see
    // `batch::batch_items`).
    drop(body);
    drop(bytes);
    let location = format!("/ngsi-ld/v1/entities/{}", entity.id);
    state.broker.create_entity(&request.tenant, entity).await?;
    let mut response = request.respond_empty(StatusCode::CREATED);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

pub async fn retrieve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: NgsiRequest,
) -> Answer {
    request.params.allow_only(RETRIEVE_PARAMS)?;
    check_iri("entity id", &id)?;
    let media = negotiate(request.accept.as_deref(), true)?;
    let ctx = request.context(&state).await?;
    let options = query::render_options(&request.params)?;
    let filter = AttributeFilter::from_params(&request.params, &ctx)?;
    let join = query::join(&request.params)?;
    let mut entity = state
        .broker
        .retrieve_entity(&request.tenant, &id, &request.visibility)
        .await?;
    filter.apply(&mut entity);
    if filter.leaves_nothing(&entity) {
        // Clause 5.7.1: an entity with nothing left to show is not found.
        return Err(NgsiError::not_found(format!(
            "entity {id} has none of the requested attributes or members"
        ))
        .into());
    }
    let linked = match join {
        Some(join) => {
            state
                .broker
                .linked_entities(
                    &request.tenant,
                    &[&entity],
                    join.levels,
                    &request.visibility,
                )
                .await?
        }
        None => Default::default(),
    };
    let geometry = match media {
        MediaType::GeoJson => Some(geometry_property(&request, &ctx)?),
        _ => None,
    };
    let renderer = query::Renderer::new(&ctx, &options, geometry.as_deref(), join, &linked);
    if renderer.streams() {
        let context = request.body_context_url(media);
        let body = renderer.write_one(&entity, &filter, context.as_deref())?;
        return Ok(request.respond_text(StatusCode::OK, media, body));
    }
    let mut rendered = renderer.render_all(std::slice::from_ref(&entity), &filter);
    // A flat join answers with a list only when it found linked entities.
    let mut body = if rendered.len() == 1 {
        rendered.pop().unwrap_or(Value::Null)
    } else {
        match media {
            MediaType::GeoJson => codec::encode_feature_collection(rendered),
            _ => Value::Array(rendered),
        }
    };
    if media == MediaType::GeoJson {
        with_geojson_context(&mut body, &request);
    }
    Ok(request.respond(StatusCode::OK, media, body))
}

/// The answer listing queried entities: a JSON array written straight from the model,
/// or, for GeoJSON and flat joins, built from rendered `Value`s.
pub(super) fn list_response(
    request: &NgsiRequest,
    renderer: &query::Renderer<'_>,
    media: MediaType,
    entities: &[Entity],
    filter: &AttributeFilter,
) -> Result<Response, NgsiError> {
    if renderer.streams() {
        let context = request.body_context_url(media);
        let body = renderer.write_list(entities, filter, context.as_deref())?;
        return Ok(request.respond_text(StatusCode::OK, media, body));
    }
    let rendered = renderer.render_all(entities, filter);
    let body = match media {
        MediaType::GeoJson => {
            let mut collection = codec::encode_feature_collection(rendered);
            with_geojson_context(&mut collection, request);
            collection
        }
        _ => Value::Array(rendered),
    };
    Ok(request.respond(StatusCode::OK, media, body))
}

/// GeoJSON answers carry their `@context` in the body (clause 6.3.15) as well as in
/// the Link header.
pub fn with_geojson_context(body: &mut Value, request: &NgsiRequest) {
    if let Value::Object(map) = body {
        map.insert(
            "@context".into(),
            Value::String(request.response_context_url()),
        );
    }
}

fn geometry_property(request: &NgsiRequest, ctx: &ActiveContext) -> Result<String, NgsiError> {
    Ok(ctx.expand_iri(
        request
            .params
            .get("geometryProperty")?
            .unwrap_or("location"),
        true,
    ))
}

pub async fn query(
    State(state): State<AppState>,
    RawQuery(raw_query): RawQuery,
    request: NgsiRequest,
) -> Answer {
    request.params.allow_only(QUERY_PARAMS)?;
    let media = negotiate(request.accept.as_deref(), true)?;
    let ctx = request.context(&state).await?;
    let selection = Params::parse(&query::form_spaces_in_q(raw_query.as_deref().unwrap_or("")))?;
    let query = query::entity_query(&selection, &ctx)?;
    // Clause 6.4.3.2: without any selector only a local query may list everything.
    if !query::selects_something(&query) && !request.params.bool("local")? {
        return Err(NgsiError::bad_request_data(
            "a query needs at least one of type, attrs, q, geoQ or scopeQ (id and idPattern only narrow them), or local=true",
        )
        .into());
    }
    let options = query::render_options(&request.params)?;
    let filter = AttributeFilter::from_params(&request.params, &ctx)?;
    let join = query::join(&request.params)?;
    let mut page = state
        .broker
        .query_entities(&request.tenant, &query, &request.visibility)
        .await?;
    let linked =
        query::project_page(&state.broker, &request, &mut page.entities, &filter, join).await?;
    let geometry = match media {
        MediaType::GeoJson => Some(geometry_property(&request, &ctx)?),
        _ => None,
    };
    let renderer = query::Renderer::new(&ctx, &options, geometry.as_deref(), join, &linked);
    let count = page.entities.len();
    let mut response = list_response(&request, &renderer, media, &page.entities, &filter)?;
    if let Some(total) = page.total {
        response
            .headers_mut()
            .insert(RESULTS_COUNT_HEADER, HeaderValue::from(total));
    }
    add_page_links(
        &mut response,
        &request,
        "/ngsi-ld/v1/entities",
        query.offset,
        query.limit,
        count,
        page.total,
    );
    Ok(response)
}

/// `Link: <…>;rel="next"` / `rel="prev"` headers for paging through the list at
/// `path` (clause 5.5.9), written without optional spaces as the ETSI suite compares
/// them.
pub(super) fn add_page_links(
    response: &mut Response,
    request: &NgsiRequest,
    path: &str,
    offset: usize,
    limit: usize,
    returned: usize,
    total: Option<u64>,
) {
    let with_offset = |new_offset: usize| {
        let mut pairs: Vec<String> = request
            .params
            .pairs()
            .iter()
            .filter(|(n, _)| n != "offset" && n != "limit")
            .map(|(n, v)| format!("{}={}", encode(n), encode(v)))
            .collect();
        pairs.push(format!("limit={limit}"));
        pairs.push(format!("offset={new_offset}"));
        format!("<{path}?{}>", pairs.join("&"))
    };
    let has_next = match total {
        Some(total) => ((offset + returned) as u64) < total,
        None => limit > 0 && returned == limit,
    };
    if has_next {
        let link = format!(
            "{};rel=\"next\";type=\"application/ld+json\"",
            with_offset(offset + limit)
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().append(header::LINK, value);
        }
    }
    if offset > 0 && limit > 0 {
        let link = format!(
            "{};rel=\"prev\";type=\"application/ld+json\"",
            with_offset(offset.saturating_sub(limit))
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().append(header::LINK, value);
        }
    }
}

fn encode(text: &str) -> String {
    percent_encoding::utf8_percent_encode(text, percent_encoding::NON_ALPHANUMERIC).to_string()
}

pub async fn replace(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    check_iri("entity id", &id)?;
    let body = read_json_body(&state, &request, &headers, body).await?;
    let ctx = body.context(&state).await?;
    let mut value = body.value;
    // The id is the path's; a body may repeat it but not contradict it.
    if let Some(obj) = value.as_object_mut() {
        match obj.get("id").and_then(Value::as_str) {
            Some(body_id) if body_id != id => {
                return Err(NgsiError::bad_request_data(format!(
                    "the body's id {body_id} differs from the entity id {id} in the path"
                ))
                .into())
            }
            _ => {
                obj.insert("id".into(), json!(id));
            }
        }
    }
    let entity = codec::decode_entity(&value, &ctx)?;
    state.broker.replace_entity(&request.tenant, entity).await?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}

pub async fn merge(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&["options"])?;
    check_iri("entity id", &id)?;
    let body = read_json_body(&state, &request, &headers, body).await?;
    let ctx = body.context(&state).await?;
    let patch = entity_patch(&body.value, &id, &ctx)?;
    state
        .broker
        .merge_entity(&request.tenant, &id, patch)
        .await?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}

/// The types, scopes and attributes of a merge-patch body.
pub fn entity_patch<J: JsonNode>(
    value: &J,
    id: &str,
    ctx: &ActiveContext,
) -> Result<EntityPatch, NgsiError> {
    if !value.is_object() {
        return Err(NgsiError::bad_request_data(
            "the body must be a JSON object",
        ));
    }
    if let Some(body_id) = value.get("id").and_then(J::as_str) {
        if body_id != id {
            return Err(NgsiError::bad_request_data(format!(
                "the body's id {body_id} differs from the entity id {id}"
            )));
        }
    }
    let types = match value.get("type") {
        None => Vec::new(),
        Some(t) => decode_types(t, ctx).map_err(NgsiError::bad_request_data)?,
    };
    let scopes = value.get("scope").map(decode_scopes).transpose()?;
    Ok(EntityPatch {
        types,
        scopes,
        attributes: codec::decode_attributes(value, ctx)?,
    })
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: NgsiRequest,
) -> Answer {
    request.params.allow_only(&["local", "via"])?;
    check_iri("entity id", &id)?;
    state.broker.delete_entity(&request.tenant, &id).await?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}

pub async fn purge(State(state): State<AppState>, request: NgsiRequest) -> Answer {
    request.params.allow_only(&[
        "type",
        "id",
        "idPattern",
        "q",
        "scopeQ",
        "attrs",
        "georel",
        "geometry",
        "coordinates",
        "geoproperty",
        "local",
        "via",
    ])?;
    let ctx = request.context(&state).await?;
    let query = query::entity_query(&request.params, &ctx)?;
    if query.types.is_none()
        && query.ids.is_empty()
        && query.id_pattern.is_none()
        && query.q.is_none()
        && query.scope_q.is_none()
        && query.geo_q.is_none()
    {
        return Err(NgsiError::bad_request_data(
            "purge needs at least one of type, id, idPattern, q, scopeQ or a geo-query",
        )
        .into());
    }
    state.broker.purge(&request.tenant, &query).await?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}

pub async fn append_attrs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&["options"])?;
    check_iri("entity id", &id)?;
    let no_overwrite = request
        .params
        .list("options")?
        .iter()
        .any(|o| o == "noOverwrite");
    let body = read_json_body(&state, &request, &headers, body).await?;
    let ctx = body.context(&state).await?;
    let patch = entity_patch(&body.value, &id, &ctx)?;
    let report = state
        .broker
        .append_attributes(&request.tenant, &id, patch, no_overwrite)
        .await?;
    Ok(update_response(&request, &ctx, report))
}

pub async fn update_attrs(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    check_iri("entity id", &id)?;
    let body = read_json_body(&state, &request, &headers, body).await?;
    let ctx = body.context(&state).await?;
    let patch = entity_patch(&body.value, &id, &ctx)?;
    let report = state
        .broker
        .update_attributes(&request.tenant, &id, patch)
        .await?;
    Ok(update_response(&request, &ctx, report))
}

/// The expanded name of the attribute in a request path; names JSON-LD or the `q`
/// language could not carry (`@invalid`, `a b`) are refused.
pub(super) fn attribute_name(attr: &str, ctx: &ActiveContext) -> Result<String, NgsiError> {
    check_attribute_name(attr)?;
    Ok(ctx.expand_iri(attr, true))
}

/// 204 when every attribute was written, else 207 with an UpdateResult.
fn update_response(request: &NgsiRequest, ctx: &ActiveContext, report: UpdateReport) -> Response {
    if report.is_complete() {
        return request.respond_empty(StatusCode::NO_CONTENT);
    }
    let body = json!({
        "updated": report.updated.iter().map(|n| ctx.compact_iri(n, true)).collect::<Vec<_>>(),
        "notUpdated": report.not_updated.iter().map(|n| json!({
            "attributeName": ctx.compact_iri(&n.attribute, true),
            "reason": n.reason,
        })).collect::<Vec<_>>(),
    });
    request.respond(StatusCode::MULTI_STATUS, MediaType::Json, body)
}

pub async fn partial_update_attr(
    State(state): State<AppState>,
    Path((id, attr)): Path<(String, String)>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    check_iri("entity id", &id)?;
    let body = read_json_body(&state, &request, &headers, body).await?;
    let ctx = body.context(&state).await?;
    let name = attribute_name(&attr, &ctx)?;
    let fragments = decode_fragment(&name, &body.value, &ctx)?;
    state
        .broker
        .partial_update_attribute(&request.tenant, &id, &name, fragments)
        .await?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}

pub async fn replace_attr(
    State(state): State<AppState>,
    Path((id, attr)): Path<(String, String)>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    check_iri("entity id", &id)?;
    let body = read_json_body(&state, &request, &headers, body).await?;
    let ctx = body.context(&state).await?;
    let name = attribute_name(&attr, &ctx)?;
    if name == SCOPE {
        return Err(NgsiError::bad_request_data(
            "scope is no attribute: change it with an update or merge of the entity",
        )
        .into());
    }
    let instances = codec::decode_attribute(&name, &body.value, &ctx)?;
    state
        .broker
        .replace_attribute(&request.tenant, &id, &name, instances)
        .await?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}

pub async fn delete_attr(
    State(state): State<AppState>,
    Path((id, attr)): Path<(String, String)>,
    request: NgsiRequest,
) -> Answer {
    request.params.allow_only(&["datasetId", "deleteAll"])?;
    check_iri("entity id", &id)?;
    let ctx = request.context(&state).await?;
    let name = attribute_name(&attr, &ctx)?;
    let which = query::dataset_selector(&request.params)?;
    state
        .broker
        .delete_attribute(&request.tenant, &id, &name, which)
        .await?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}
