//! The errors of the NGSI-LD API, named by the problem types of ETSI GS CIM 009
//! clause 5.5.2. The HTTP status of each type is decided by the server, not here.

use std::fmt;

/// The problem types defined by NGSI-LD (clause 5.5.2, table 5.5.2-1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ProblemType {
    InvalidRequest,
    BadRequestData,
    AlreadyExists,
    OperationNotSupported,
    ResourceNotFound,
    InternalError,
    TooComplexQuery,
    TooManyResults,
    LdContextNotAvailable,
    NoMultiTenantSupport,
    NonexistentTenant,
    Conflict,
}

impl ProblemType {
    /// The URI that identifies this problem type in a problem-details document.
    pub fn uri(self) -> &'static str {
        match self {
            ProblemType::InvalidRequest => "https://uri.etsi.org/ngsi-ld/errors/InvalidRequest",
            ProblemType::BadRequestData => "https://uri.etsi.org/ngsi-ld/errors/BadRequestData",
            ProblemType::AlreadyExists => "https://uri.etsi.org/ngsi-ld/errors/AlreadyExists",
            ProblemType::OperationNotSupported => {
                "https://uri.etsi.org/ngsi-ld/errors/OperationNotSupported"
            }
            ProblemType::ResourceNotFound => "https://uri.etsi.org/ngsi-ld/errors/ResourceNotFound",
            ProblemType::InternalError => "https://uri.etsi.org/ngsi-ld/errors/InternalError",
            ProblemType::TooComplexQuery => "https://uri.etsi.org/ngsi-ld/errors/TooComplexQuery",
            ProblemType::TooManyResults => "https://uri.etsi.org/ngsi-ld/errors/TooManyResults",
            ProblemType::LdContextNotAvailable => {
                "https://uri.etsi.org/ngsi-ld/errors/LdContextNotAvailable"
            }
            ProblemType::NoMultiTenantSupport => {
                "https://uri.etsi.org/ngsi-ld/errors/NoMultiTenantSupport"
            }
            ProblemType::NonexistentTenant => {
                "https://uri.etsi.org/ngsi-ld/errors/NonexistentTenant"
            }
            ProblemType::Conflict => "https://uri.etsi.org/ngsi-ld/errors/Conflict",
        }
    }

    /// A short human title, used as the problem document's `title`.
    pub fn title(self) -> &'static str {
        match self {
            ProblemType::InvalidRequest => "Invalid request",
            ProblemType::BadRequestData => "Bad request data",
            ProblemType::AlreadyExists => "Already exists",
            ProblemType::OperationNotSupported => "Operation not supported",
            ProblemType::ResourceNotFound => "Resource not found",
            ProblemType::InternalError => "Internal error",
            ProblemType::TooComplexQuery => "Too complex query",
            ProblemType::TooManyResults => "Too many results",
            ProblemType::LdContextNotAvailable => "LD context not available",
            ProblemType::NoMultiTenantSupport => "No multi-tenant support",
            ProblemType::NonexistentTenant => "Nonexistent tenant",
            ProblemType::Conflict => "Conflict",
        }
    }
}

/// An NGSI-LD API error: a problem type and a detail naming what was wrong and where
/// (the attribute, the query parameter, the character offset).
#[derive(Debug, Clone, PartialEq)]
pub struct NgsiError {
    pub problem: ProblemType,
    pub detail: String,
}

impl NgsiError {
    pub fn new(problem: ProblemType, detail: impl Into<String>) -> Self {
        NgsiError {
            problem,
            detail: detail.into(),
        }
    }
    pub fn bad_request_data(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::BadRequestData, detail)
    }
    pub fn invalid_request(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::InvalidRequest, detail)
    }
    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::ResourceNotFound, detail)
    }
    pub fn already_exists(detail: impl Into<String>) -> Self {
        Self::new(ProblemType::AlreadyExists, detail)
    }
}

impl fmt::Display for NgsiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.problem.title(), self.detail)
    }
}

impl std::error::Error for NgsiError {}
