//! Handlers for `/entities` and its attributes (clause 6.4–6.7): each parses the
//! request, calls the broker, and renders the result.

use super::query::{self, check_iri, AttributeFilter};
use super::{negotiate, read_json_body, MediaType, NgsiRequest, RESULTS_COUNT_HEADER};
use crate::problem::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use broker::ops::{EntityPatch, InstanceSelector, UpdateReport};
use ngsi_ld::context::{self as codec, ActiveContext};
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
];

pub async fn create(
    State(state): State<AppState>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    let body = read_json_body(&state, &request, &headers, body).await?;
    let ctx = state
        .broker
        .contexts()
        .resolve(body.local_context.as_ref())
        .await?;
    let entity = codec::decode_entity(&body.value, &ctx)?;
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
    let mut entity = state.broker.retrieve_entity(&request.tenant, &id).await?;
    filter.apply(&mut entity);
    let body = match media {
        MediaType::GeoJson => {
            let geometry = geometry_property(&request, &ctx)?;
            codec::encode_geojson_feature(&entity, &ctx, &options, &geometry)
        }
        _ => codec::encode_entity(&entity, &ctx, &options),
    };
    Ok(request.respond(StatusCode::OK, media, body))
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

pub async fn query(State(state): State<AppState>, request: NgsiRequest) -> Answer {
    request.params.allow_only(QUERY_PARAMS)?;
    let media = negotiate(request.accept.as_deref(), true)?;
    let ctx = request.context(&state).await?;
    let query = query::entity_query(&request.params, &ctx)?;
    let selects_something = query.types.is_some()
        || !query.ids.is_empty()
        || query.id_pattern.is_some()
        || !query.attrs.is_empty()
        || query.q.is_some()
        || query.geo_q.is_some()
        || query.scope_q.is_some();
    if !selects_something {
        return Err(NgsiError::bad_request_data(
            "a query needs at least one of type, id, idPattern, attrs, q, geoQ or scopeQ",
        )
        .into());
    }
    let options = query::render_options(&request.params)?;
    let filter = AttributeFilter::from_params(&request.params, &ctx)?;
    let page = state.broker.query_entities(&request.tenant, &query).await?;
    let geometry = geometry_property(&request, &ctx)?;
    let rendered: Vec<Value> = page
        .entities
        .into_iter()
        .map(|mut entity| {
            filter.apply(&mut entity);
            match media {
                MediaType::GeoJson => {
                    codec::encode_geojson_feature(&entity, &ctx, &options, &geometry)
                }
                _ => codec::encode_entity(&entity, &ctx, &options),
            }
        })
        .collect();
    let count = rendered.len();
    let body = match media {
        MediaType::GeoJson => codec::encode_feature_collection(rendered),
        _ => Value::Array(rendered),
    };
    let mut response = request.respond(StatusCode::OK, media, body);
    if let Some(total) = page.total {
        response
            .headers_mut()
            .insert(RESULTS_COUNT_HEADER, HeaderValue::from(total));
    }
    add_page_links(
        &mut response,
        &request,
        query.offset,
        query.limit,
        count,
        page.total,
    );
    Ok(response)
}

/// `Link: <…>; rel="next"` / `rel="prev"` headers for paging (clause 5.5.9).
fn add_page_links(
    response: &mut Response,
    request: &NgsiRequest,
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
        format!("</ngsi-ld/v1/entities?{}>", pairs.join("&"))
    };
    let has_next = match total {
        Some(total) => ((offset + returned) as u64) < total,
        None => limit > 0 && returned == limit,
    };
    if has_next {
        let link = format!(
            "{}; rel=\"next\"; type=\"application/ld+json\"",
            with_offset(offset + limit)
        );
        if let Ok(value) = HeaderValue::from_str(&link) {
            response.headers_mut().append(header::LINK, value);
        }
    }
    if offset > 0 && limit > 0 {
        let link = format!(
            "{}; rel=\"prev\"; type=\"application/ld+json\"",
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
    let ctx = state
        .broker
        .contexts()
        .resolve(body.local_context.as_ref())
        .await?;
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
    let ctx = state
        .broker
        .contexts()
        .resolve(body.local_context.as_ref())
        .await?;
    let patch = entity_patch(&body.value, &id, &ctx)?;
    state
        .broker
        .merge_entity(&request.tenant, &id, patch)
        .await?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}

/// The types, scopes and attributes of a merge-patch body.
pub fn entity_patch(
    value: &Value,
    id: &str,
    ctx: &ActiveContext,
) -> Result<EntityPatch, NgsiError> {
    let obj = value
        .as_object()
        .ok_or_else(|| NgsiError::bad_request_data("the body must be a JSON object"))?;
    if let Some(body_id) = obj.get("id").and_then(Value::as_str) {
        if body_id != id {
            return Err(NgsiError::bad_request_data(format!(
                "the body's id {body_id} differs from the entity id {id}"
            )));
        }
    }
    let types = match obj.get("type") {
        None => Vec::new(),
        Some(Value::String(t)) => vec![ctx.expand_iri(t, true)],
        Some(Value::Array(ts)) => ts
            .iter()
            .map(|t| {
                t.as_str().map(|t| ctx.expand_iri(t, true)).ok_or_else(|| {
                    NgsiError::bad_request_data("type must be a string or a list of strings")
                })
            })
            .collect::<Result<_, _>>()?,
        Some(_) => {
            return Err(NgsiError::bad_request_data(
                "type must be a string or a list of strings",
            ))
        }
    };
    let scopes = match obj.get("scope") {
        None => None,
        Some(Value::String(s)) => Some(vec![s.clone()]),
        Some(Value::Array(items)) => Some(
            items
                .iter()
                .map(|s| {
                    s.as_str().map(str::to_owned).ok_or_else(|| {
                        NgsiError::bad_request_data("scope must be a string or a list of strings")
                    })
                })
                .collect::<Result<_, _>>()?,
        ),
        Some(_) => {
            return Err(NgsiError::bad_request_data(
                "scope must be a string or a list of strings",
            ))
        }
    };
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
    let ctx = state
        .broker
        .contexts()
        .resolve(body.local_context.as_ref())
        .await?;
    let attributes = codec::decode_attributes(&body.value, &ctx)?;
    let report = state
        .broker
        .append_attributes(&request.tenant, &id, attributes, no_overwrite)
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
    let ctx = state
        .broker
        .contexts()
        .resolve(body.local_context.as_ref())
        .await?;
    let attributes = codec::decode_attributes(&body.value, &ctx)?;
    let report = state
        .broker
        .update_attributes(&request.tenant, &id, attributes)
        .await?;
    Ok(update_response(&request, &ctx, report))
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
    let ctx = state
        .broker
        .contexts()
        .resolve(body.local_context.as_ref())
        .await?;
    let name = ctx.expand_iri(&attr, true);
    let fragments = codec::decode_attribute(&name, &body.value, &ctx)?;
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
    let ctx = state
        .broker
        .contexts()
        .resolve(body.local_context.as_ref())
        .await?;
    let name = ctx.expand_iri(&attr, true);
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
    let name = ctx.expand_iri(&attr, true);
    let which = if request.params.bool("deleteAll")? {
        InstanceSelector::All
    } else if let Some(dataset) = request.params.get("datasetId")? {
        check_iri("datasetId", dataset)?;
        InstanceSelector::DatasetId(dataset.to_owned())
    } else {
        InstanceSelector::Default
    };
    state
        .broker
        .delete_attribute(&request.tenant, &id, &name, which)
        .await?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}

/// Renders one entity for a response (used by batch query as well).
pub fn render_entity(
    entity: &Entity,
    ctx: &ActiveContext,
    options: &codec::RenderOptions,
) -> Value {
    codec::encode_entity(entity, ctx, options)
}
