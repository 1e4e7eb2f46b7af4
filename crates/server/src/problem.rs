//! The one table that maps every error of the NGSI-LD face to an HTTP status and an
//! `application/problem+json` body (ETSI GS CIM 009 clause 5.5.2 and 6.3.2). Internal
//! errors are logged where they arise and answered without their text.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use ngsi_ld::{NgsiError, ProblemType};
use serde_json::json;

/// The HTTP status for each NGSI-LD problem type.
pub fn status_of(problem: ProblemType) -> StatusCode {
    match problem {
        ProblemType::InvalidRequest => StatusCode::BAD_REQUEST,
        ProblemType::BadRequestData => StatusCode::BAD_REQUEST,
        ProblemType::AlreadyExists => StatusCode::CONFLICT,
        ProblemType::OperationNotSupported => StatusCode::UNPROCESSABLE_ENTITY,
        ProblemType::ResourceNotFound => StatusCode::NOT_FOUND,
        ProblemType::InternalError => StatusCode::INTERNAL_SERVER_ERROR,
        ProblemType::TooComplexQuery => StatusCode::FORBIDDEN,
        ProblemType::TooManyResults => StatusCode::FORBIDDEN,
        ProblemType::LdContextNotAvailable => StatusCode::SERVICE_UNAVAILABLE,
        ProblemType::NoMultiTenantSupport => StatusCode::NOT_IMPLEMENTED,
        ProblemType::NonexistentTenant => StatusCode::NOT_FOUND,
        ProblemType::Conflict => StatusCode::CONFLICT,
    }
}

/// The problem-details document of an error.
pub fn problem_body(error: &NgsiError) -> serde_json::Value {
    json!({
        "type": error.problem.uri(),
        "title": error.problem.title(),
        "status": status_of(error.problem).as_u16(),
        "detail": error.detail,
    })
}

/// An error answered by the NGSI-LD face. Besides the problem types it carries the two
/// HTTP-level refusals the specification names by status only.
#[derive(Debug)]
pub enum ApiError {
    Ngsi(NgsiError),
    /// 406: the Accept header asks for nothing renkei can produce.
    NotAcceptable(String),
    /// 415: the Content-Type is not one the operation takes.
    UnsupportedMediaType(String),
    /// 413: the body is larger than the configured limit.
    PayloadTooLarge(usize),
    /// 405: the resource exists but not with this method.
    MethodNotAllowed,
    /// 401/403: refused by authentication or the policy table.
    Auth(crate::auth::AuthError),
}

impl From<crate::auth::AuthError> for ApiError {
    fn from(error: crate::auth::AuthError) -> Self {
        ApiError::Auth(error)
    }
}

impl From<NgsiError> for ApiError {
    fn from(error: NgsiError) -> Self {
        ApiError::Ngsi(error)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, error) = match self {
            ApiError::Auth(refusal) => return refusal.into_response(),
            ApiError::Ngsi(error) => (status_of(error.problem), error),
            ApiError::NotAcceptable(detail) => (
                StatusCode::NOT_ACCEPTABLE,
                NgsiError::invalid_request(detail),
            ),
            ApiError::UnsupportedMediaType(detail) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                NgsiError::invalid_request(detail),
            ),
            ApiError::PayloadTooLarge(limit) => (
                StatusCode::PAYLOAD_TOO_LARGE,
                NgsiError::bad_request_data(format!(
                    "the request body is larger than {limit} bytes"
                )),
            ),
            ApiError::MethodNotAllowed => (
                StatusCode::METHOD_NOT_ALLOWED,
                NgsiError::invalid_request("this method is not allowed on this resource"),
            ),
        };
        let mut body = problem_body(&error);
        body["status"] = json!(status.as_u16());
        let mut response = (status, body.to_string()).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        response
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_type_has_a_client_or_server_status() {
        let all = [
            ProblemType::InvalidRequest,
            ProblemType::BadRequestData,
            ProblemType::AlreadyExists,
            ProblemType::OperationNotSupported,
            ProblemType::ResourceNotFound,
            ProblemType::InternalError,
            ProblemType::TooComplexQuery,
            ProblemType::TooManyResults,
            ProblemType::LdContextNotAvailable,
            ProblemType::NoMultiTenantSupport,
            ProblemType::NonexistentTenant,
            ProblemType::Conflict,
        ];
        for p in all {
            let status = status_of(p);
            let server_side = matches!(
                p,
                ProblemType::InternalError
                    | ProblemType::LdContextNotAvailable
                    | ProblemType::NoMultiTenantSupport
            );
            assert_eq!(status.is_server_error(), server_side, "{p:?}");
            assert!(p.uri().starts_with("https://uri.etsi.org/ngsi-ld/errors/"));
        }
    }
}
