//! The NGSI-LD API face at `/ngsi-ld/v1` (ETSI GS CIM 009 clause 6): routes, and the
//! request plumbing every handler shares — tenant, `@context` (Link header or inline),
//! content negotiation, query parameters, body limits, and rendering responses with
//! their `@context`.

mod batch;
mod discovery;
mod entities;
mod jsonld_contexts;
pub mod params;
mod query;
mod registrations;
mod subscriptions;
mod temporal;

use crate::auth::middleware::caller_of;
use crate::auth::AuthError;
use crate::problem::ApiError;
use crate::AppState;
use axum::body::Body;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, patch, post};
use axum::Router;
use broker::Visibility;
use identity::policy::{Action, Decision, Target};
use identity::Principal;
use ngsi_ld::context::ActiveContext;
use ngsi_ld::json::{JsonNode, JsonRef};
use ngsi_ld::NgsiError;
use serde_json::Value;
use store::Tenant;

/// The `rel` of a Link header that carries a JSON-LD context.
pub const JSONLD_CONTEXT_REL: &str = "http://www.w3.org/ns/json-ld#context";
/// The URL of the core context renkei answers for (built in, never fetched).
pub use ngsi_ld::context::CORE_CONTEXT_URL;
pub const TENANT_HEADER: &str = "NGSILD-Tenant";
pub const RESULTS_COUNT_HEADER: &str = "NGSILD-Results-Count";

/// PUT and PATCH on the entity collection: the client forgot the entity id, which is
/// bad request data rather than a method the resource lacks (ETSI expects 400).
async fn entity_id_missing() -> ApiError {
    NgsiError::bad_request_data("replace and merge need the entity id in the path: /entities/{id}")
        .into()
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route(
            "/entities",
            post(entities::create)
                .get(entities::query)
                .delete(entities::purge)
                .put(entity_id_missing)
                .patch(entity_id_missing),
        )
        .route(
            "/entities/{id}",
            get(entities::retrieve)
                .put(entities::replace)
                .patch(entities::merge)
                .delete(entities::delete),
        )
        .route(
            "/entities/{id}/attrs",
            post(entities::append_attrs).patch(entities::update_attrs),
        )
        .route(
            "/entities/{id}/attrs/{attr}",
            axum::routing::patch(entities::partial_update_attr)
                .put(entities::replace_attr)
                .delete(entities::delete_attr),
        )
        .route("/entityOperations/create", post(batch::create))
        .route("/entityOperations/upsert", post(batch::upsert))
        .route("/entityOperations/update", post(batch::update))
        .route("/entityOperations/merge", post(batch::merge))
        .route("/entityOperations/delete", post(batch::delete))
        .route("/entityOperations/query", post(batch::query))
        .route("/types", get(discovery::types))
        .route("/types/{type}", get(discovery::type_details))
        .route("/attributes", get(discovery::attributes))
        .route("/attributes/{attr}", get(discovery::attribute_details))
        .route(
            "/jsonldContexts",
            get(jsonld_contexts::list).post(jsonld_contexts::add),
        )
        .route(
            "/jsonldContexts/{id}",
            get(jsonld_contexts::retrieve).delete(jsonld_contexts::delete),
        )
        .route(
            "/subscriptions",
            post(subscriptions::create).get(subscriptions::list),
        )
        .route(
            "/csourceRegistrations",
            post(registrations::create).get(registrations::query),
        )
        .route(
            "/csourceRegistrations/{id}",
            get(registrations::retrieve)
                .patch(registrations::update)
                .delete(registrations::delete),
        )
        .route(
            "/subscriptions/{id}",
            get(subscriptions::retrieve)
                .patch(subscriptions::update)
                .delete(subscriptions::delete),
        )
        .route(
            "/temporal/entities",
            get(temporal::query).post(temporal::create),
        )
        .route(
            "/temporal/entities/{id}",
            get(temporal::retrieve).delete(temporal::delete),
        )
        .route("/temporal/entities/{id}/attrs", post(temporal::add_attrs))
        .route(
            "/temporal/entities/{id}/attrs/{attr}",
            delete(temporal::delete_attr),
        )
        .route(
            "/temporal/entities/{id}/attrs/{attr}/{instance}",
            patch(temporal::modify_instance).delete(temporal::delete_instance),
        )
        .route(
            "/temporal/entityOperations/query",
            post(temporal::entity_operations_query),
        )
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .fallback(|| async { ApiError::Ngsi(NgsiError::not_found("no such NGSI-LD resource")) })
}

/// What renkei can answer with, from the Accept header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MediaType {
    Json,
    JsonLd,
    GeoJson,
}

impl MediaType {
    pub fn as_str(self) -> &'static str {
        match self {
            MediaType::Json => "application/json",
            MediaType::JsonLd => "application/ld+json",
            MediaType::GeoJson => "application/geo+json",
        }
    }
}

/// `limit` (20 when not given; above `MAX_PAGE_SIZE`, TooManyResults) and `offset`
/// of a listing (subscriptions, registrations).
fn listing_page(request: &NgsiRequest) -> Result<(usize, usize), ApiError> {
    let limit = request.params.usize("limit")?.unwrap_or(20);
    if limit > broker::MAX_PAGE_SIZE {
        return Err(NgsiError::new(
            ngsi_ld::ProblemType::TooManyResults,
            format!(
                "limit {limit} is above the maximum page size {}",
                broker::MAX_PAGE_SIZE
            ),
        )
        .into());
    }
    Ok((limit, request.params.usize("offset")?.unwrap_or(0)))
}

/// A listing's answer: one page of `items` out of `total`, with the paging `Link`s
/// and, when `count=true`, the `NGSILD-Results-Count` header.
fn listing_answer(
    request: &NgsiRequest,
    media: MediaType,
    path: &str,
    items: Vec<Value>,
    (limit, offset): (usize, usize),
    total: u64,
) -> Result<Response, ApiError> {
    let returned = items.len();
    let mut response = request.respond(StatusCode::OK, media, Value::Array(items));
    entities::add_page_links(
        &mut response,
        request,
        path,
        offset,
        limit,
        returned,
        Some(total),
    );
    if request.params.bool("count")? {
        response
            .headers_mut()
            .insert(RESULTS_COUNT_HEADER, HeaderValue::from(total));
    }
    Ok(response)
}

/// Picks the response media type from an Accept header (clause 6.3.6): the first
/// acceptable type with the highest quality wins; no header means JSON.
pub fn negotiate(accept: Option<&str>, geo_allowed: bool) -> Result<MediaType, ApiError> {
    let Some(accept) = accept.filter(|a| !a.trim().is_empty()) else {
        return Ok(MediaType::Json);
    };
    let mut best: Option<(f32, MediaType)> = None;
    for range in accept.split(',') {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let quality = parts
            .filter_map(|p| p.trim().strip_prefix("q="))
            .find_map(|q| q.trim().parse::<f32>().ok())
            .unwrap_or(1.0);
        let candidate = match media.as_str() {
            "application/json" | "application/*" | "*/*" => Some(MediaType::Json),
            "application/ld+json" => Some(MediaType::JsonLd),
            "application/geo+json" if geo_allowed => Some(MediaType::GeoJson),
            _ => None,
        };
        if let Some(candidate) = candidate {
            if quality > 0.0 && best.is_none_or(|(q, _)| quality > q) {
                best = Some((quality, candidate));
            }
        }
    }
    best.map(|(_, m)| m).ok_or_else(|| {
        ApiError::NotAcceptable(format!(
            "cannot answer with any of '{accept}': use application/json or application/ld+json"
        ))
    })
}

/// The parts of a request every NGSI-LD handler needs.
pub struct NgsiRequest {
    pub tenant: Tenant,
    /// The tenant header as given, echoed in responses.
    pub tenant_header: Option<HeaderValue>,
    /// The context URL from the Link header, if any.
    pub link_context: Option<String>,
    pub accept: Option<String>,
    pub params: params::Params,
    /// What of the tenant the caller may read (writes were decided before the handler
    /// ran: a request that reaches it may do what it asks).
    pub visibility: Visibility,
}

impl FromRequestParts<AppState> for NgsiRequest {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let headers = &parts.headers;
        let tenant_header = headers.get(TENANT_HEADER).cloned();
        let tenant = match &tenant_header {
            None => Tenant::default_tenant(),
            Some(value) => {
                let name = value
                    .to_str()
                    .map_err(|_| {
                        NgsiError::bad_request_data("the NGSILD-Tenant header is not visible ASCII")
                    })?
                    .trim();
                validate_tenant_name(name)?;
                Tenant::named(name)
            }
        };
        let caller = caller_of(&parts.extensions);
        let visibility = authorize(
            state,
            &caller.principal,
            &tenant,
            access_of(&parts.method, parts.uri.path()),
        )
        .await?;
        refuse_nul_in_path(parts.uri.path())?;
        Ok(NgsiRequest {
            visibility,
            tenant,
            tenant_header,
            link_context: link_context(headers)?,
            accept: headers
                .get(header::ACCEPT)
                .and_then(|a| a.to_str().ok())
                .map(str::to_owned),
            params: params::Params::parse(parts.uri.query().unwrap_or(""))?,
        })
    }
}

/// What a request to the NGSI-LD face does, from its method and path (relative to
/// `/ngsi-ld/v1`); `None` for reading the hosted contexts, which are open to all.
fn access_of(method: &Method, path: &str) -> Option<Action> {
    let reads = matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS);
    if path.starts_with("/jsonldContexts") {
        return (!reads).then_some(Action::ContextManage);
    }
    if path.starts_with("/subscriptions") {
        return Some(Action::SubscriptionManage);
    }
    if reads || path == "/entityOperations/query" || path == "/temporal/entityOperations/query" {
        Some(Action::EntityRead)
    } else {
        Some(Action::EntityWrite)
    }
}

/// Asks the policy whether the caller may do `action` in the tenant, and what of it
/// they may read. A reader without a role there still sees the public types, so
/// anonymous residents can find shelters; everything else refused is 401 or 403.
async fn authorize(
    state: &AppState,
    principal: &Principal,
    tenant: &Tenant,
    action: Option<Action>,
) -> Result<Visibility, ApiError> {
    let identity = &state.identity;
    let Some(action) = action else {
        return Ok(Visibility::All);
    };
    if action == Action::ContextManage {
        identity.require(principal, action, Target::platform())?;
        return Ok(Visibility::All);
    }
    let record = identity.tenant(tenant.name()).await?;
    let target = Target::tenant(tenant.name(), record.as_ref());
    match identity.decide(principal, action, target) {
        Decision::Allow => Ok(Visibility::All),
        Decision::Deny(denial) => {
            let public_read = action == Action::EntityRead
                && identity
                    .decide(principal, action, target.public())
                    .is_allowed();
            if public_read {
                let types = record.map(|r| r.public_types).unwrap_or_default();
                Ok(Visibility::PublicTypes(types.into_iter().collect()))
            } else {
                Err(AuthError::from_denial(denial, Some(tenant.name())).into())
            }
        }
    }
}

fn validate_tenant_name(name: &str) -> Result<(), NgsiError> {
    let valid = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.' | ':'));
    if valid {
        Ok(())
    } else {
        Err(NgsiError::bad_request_data(format!(
            "tenant '{name}' is not a valid tenant name (1–64 letters, digits, '_', '-', '.', ':')"
        )))
    }
}

/// Refuses a path whose percent-decoded form has U+0000 (an entity id, a type, a
/// context id): PostgreSQL text cannot hold it, so both backends refuse it alike.
fn refuse_nul_in_path(path: &str) -> Result<(), NgsiError> {
    let has_nul = percent_encoding::percent_decode_str(path).any(|byte| byte == 0);
    if has_nul {
        return Err(NgsiError::bad_request_data(
            "the request path has a NUL character (U+0000)",
        ));
    }
    Ok(())
}

/// Where a JSON value holds U+0000, in a string or a member name, as a dotted path of
/// members and indexes (`name.value`, `[2].id`); `None` if nowhere.
fn nul_member(value: &Value) -> Option<String> {
    /// One step of the path, kept borrowed until a NUL is found: every body is
    /// walked, and naming every member on the way cost a request a few percent.
    enum Step<'a> {
        Member(&'a str),
        Index(usize),
    }
    /// The steps to the first NUL, innermost first.
    fn walk<'a>(value: &'a Value, steps: &mut Vec<Step<'a>>) -> bool {
        match value {
            Value::String(text) => text.contains('\0'),
            Value::Array(items) => items.iter().enumerate().any(|(i, item)| {
                let found = walk(item, steps);
                if found {
                    steps.push(Step::Index(i));
                }
                found
            }),
            Value::Object(map) => map.iter().any(|(name, member)| {
                let found = name.contains('\0') || walk(member, steps);
                if found {
                    steps.push(Step::Member(name));
                }
                found
            }),
            _ => false,
        }
    }
    let mut steps = Vec::new();
    if !walk(value, &mut steps) {
        return None;
    }
    let mut path = String::new();
    for step in steps.iter().rev() {
        match step {
            Step::Index(i) => path.push_str(&format!("[{i}]")),
            Step::Member(name) => {
                if !path.is_empty() {
                    path.push('.');
                }
                path.extend(name.escape_debug());
            }
        }
    }
    Some(path)
}

/// The context URL of a `Link: <url>; rel="http://www.w3.org/ns/json-ld#context"` header.
fn link_context(headers: &HeaderMap) -> Result<Option<String>, NgsiError> {
    for value in headers.get_all(header::LINK) {
        let text = value
            .to_str()
            .map_err(|_| NgsiError::bad_request_data("the Link header is not visible ASCII"))?;
        for link in text.split(",") {
            let link = link.trim();
            if !link.contains(JSONLD_CONTEXT_REL) {
                continue;
            }
            let url = link
                .strip_prefix('<')
                .and_then(|rest| rest.split_once('>'))
                .map(|(url, _)| url.trim())
                .filter(|url| url.contains(':'))
                .ok_or_else(|| {
                    NgsiError::bad_request_data(format!(
                        "the JSON-LD context Link header '{link}' has no valid <URL>"
                    ))
                })?;
            return Ok(Some(url.to_owned()));
        }
    }
    Ok(None)
}

impl NgsiRequest {
    /// The active context of a request without a body: the Link header's, or the core.
    pub async fn context(&self, state: &AppState) -> Result<ActiveContext, NgsiError> {
        let local = self.link_context.clone().map(Value::String);
        state.broker.contexts().resolve(local.as_ref()).await
    }

    /// The context named in responses: the request's Link context, else the core one.
    pub fn response_context_url(&self) -> String {
        self.link_context
            .clone()
            .unwrap_or_else(|| CORE_CONTEXT_URL.to_owned())
    }

    /// The `@context` member a body written as text ends with: the context URL for
    /// JSON-LD, none for the media types that carry it in the Link header.
    pub fn body_context_url(&self, media: MediaType) -> Option<String> {
        (media == MediaType::JsonLd).then(|| self.response_context_url())
    }

    /// Builds a JSON response carrying its `@context` as the media type requires:
    /// a Link header for JSON and GeoJSON, an `@context` member for JSON-LD.
    pub fn respond(&self, status: StatusCode, media: MediaType, mut body: Value) -> Response {
        if let Some(context_url) = self.body_context_url(media) {
            let context = Value::String(context_url);
            match &mut body {
                Value::Object(map) => {
                    map.insert("@context".into(), context);
                }
                Value::Array(items) => {
                    for item in items {
                        if let Value::Object(map) = item {
                            map.insert("@context".into(), context.clone());
                        }
                    }
                }
                _ => {}
            }
        }
        self.respond_text(status, media, body.to_string().into_bytes())
    }

    /// Like [`Self::respond`] for a body already written as JSON text, which carries
    /// its `@context` member itself when `media` is JSON-LD.
    pub fn respond_text(&self, status: StatusCode, media: MediaType, body: Vec<u8>) -> Response {
        let mut response = (status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(media.as_str()),
        );
        if media != MediaType::JsonLd {
            let context_url = self.response_context_url();
            if let Ok(link) = HeaderValue::from_str(&format!(
                "<{context_url}>; rel=\"{JSONLD_CONTEXT_REL}\"; type=\"application/ld+json\""
            )) {
                headers.insert(header::LINK, link);
            }
        }
        self.add_tenant_header(headers);
        response
    }

    /// A response without a body (201 with Location, 204).
    pub fn respond_empty(&self, status: StatusCode) -> Response {
        let mut response = status.into_response();
        self.add_tenant_header(response.headers_mut());
        response
    }

    pub fn add_tenant_header(&self, headers: &mut HeaderMap) {
        if let Some(tenant) = &self.tenant_header {
            headers.insert(TENANT_HEADER, tenant.clone());
        }
    }
}

/// A request body as JSON, with the `@context` it brings: inline for
/// `application/ld+json` (required there), from the Link header for `application/json`
/// (where an inline `@context` is refused, clause 6.3.5). The value is serde_json's, or
/// a [`JsonRef`] borrowing from the body where only the entity decoder reads it.
pub struct JsonBody<J = Value> {
    pub value: J,
    pub local_context: Option<Value>,
}

impl<J> JsonBody<J> {
    /// The active context of the body: its own, the Link header's, or the core.
    pub async fn context(&self, state: &AppState) -> Result<ActiveContext, NgsiError> {
        state
            .broker
            .contexts()
            .resolve(self.local_context.as_ref())
            .await
    }
}

/// Whether a request body is JSON-LD (`application/ld+json`) rather than plain JSON
/// (`application/json`, or one of `also_json`); any other Content-Type is refused.
pub fn body_is_json_ld(headers: &HeaderMap, also_json: &[&str]) -> Result<bool, ApiError> {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        });
    match content_type.as_deref() {
        Some("application/json") => Ok(false),
        Some("application/ld+json") => Ok(true),
        Some(other) if also_json.contains(&other) => Ok(false),
        Some(other) => Err(ApiError::UnsupportedMediaType(format!(
            "Content-Type '{other}' is not supported: use application/json or application/ld+json"
        ))),
        None => Err(ApiError::UnsupportedMediaType(
            "a Content-Type header is required: application/json or application/ld+json".into(),
        )),
    }
}

/// Reads a request body up to the configured limit and parses it as JSON.
pub async fn read_body_value(state: &AppState, body: Body) -> Result<Value, ApiError> {
    let bytes = buffer_body(state, body).await?;
    checked_body_value(&bytes, serde_json::from_slice(&bytes))
}

/// The whole body, refused beyond the configured size.
pub async fn buffer_body(state: &AppState, body: Body) -> Result<axum::body::Bytes, ApiError> {
    let limit = state.config.max_body_bytes;
    axum::body::to_bytes(body, limit)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(limit))
}

/// A parsed body, or the problem of a body that is no JSON or holds U+0000. `bytes` is
/// the body `parsed` was read from.
pub fn checked_body_value(
    bytes: &[u8],
    parsed: serde_json::Result<Value>,
) -> Result<Value, ApiError> {
    let value = parsed.map_err(not_json)?;
    // PostgreSQL text and jsonb cannot hold U+0000, so both backends refuse it alike.
    // JSON can only write U+0000 as the escape `\u0000` (a raw control character is
    // malformed), so a body without that text needs no walk.
    let escaped_nul = memchr::memmem::find(bytes, br"\u0000").is_some();
    if let Some(member) = escaped_nul.then(|| nul_member(&value)).flatten() {
        let place = if member.is_empty() {
            "the request body".to_owned()
        } else {
            format!("member '{member}' of the request body")
        };
        return Err(
            NgsiError::bad_request_data(format!("{place} has a NUL character (U+0000)")).into(),
        );
    }
    Ok(value)
}

/// `checked_body_value` for a body parsed into a tree that borrows from it.
pub fn checked_body_tree<'a>(
    bytes: &'a [u8],
    parsed: serde_json::Result<JsonRef<'a>>,
) -> Result<JsonRef<'a>, ApiError> {
    let tree = parsed.map_err(not_json)?;
    if memchr::memmem::find(bytes, br"\u0000").is_some() {
        // Rare enough to parse again: `Value`'s walk names the member at fault.
        checked_body_value(bytes, serde_json::from_slice(bytes))?;
    }
    Ok(tree)
}

fn not_json(e: serde_json::Error) -> ApiError {
    NgsiError::invalid_request(format!(
        "the request body is not valid JSON (line {}, column {}): {e}",
        e.line(),
        e.column()
    ))
    .into()
}

pub async fn read_json_body(
    state: &AppState,
    request: &NgsiRequest,
    headers: &HeaderMap,
    body: Body,
) -> Result<JsonBody, ApiError> {
    let is_json_ld = body_is_json_ld(headers, &[MERGE_PATCH])?;
    let value = read_body_value(state, body).await?;
    json_body(request, is_json_ld, value)
}

/// The media type of a merge-patch body, accepted beside JSON and JSON-LD.
pub const MERGE_PATCH: &str = "application/merge-patch+json";

/// A body with the `@context` its media type says where to find (in the body for
/// JSON-LD, else in the `Link` header), refused where it is in the other place.
pub fn json_body<J: JsonNode>(
    request: &NgsiRequest,
    is_json_ld: bool,
    value: J,
) -> Result<JsonBody<J>, ApiError> {
    let inline = inline_context(&value);
    let local_context = if is_json_ld {
        if request.link_context.is_some() {
            return Err(NgsiError::bad_request_data(
                "with Content-Type application/ld+json the @context goes in the body, not in a Link header",
            )
            .into());
        }
        Some(inline.ok_or_else(|| {
            NgsiError::bad_request_data(
                "a body of type application/ld+json must have an @context member",
            )
        })?)
    } else {
        if inline.is_some() {
            return Err(NgsiError::bad_request_data(
                "a body of type application/json must not have an @context member: send the context in a Link header, or use application/ld+json",
            )
            .into());
        }
        request.link_context.clone().map(Value::String)
    };
    Ok(JsonBody {
        value,
        local_context,
    })
}

/// The `@context` of a body: the object's member, or for an array (batch) the first
/// item's; batch items are expected to share one context.
fn inline_context<J: JsonNode>(value: &J) -> Option<Value> {
    match value.as_array() {
        Some(items) => items.iter().find_map(|i| i.get("@context")),
        None => value.get("@context"),
    }
    .map(J::to_value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation_prefers_quality_and_refuses_the_unknown() {
        assert_eq!(negotiate(None, false).unwrap(), MediaType::Json);
        assert_eq!(
            negotiate(Some("application/ld+json"), false).unwrap(),
            MediaType::JsonLd
        );
        assert_eq!(
            negotiate(Some("application/json;q=0.5, application/ld+json"), false).unwrap(),
            MediaType::JsonLd
        );
        assert_eq!(
            negotiate(Some("application/geo+json"), true).unwrap(),
            MediaType::GeoJson
        );
        assert!(negotiate(Some("application/geo+json"), false).is_err());
        assert!(negotiate(Some("text/html"), false).is_err());
        assert_eq!(negotiate(Some("*/*"), false).unwrap(), MediaType::Json);
    }

    #[test]
    fn link_headers_give_their_context_url() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::LINK,
            HeaderValue::from_static(
                "<https://ex.org/ctx.jsonld>; rel=\"http://www.w3.org/ns/json-ld#context\"; type=\"application/ld+json\"",
            ),
        );
        assert_eq!(
            link_context(&headers).unwrap().as_deref(),
            Some("https://ex.org/ctx.jsonld")
        );
        headers.insert(
            header::LINK,
            HeaderValue::from_static("<>; rel=\"http://www.w3.org/ns/json-ld#context\""),
        );
        assert!(link_context(&headers).is_err());
    }

    #[test]
    fn nul_characters_are_found_in_paths_strings_and_member_names() {
        assert!(refuse_nul_in_path("/entities/urn%3Angsi-ld%3AX%3A%00").is_err());
        assert!(refuse_nul_in_path("/jsonldContexts/..%00").is_err());
        assert!(refuse_nul_in_path("/entities/urn%3Angsi-ld%3AX%3A1").is_ok());
        let body =
            serde_json::json!({"id": "urn:x", "name": {"type": "Property", "value": "a\u{0}b"}});
        assert_eq!(nul_member(&body).as_deref(), Some("name.value"));
        let key = serde_json::json!([{"id": "urn:x"}, {"na\u{0}me": 1}]);
        assert_eq!(nul_member(&key).as_deref(), Some("[1].na\\0me"));
        assert_eq!(nul_member(&serde_json::json!("\u{0}")).as_deref(), Some(""));
        assert_eq!(nul_member(&serde_json::json!({"a": ["b", 1, null]})), None);
        let deep = serde_json::json!({"a": [{"b": 1}, {"c": {"d\"": ["x", "y\u{0}"]}}]});
        assert_eq!(nul_member(&deep).as_deref(), Some("a[1].c.d\\\"[1]"));
    }

    #[test]
    fn a_body_is_refused_for_an_escaped_nul_only() {
        let checked = |body: &[u8]| checked_body_value(body, serde_json::from_slice(body));
        assert!(checked(br#"{"name": "a\u0000b"}"#).is_err());
        assert!(checked(br#"{"na\u0000me": 1}"#).is_err());
        assert!(checked(br#"["\u0000"]"#).is_err());
        // An escaped backslash before `u0000` is no NUL.
        assert!(checked(br#"{"name": "a\\u0000b"}"#).is_ok());
        assert!(checked(br#"{"name": "a\u0001b"}"#).is_ok());
    }

    #[test]
    fn tenant_names_are_checked() {
        assert!(validate_tenant_name("222127").is_ok());
        assert!(validate_tenant_name("urn:ngsi-ld:tenant:x").is_ok());
        assert!(validate_tenant_name("a b").is_err());
        assert!(validate_tenant_name("").is_err());
    }
}
