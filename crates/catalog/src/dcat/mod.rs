//! The catalog's metadata as linked data: DCAT in the shapes of DCAT-AP 3, served as
//! `/catalog.{jsonld,ttl,xml}` (paged) and `/dataset/{id}.{jsonld,ttl,xml}`. A page of
//! the catalog or one dataset is first built as an RDF [`Graph`], then written as
//! JSON-LD, Turtle or RDF/XML from that one graph, so the three documents always say
//! the same thing. Only open datasets (public and active) are ever described.
//!
//! The IRIs follow CKAN's ckanext-dcat, so harvesters that know CKAN find what they
//! expect: the catalog is `<base>/catalog`, a dataset `<base>/dataset/<id>`, a
//! distribution `<base>/dataset/<id>/resource/<resource id>`, an organisation
//! `<base>/organization/<code>`, a category `<base>/group/<name>` in the scheme
//! `<base>/group`. Paging follows ckanext-dcat too: a page node that is both a
//! `hydra:PagedCollection` (what ckanext-dcat writes and reads) and a
//! `hydra:PartialCollectionView` (current Hydra), with `hydra:totalItems`,
//! `hydra:itemsPerPage` and first/last/next/previous links in both Hydra spellings.
//!
//! A dataset's `dct:spatial` is its municipality as the national statistics LOD names
//! it: `http://data.e-stat.go.jp/lod/sac/C` + the first five digits of the
//! 全国地方公共団体コード (the standard area code; the sixth digit is a check digit),
//! the form e-Stat's 統計LOD and the IMI tools use.
//!
//! DCAT-AP's SHACL shapes check the class of every linked node (`sh:class`) and are
//! run without vocabulary knowledge, so each linked node says what it is here: the
//! publisher is a `foaf:Agent`, a landing page a `foaf:Document`, a licence a
//! `dct:LicenseDocument`, a format a `dct:MediaTypeOrExtent`, and so on.

mod build;
mod formats;
pub mod graph;
mod jsonld;
mod rdfxml;
mod turtle;

use chrono::{DateTime, Utc};

use crate::ckan::Organization;
pub use build::{catalog_graph, dataset_graph, spatial_iri};
pub use graph::{Graph, Iri, Literal, LiteralKind, Name, Namespace, Node, Term, Triple};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DcatError {
    #[error("not an absolute IRI with a known scheme: {0:?}")]
    InvalidIri(String),
    /// The dataset is private, a draft or deleted: it has no public description.
    #[error("dataset {id} is not open")]
    NotOpen { id: String },
}

/// What the platform says of its catalog as a whole.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogInfo {
    /// The site's public URL (`https://opendata.pref.example.lg.jp`), under which every
    /// IRI of the catalog is minted.
    pub base_url: Iri,
    pub title_ja: String,
    pub title_en: String,
    pub description_ja: String,
    pub description_en: String,
    /// Who runs the catalog: the prefecture (or whoever operates the platform).
    pub publisher: Organization,
    /// When anything in the catalog last changed.
    pub modified: DateTime<Utc>,
}

/// Which page of the catalog a document holds, and what its links carry over.
#[derive(Debug, Clone, PartialEq)]
pub struct Page {
    /// 1-based.
    pub number: u64,
    /// Datasets per page.
    pub size: u64,
    /// Open datasets in the whole (filtered) catalog.
    pub total: u64,
    /// The `modified_since` filter of the request, repeated in every link.
    pub modified_since: Option<DateTime<Utc>>,
    /// The serialisation the links point to (the one being served).
    pub format: Format,
}

impl Page {
    /// The number of the last page (1 for an empty catalog).
    pub fn last(&self) -> u64 {
        self.total.div_ceil(self.size.max(1)).max(1)
    }
}

/// The three serialisations.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    JsonLd,
    Turtle,
    RdfXml,
}

impl Format {
    /// The format a path's extension asks for: `jsonld`, `ttl`, `xml` or `rdf`.
    pub fn from_extension(extension: &str) -> Option<Format> {
        match extension.to_ascii_lowercase().as_str() {
            "jsonld" => Some(Format::JsonLd),
            "ttl" => Some(Format::Turtle),
            "xml" | "rdf" => Some(Format::RdfXml),
            _ => None,
        }
    }

    /// The extension this crate writes in links.
    pub fn extension(self) -> &'static str {
        match self {
            Format::JsonLd => "jsonld",
            Format::Turtle => "ttl",
            Format::RdfXml => "xml",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Format::JsonLd => "application/ld+json",
            Format::Turtle => "text/turtle",
            Format::RdfXml => "application/rdf+xml",
        }
    }
}

impl Graph {
    /// The graph as compacted JSON-LD.
    pub fn to_jsonld(&self) -> serde_json::Value {
        jsonld::write(self)
    }

    pub fn to_turtle(&self) -> String {
        turtle::write(self)
    }

    pub fn to_rdfxml(&self) -> String {
        rdfxml::write(self)
    }

    /// The document in a format, as served (JSON-LD pretty-printed).
    pub fn serialize(&self, format: Format) -> String {
        match format {
            Format::JsonLd => format!("{:#}\n", self.to_jsonld()),
            Format::Turtle => self.to_turtle(),
            Format::RdfXml => self.to_rdfxml(),
        }
    }
}

#[cfg(test)]
mod tests;
