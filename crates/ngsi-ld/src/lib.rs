//! The NGSI-LD information model (ETSI GS CIM 009) as plain Rust types, the JSON-LD
//! `@context` machinery that turns user-facing terms into IRIs and back, and the
//! query languages (`q`, `scopeQ`, type expressions, `geoQ`) as parsers into typed
//! syntax trees.
//!
//! Architecture invariant: this crate knows nothing about storage or HTTP. It is given
//! JSON values and strings and gives back domain types or typed errors; the server
//! decides how those travel on the wire and the stores decide how they are kept.

pub mod context;
pub mod error;
pub mod geometry;
pub mod json;
pub mod model;
pub mod query;
pub mod registration;
pub mod subscription;
pub mod temporal;
pub mod time;

pub use error::{NgsiError, ProblemType};
