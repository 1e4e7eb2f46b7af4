//! Handlers for `/temporal/entities` and `/temporal/entityOperations/query` (clauses
//! 6.18–6.24): each parses the request, calls [`broker::temporal::History`], and
//! renders the history in the form asked for, cut into pages with `Content-Range`
//! when it is long (206 Partial Content).

use super::params::Params;
use super::query::{self, check_iri, AttributeFilter, DEFAULT_PAGE_SIZE};
use super::{negotiate, read_json_body, MediaType, NgsiRequest, RESULTS_COUNT_HEADER};
use crate::problem::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::{Path, RawQuery, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::Response;
use broker::temporal::{TemporalBody, TemporalView};
use ngsi_ld::context::{decode_attribute, ActiveContext};
use ngsi_ld::query::attrs::Projection;
use ngsi_ld::temporal::{
    decode_temporal_attributes, decode_temporal_entity, empty_series, encode_aggregated,
    encode_temporal, ContentRange, TemporalQuery, TemporalRender,
};
use ngsi_ld::NgsiError;
use serde_json::Value;

type Answer = Result<Response, ApiError>;

/// The temporal parameters, beside those of the entity operations.
const TEMPORAL_PARAMS: &[&str] = &[
    "timerel",
    "timeAt",
    "endTimeAt",
    "timeproperty",
    "lastN",
    "aggrMethods",
    "aggrPeriodDuration",
    "options",
    "format",
    "lang",
    "local",
    "via",
    "datasetId",
];
const RETRIEVE_PARAMS: &[&str] = &["attrs", "pick", "omit"];
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
    "scopeQ",
    "limit",
    "offset",
    "count",
];

fn allow(params: &Params, own: &[&str]) -> Result<(), NgsiError> {
    let known: Vec<&str> = own.iter().chain(TEMPORAL_PARAMS).copied().collect();
    params.allow_only(&known)
}

/// The temporal query and rendering choices of a request. `format` names the form
/// alone and takes precedence over the form named in `options` (clause 6.3.7); other
/// values of either are refused as invalid requests.
fn temporal_query(params: &Params) -> Result<(TemporalQuery, TemporalRender), NgsiError> {
    let options = params.list("options")?;
    let format = params.get("format")?;
    let mut render = TemporalRender::default();
    for option in &options {
        match option.as_str() {
            "sysAttrs" => render.sys_attrs = true,
            "temporalValues" | "aggregatedValues" | "normalized" => {}
            other => {
                return Err(NgsiError::invalid_request(format!(
                    "unknown option '{other}': use temporalValues, aggregatedValues, normalized or sysAttrs"
                )))
            }
        }
    }
    let form: Vec<&str> = match format {
        Some(f @ ("temporalValues" | "aggregatedValues")) => vec![f],
        Some("normalized") => Vec::new(),
        Some(other) => {
            return Err(NgsiError::invalid_request(format!(
                "unknown format '{other}': use normalized, temporalValues or aggregatedValues"
            )))
        }
        None => options
            .iter()
            .map(String::as_str)
            .filter(|o| matches!(*o, "temporalValues" | "aggregatedValues"))
            .collect(),
    };
    let form = form.join(",");
    // The aggregation parameters belong to the form `format` overrode, if it did.
    let overridden = format.is_some() && form != "aggregatedValues";
    let pairs = params
        .pairs()
        .iter()
        .filter(|(name, _)| name != "options" && name != "format")
        .filter(|(name, _)| {
            !(overridden && (name == "aggrMethods" || name == "aggrPeriodDuration"))
        })
        .map(|(n, v)| (n.as_str(), v.as_str()))
        .chain(std::iter::once(("options", form.as_str())));
    Ok((TemporalQuery::from_params(pairs)?, render))
}

/// Renders one temporal entity, with only the attributes the filter shows.
fn render(
    view: TemporalView,
    filter: &AttributeFilter,
    ctx: &ActiveContext,
    query: &TemporalQuery,
    render: &TemporalRender,
) -> Value {
    let head = &view.head;
    let emptied = view.emptied;
    let mut rendered = match view.body {
        TemporalBody::Instances(mut instances) => {
            instances.retain(|i| filter.shows(&i.name, i.attribute.dataset_id.as_deref()));
            encode_temporal(
                &head.id,
                &head.types,
                &head.scopes,
                &instances,
                ctx,
                query,
                render,
            )
        }
        TemporalBody::Aggregated(mut series) => {
            series.retain(|s| filter.shows(&s.name, s.dataset_id.as_deref()));
            encode_aggregated(&head.id, &head.types, &head.scopes, &series, ctx)
        }
    };
    if let Value::Object(map) = &mut rendered {
        for (name, kind) in emptied.iter().filter(|(n, _)| filter.shows(n, None)) {
            map.insert(ctx.compact_iri(name, true), empty_series(kind, &query.form));
        }
    }
    filter.finish(&mut rendered);
    rendered
}

/// Whether an entity's answer holds any instance or series the filter shows.
fn shows_anything(view: &TemporalView, filter: &AttributeFilter) -> bool {
    match &view.body {
        TemporalBody::Instances(instances) => instances
            .iter()
            .any(|i| filter.shows(&i.name, i.attribute.dataset_id.as_deref())),
        TemporalBody::Aggregated(series) => series
            .iter()
            .any(|s| filter.shows(&s.name, s.dataset_id.as_deref())),
    }
}

/// The answer: 200, or 206 with `Content-Range` when the histories were cut.
fn respond(
    request: &NgsiRequest,
    media: MediaType,
    body: Value,
    range: Option<ContentRange>,
) -> Response {
    let status = if range.is_some() {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let mut response = request.respond(status, media, body);
    if let Some(range) = range {
        if let Ok(value) = HeaderValue::from_str(&range.header_value()) {
            response.headers_mut().insert(header::CONTENT_RANGE, value);
        }
    }
    response
}

pub async fn retrieve(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: NgsiRequest,
) -> Answer {
    allow(&request.params, RETRIEVE_PARAMS)?;
    check_iri("entity id", &id)?;
    let media = negotiate(request.accept.as_deref(), false)?;
    let ctx = request.context(&state).await?;
    let (query, choices) = temporal_query(&request.params)?;
    let filter = AttributeFilter::from_params(&request.params, &ctx)?;
    let (view, range) = state
        .history
        .retrieve(
            &request.tenant,
            &id,
            filter.attribute_names(),
            &query,
            &request.visibility,
        )
        .await?;
    if !shows_anything(&view, &filter)
        && (!filter.attribute_names().is_empty() || filter.hides_core())
    {
        return Err(NgsiError::not_found(format!(
            "entity {id} has no history of the requested attributes or members"
        ))
        .into());
    }
    let body = render(view, &filter, &ctx, &query, &choices);
    Ok(respond(&request, media, body, range))
}

pub async fn query(
    State(state): State<AppState>,
    RawQuery(raw_query): RawQuery,
    request: NgsiRequest,
) -> Answer {
    allow(&request.params, QUERY_PARAMS)?;
    let media = negotiate(request.accept.as_deref(), false)?;
    let ctx = request.context(&state).await?;
    let selection = Params::parse(&query::form_spaces_in_q(raw_query.as_deref().unwrap_or("")))?;
    let entity_query = query::entity_query(&selection, &ctx)?;
    // As for entities (clause 6.18.3.1): without a selector, only a local query lists all.
    let local = request.params.bool("local")?;
    if !query::selects_something(&entity_query) && !local {
        return Err(NgsiError::bad_request_data(
            "a temporal query needs at least one of type, attrs, q, geoQ or scopeQ (id and idPattern only narrow them), or local=true",
        )
        .into());
    }
    let (temporal, choices) = temporal_query(&request.params)?;
    let filter = AttributeFilter::from_params(&request.params, &ctx)?;
    answer_query(
        &state,
        &request,
        media,
        &ctx,
        entity_query,
        &temporal,
        &choices,
        &filter,
    )
    .await
}

/// Runs a temporal query and renders its page with `NGSILD-Results-Count` and
/// `Content-Range` as they apply.
#[allow(clippy::too_many_arguments)]
async fn answer_query(
    state: &AppState,
    request: &NgsiRequest,
    media: MediaType,
    ctx: &ActiveContext,
    entity_query: ngsi_ld::query::EntityQuery,
    temporal: &TemporalQuery,
    choices: &TemporalRender,
    filter: &AttributeFilter,
) -> Answer {
    if entity_query.limit > broker::MAX_PAGE_SIZE {
        return Err(NgsiError::new(
            ngsi_ld::ProblemType::TooManyResults,
            format!(
                "limit {} is above the maximum page size {}",
                entity_query.limit,
                broker::MAX_PAGE_SIZE
            ),
        )
        .into());
    }
    let page = state
        .history
        .query(
            &request.tenant,
            &entity_query,
            temporal,
            &request.visibility,
        )
        .await?;
    let rendered: Vec<Value> = page
        .entities
        .into_iter()
        // An entity whose history in the window has none of the attributes or dataset
        // ids asked for is no part of the answer; one the page's cut emptied is (its
        // attributes show empty), and so is one pick or omit leave bare.
        .filter(|view| {
            !filter.selects_instances() || shows_anything(view, filter) || !view.emptied.is_empty()
        })
        .map(|view| render(view, filter, ctx, temporal, choices))
        .collect();
    let mut response = respond(request, media, Value::Array(rendered), page.range);
    if let Some(total) = page.total {
        response
            .headers_mut()
            .insert(RESULTS_COUNT_HEADER, HeaderValue::from(total));
    }
    Ok(response)
}

pub async fn entity_operations_query(
    State(state): State<AppState>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    allow(&request.params, &["limit", "offset", "count"])?;
    let media = negotiate(request.accept.as_deref(), false)?;
    let body = read_json_body(&state, &request, &headers, body).await?;
    let ctx = body.context(&state).await?;
    let mut entity_query = super::batch::query_document(&body.value)?;
    entity_query.limit = request.params.usize("limit")?.unwrap_or(DEFAULT_PAGE_SIZE);
    entity_query.offset = request.params.usize("offset")?.unwrap_or(0);
    entity_query.count = request.params.bool("count")?;
    let filter = AttributeFilter::new(entity_query.attrs.clone(), Projection::All, &ctx)?;
    query::expand_query(&mut entity_query, &ctx);
    // The temporal part travels in the document's `temporalQ` (clause 5.2.21).
    let mut pairs: Vec<(String, String)> = request.params.pairs().to_vec();
    if let Some(temporal_q) = body.value.get("temporalQ") {
        let members = temporal_q
            .as_object()
            .ok_or_else(|| NgsiError::bad_request_data("temporalQ of a Query must be an object"))?;
        for (name, value) in members {
            let text = match value {
                Value::String(s) => s.clone(),
                Value::Number(n) => n.to_string(),
                other => {
                    return Err(NgsiError::bad_request_data(format!(
                        "temporalQ member '{name}' must be a string or a number, not {other}"
                    ))
                    .into())
                }
            };
            pairs.push((name.clone(), text));
        }
    }
    let (temporal, choices) = temporal_query(&Params::from_pairs(pairs))?;
    answer_query(
        &state,
        &request,
        media,
        &ctx,
        entity_query,
        &temporal,
        &choices,
        &filter,
    )
    .await
}

pub async fn create(
    State(state): State<AppState>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    let body = read_json_body(&state, &request, &headers, body).await?;
    let ctx = body.context(&state).await?;
    let temporal = decode_temporal_entity(&body.value, &ctx)?;
    let location = format!("/ngsi-ld/v1/temporal/entities/{}", temporal.id);
    let created = state
        .history
        .create_or_update(&request.tenant, temporal)
        .await?;
    if !created {
        return Ok(request.respond_empty(StatusCode::NO_CONTENT));
    }
    let mut response = request.respond_empty(StatusCode::CREATED);
    if let Ok(value) = HeaderValue::from_str(&location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    Ok(response)
}

pub async fn delete(
    State(state): State<AppState>,
    Path(id): Path<String>,
    request: NgsiRequest,
) -> Answer {
    request.params.allow_only(&["local", "via"])?;
    check_iri("entity id", &id)?;
    state.history.delete(&request.tenant, &id).await?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}

pub async fn add_attrs(
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
    let instances = decode_temporal_attributes(&body.value, &ctx)?;
    state
        .history
        .add_attributes(&request.tenant, &id, instances)
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
    let name = super::entities::attribute_name(&attr, &ctx)?;
    let dataset = query::dataset_selector(&request.params)?;
    state
        .history
        .delete_attribute(&request.tenant, &id, &name, &dataset)
        .await?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}

pub async fn modify_instance(
    State(state): State<AppState>,
    Path((id, attr, instance_id)): Path<(String, String, String)>,
    request: NgsiRequest,
    headers: HeaderMap,
    body: Body,
) -> Answer {
    request.params.allow_only(&[])?;
    check_iri("entity id", &id)?;
    check_iri("instance id", &instance_id)?;
    let body = read_json_body(&state, &request, &headers, body).await?;
    let ctx = body.context(&state).await?;
    let name = super::entities::attribute_name(&attr, &ctx)?;
    let obj = body
        .value
        .as_object()
        .ok_or_else(|| NgsiError::bad_request_data("the body must be a JSON object"))?;
    // The body is the instance itself, or a fragment holding it by the attribute's name.
    let member = obj
        .iter()
        .find(|(key, _)| key.as_str() != "@context" && ctx.expand_iri(key, true) == name)
        .map(|(_, value)| value.clone())
        .unwrap_or_else(|| {
            let mut bare = body.value.clone();
            if let Some(members) = bare.as_object_mut() {
                members.remove("@context");
            }
            bare
        });
    let mut decoded = decode_attribute(&name, &member, &ctx)?;
    if decoded.len() != 1 {
        return Err(NgsiError::bad_request_data(
            "an attribute instance is modified with exactly one instance",
        )
        .into());
    }
    let attribute = decoded.remove(0);
    state
        .history
        .modify_instance(&request.tenant, &id, &name, &instance_id, attribute)
        .await?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}

pub async fn delete_instance(
    State(state): State<AppState>,
    Path((id, attr, instance_id)): Path<(String, String, String)>,
    request: NgsiRequest,
) -> Answer {
    request.params.allow_only(&[])?;
    check_iri("entity id", &id)?;
    check_iri("instance id", &instance_id)?;
    let ctx = request.context(&state).await?;
    let name = super::entities::attribute_name(&attr, &ctx)?;
    state
        .history
        .delete_instance(&request.tenant, &id, &name, &instance_id)
        .await?;
    Ok(request.respond_empty(StatusCode::NO_CONTENT))
}
