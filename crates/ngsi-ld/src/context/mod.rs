//! JSON-LD `@context` processing as NGSI-LD needs it (ETSI GS CIM 009 clause 5.5.7 and
//! JSON-LD 1.1 "Context Processing" and "IRI Expansion/Compaction"): a request's context
//! (a URL, an object, or an array of those) becomes an [`ActiveContext`] that expands
//! terms to IRIs and compacts IRIs back to terms.
//!
//! The core context is always applied last, so its terms cannot be redefined by users
//! (it is `@protected`). Remote documents are not fetched here: processing asks a
//! [`ContextSource`] for each URL and stops with [`ContextError::Unavailable`] when it
//! does not have one, so the caller (the broker) can fetch it, with its time-outs and
//! cache, and try again. That keeps this crate free of I/O.
//!
//! Deliberately left out, because NGSI-LD payloads never need them: scoped contexts,
//! `@reverse`, `@language`/`@direction` defaults and `@base`.

pub mod codec;
pub use codec::{
    check_iri, decode_attribute, decode_attributes, decode_entity, decode_scopes, decode_types,
    encode_entity, encode_feature_collection, encode_geojson_feature, format_time,
};

use crate::NgsiError;
use serde_json::{Map, Value};
use std::sync::{Arc, OnceLock};

/// The core context document compiled into the binary (V1.9, a superset of V1.8).
pub const CORE_CONTEXT_TEXT: &str = include_str!("../../contexts/ngsi-ld-core-context-v1.9.jsonld");

/// The URL clients use for the core context of the specification renkei implements.
pub const CORE_CONTEXT_URL: &str =
    "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.8.jsonld";

/// How deeply contexts may include other contexts before we call it a loop.
const MAX_NESTING: usize = 16;

/// Whether a URL names a version of the ETSI core context, which renkei never fetches.
pub fn is_core_context_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://uri.etsi.org/ngsi-ld/")
        .or_else(|| url.strip_prefix("http://uri.etsi.org/ngsi-ld/"))
    else {
        return false;
    };
    let file = rest.strip_prefix("v1/").unwrap_or(rest);
    let Some(version) = file
        .strip_prefix("ngsi-ld-core-context")
        .and_then(|v| v.strip_suffix(".jsonld"))
    else {
        return false;
    };
    // Only versions ETSI has published: a made-up one must fail like any missing URL.
    version.is_empty()
        || version.strip_prefix("-v1.").is_some_and(|minor| {
            matches!(
                minor,
                "0" | "1" | "2" | "3" | "4" | "5" | "6" | "7" | "8" | "9"
            )
        })
}

/// The core context document, parsed once.
pub fn core_context_document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        serde_json::from_str(CORE_CONTEXT_TEXT)
            .unwrap_or_else(|e| panic!("built-in core context is not JSON: {e}"))
    })
}

/// Where processing finds the documents of remote contexts it meets.
pub trait ContextSource {
    fn get(&self, url: &str) -> Option<Arc<Value>>;
}

/// A source with no documents: only inline contexts and the core context resolve.
pub struct NoRemoteContexts;

impl ContextSource for NoRemoteContexts {
    fn get(&self, _url: &str) -> Option<Arc<Value>> {
        None
    }
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ContextError {
    /// The context refers to a document the source does not have (yet).
    #[error("@context {0} is not available")]
    Unavailable(String),
    /// The context is not a valid JSON-LD context.
    #[error("invalid @context: {0}")]
    Invalid(String),
}

impl From<ContextError> for NgsiError {
    fn from(err: ContextError) -> Self {
        match err {
            ContextError::Unavailable(url) => NgsiError::new(
                crate::ProblemType::LdContextNotAvailable,
                format!("@context {url} could not be retrieved"),
            ),
            ContextError::Invalid(why) => {
                NgsiError::bad_request_data(format!("invalid @context: {why}"))
            }
        }
    }
}

/// Terms (or IRIs) to what they stand for. Every attribute name of every request is
/// looked up here, so the map hashes with foldhash (randomly seeded per process)
/// rather than SipHash, which cost a create more than the lookup itself.
type TermMap<V> = foldhash::HashMap<String, V>;

/// One term of a context.
#[derive(Debug, Clone, PartialEq)]
struct TermDefinition {
    /// The IRI (or keyword) the term stands for; `None` when the context maps it to
    /// null, which makes the term mean nothing.
    iri: Option<String>,
    /// Whether the term may be used as the prefix of a compact IRI (`ngsi-ld:foo`).
    prefix: bool,
}

/// Term definitions and the `@vocab` being built while a context is processed.
#[derive(Debug, Clone, Default)]
struct Definitions {
    terms: TermMap<TermDefinition>,
    vocab: Option<String>,
}

/// A processed `@context`: expands terms to IRIs and compacts IRIs back to terms.
/// Cheap to clone.
#[derive(Debug, Clone)]
pub struct ActiveContext(Arc<Inner>);

#[derive(Debug)]
struct Inner {
    definitions: Definitions,
    /// IRI to the term that compacts it (the shortest, then the least).
    inverse: TermMap<String>,
    /// Prefix terms, as (IRI, term), for compact IRIs.
    prefixes: Vec<(String, String)>,
}

impl ActiveContext {
    /// The core context alone: what a request without any `@context` uses.
    pub fn core() -> ActiveContext {
        static CORE: OnceLock<ActiveContext> = OnceLock::new();
        CORE.get_or_init(|| ActiveContext::finish(core_definitions().clone()))
            .clone()
    }

    /// Processes a request's context (a URL, an object or an array), then applies the
    /// core context over it.
    pub fn process(
        local: &Value,
        source: &dyn ContextSource,
    ) -> Result<ActiveContext, ContextError> {
        let mut definitions = Definitions::default();
        let mut stack = Vec::new();
        process_into(&mut definitions, local, source, &mut stack)?;
        let core = core_definitions();
        definitions
            .terms
            .extend(core.terms.iter().map(|(k, v)| (k.clone(), v.clone())));
        definitions.vocab = core.vocab.clone();
        Ok(ActiveContext::finish(definitions))
    }

    fn finish(definitions: Definitions) -> ActiveContext {
        let mut inverse: TermMap<String> = TermMap::default();
        let mut prefixes = Vec::new();
        for (term, definition) in &definitions.terms {
            let Some(iri) = &definition.iri else { continue };
            if iri.starts_with('@') {
                continue;
            }
            let better = match inverse.get(iri) {
                None => true,
                Some(current) => (term.len(), term) < (current.len(), current),
            };
            if better {
                inverse.insert(iri.clone(), term.clone());
            }
            if definition.prefix {
                prefixes.push((iri.clone(), term.clone()));
            }
        }
        prefixes.sort();
        ActiveContext(Arc::new(Inner {
            definitions,
            inverse,
            prefixes,
        }))
    }

    /// Expands a term, compact IRI or IRI (JSON-LD IRI Expansion). With `vocab`, terms
    /// and relative names expand against the context (`@vocab`: the NGSI-LD default
    /// context); without it (for identifiers), only compact IRIs expand.
    pub fn expand_iri(&self, value: &str, vocab: bool) -> String {
        let definitions = &self.0.definitions;
        if value.starts_with('@') {
            return value.to_owned();
        }
        if vocab {
            if let Some(TermDefinition { iri: Some(iri), .. }) = definitions.terms.get(value) {
                return iri.clone();
            }
        }
        if let Some(expanded) = expand_compact_iri(value, &definitions.terms) {
            return expanded;
        }
        if value.contains(':') {
            return value.to_owned();
        }
        match (&definitions.vocab, vocab) {
            (Some(base), true) => [base.as_str(), value].concat(),
            _ => value.to_owned(),
        }
    }

    /// Compacts an IRI to the term that stands for it, else a compact IRI with a
    /// prefix, else a name relative to `@vocab`, else the IRI itself.
    pub fn compact_iri(&self, iri: &str, vocab: bool) -> String {
        let inner = &self.0;
        if vocab {
            if let Some(term) = inner.inverse.get(iri) {
                return term.clone();
            }
            if let Some(base) = &inner.definitions.vocab {
                if let Some(rest) = iri.strip_prefix(base.as_str()) {
                    if !rest.is_empty()
                        && !rest.contains(':')
                        && !inner.definitions.terms.contains_key(rest)
                    {
                        return rest.to_owned();
                    }
                }
            }
        }
        let mut best: Option<String> = None;
        for (prefix_iri, term) in &inner.prefixes {
            if let Some(suffix) = iri.strip_prefix(prefix_iri.as_str()) {
                if suffix.is_empty() || suffix.starts_with("//") {
                    continue;
                }
                let candidate = format!("{term}:{suffix}");
                if best
                    .as_ref()
                    .is_none_or(|b| (candidate.len(), &candidate) < (b.len(), b))
                {
                    best = Some(candidate);
                }
            }
        }
        best.unwrap_or_else(|| iri.to_owned())
    }

    /// Whether the term is defined by the context (user or core).
    pub fn defines(&self, term: &str) -> bool {
        self.0.definitions.terms.contains_key(term)
    }
}

/// The processed core context's definitions, computed once.
fn core_definitions() -> &'static Definitions {
    static CORE: OnceLock<Definitions> = OnceLock::new();
    CORE.get_or_init(|| {
        let mut definitions = Definitions::default();
        let context = core_context_document()
            .get("@context")
            .unwrap_or_else(|| panic!("built-in core context has no @context"));
        process_into(
            &mut definitions,
            context,
            &NoRemoteContexts,
            &mut Vec::new(),
        )
        .unwrap_or_else(|e| panic!("built-in core context does not process: {e}"));
        definitions
    })
}

/// `prefix:suffix` with a defined prefix term, expanded; `None` if `value` is not such.
fn expand_compact_iri(value: &str, terms: &TermMap<TermDefinition>) -> Option<String> {
    let (prefix, suffix) = value.split_once(':')?;
    if prefix == "_" || suffix.starts_with("//") {
        return None;
    }
    match terms.get(prefix) {
        Some(TermDefinition { iri: Some(iri), .. }) if !iri.starts_with('@') => {
            Some([iri.as_str(), suffix].concat())
        }
        _ => None,
    }
}

fn process_into(
    definitions: &mut Definitions,
    local: &Value,
    source: &dyn ContextSource,
    stack: &mut Vec<String>,
) -> Result<(), ContextError> {
    match local {
        Value::Null => {
            *definitions = Definitions::default();
            Ok(())
        }
        Value::String(url) => {
            if is_core_context_url(url) {
                // Applied last anyway; processing it in the middle would change nothing.
                return Ok(());
            }
            let document = remote_context(url, source, stack)?;
            stack.push(url.clone());
            let result = process_into(definitions, &document, source, stack);
            stack.pop();
            result
        }
        Value::Array(items) => items
            .iter()
            .try_for_each(|item| process_into(definitions, item, source, stack)),
        Value::Object(map) => define_all(definitions, map, source, stack),
        other => Err(ContextError::Invalid(format!(
            "a context must be a URL, an object or an array, not {other}"
        ))),
    }
}

/// The `@context` member of the remote document at `url`.
fn remote_context(
    url: &str,
    source: &dyn ContextSource,
    stack: &[String],
) -> Result<Value, ContextError> {
    if stack.iter().any(|seen| seen == url) {
        return Err(ContextError::Invalid(format!(
            "context {url} includes itself"
        )));
    }
    if stack.len() >= MAX_NESTING {
        return Err(ContextError::Invalid(format!(
            "contexts are nested more than {MAX_NESTING} deep"
        )));
    }
    let document = source
        .get(url)
        .ok_or_else(|| ContextError::Unavailable(url.to_owned()))?;
    document.get("@context").cloned().ok_or_else(|| {
        ContextError::Invalid(format!("the document at {url} has no @context member"))
    })
}

fn define_all(
    definitions: &mut Definitions,
    map: &Map<String, Value>,
    source: &dyn ContextSource,
    stack: &[String],
) -> Result<(), ContextError> {
    let imported;
    let map = match map.get("@import") {
        None => map,
        Some(Value::String(url)) => {
            let Value::Object(mut merged) = remote_context(url, source, stack)? else {
                return Err(ContextError::Invalid(format!(
                    "@import {url} is not a context object"
                )));
            };
            merged.extend(
                map.iter()
                    .filter(|(k, _)| *k != "@import")
                    .map(|(k, v)| (k.clone(), v.clone())),
            );
            imported = merged;
            &imported
        }
        Some(other) => {
            return Err(ContextError::Invalid(format!(
                "@import must be a URL, not {other}"
            )))
        }
    };
    if let Some(version) = map.get("@version") {
        if version.as_f64() != Some(1.1) {
            return Err(ContextError::Invalid(format!(
                "@version must be 1.1, not {version}"
            )));
        }
    }
    if let Some(vocab) = map.get("@vocab") {
        definitions.vocab = match vocab {
            Value::Null => None,
            Value::String(v) => {
                let mut builder = Builder {
                    definitions,
                    map,
                    defining: Vec::new(),
                };
                Some(checked_mapping("@vocab", builder.expand(v)?)?)
            }
            other => {
                return Err(ContextError::Invalid(format!(
                    "@vocab must be an IRI, not {other}"
                )))
            }
        };
    }
    let mut builder = Builder {
        definitions,
        map,
        defining: Vec::new(),
    };
    for term in map.keys() {
        if !term.starts_with('@') {
            builder.define(term)?;
        }
    }
    Ok(())
}

/// Defines the terms of one context object, each after the terms its IRI depends on
/// (JSON-LD's "Create Term Definition" with its `defined` map).
struct Builder<'a> {
    definitions: &'a mut Definitions,
    map: &'a Map<String, Value>,
    /// Terms being defined, to detect cycles.
    defining: Vec<String>,
}

impl Builder<'_> {
    fn define(&mut self, term: &str) -> Result<(), ContextError> {
        if self.defining.iter().any(|t| t == term) {
            return Err(ContextError::Invalid(format!(
                "the definition of term '{term}' is cyclic"
            )));
        }
        let Some(value) = self.map.get(term) else {
            return Ok(());
        };
        if term.is_empty() {
            return Err(ContextError::Invalid("a term must not be empty".into()));
        }
        self.defining.push(term.to_owned());
        let result = self.create(term, value);
        self.defining.pop();
        let definition = result?;
        self.definitions.terms.insert(term.to_owned(), definition);
        Ok(())
    }

    fn create(&mut self, term: &str, value: &Value) -> Result<TermDefinition, ContextError> {
        let (id, simple, explicit_prefix) = match value {
            Value::Null => {
                return Ok(TermDefinition {
                    iri: None,
                    prefix: false,
                })
            }
            Value::String(id) => (Some(Value::String(id.clone())), true, None),
            Value::Object(def) => {
                if let Some(container) = def.get("@container") {
                    check_container(term, container)?;
                }
                let prefix = match def.get("@prefix") {
                    None => None,
                    Some(Value::Bool(b)) => Some(*b),
                    Some(other) => {
                        return Err(ContextError::Invalid(format!(
                            "@prefix of term '{term}' must be true or false, not {other}"
                        )))
                    }
                };
                (def.get("@id").cloned(), false, prefix)
            }
            other => {
                return Err(ContextError::Invalid(format!(
                    "the definition of term '{term}' must be an IRI, an object or null, not {other}"
                )))
            }
        };
        let iri = match id {
            Some(Value::Null) => None,
            Some(Value::String(id)) if id.starts_with('@') => Some(id),
            Some(Value::String(id)) => Some(self.expand(&id)?),
            Some(other) => {
                return Err(ContextError::Invalid(format!(
                    "@id of term '{term}' must be an IRI, not {other}"
                )))
            }
            None if term.contains(':') => Some(self.expand(term)?),
            None => match &self.definitions.vocab {
                Some(vocab) => Some(format!("{vocab}{term}")),
                None => {
                    return Err(ContextError::Invalid(format!(
                        "term '{term}' has no @id and the context has no @vocab"
                    )))
                }
            },
        };
        let iri = iri
            .map(|iri| checked_mapping(format_args!("term '{term}'"), iri))
            .transpose()?;
        let ends_with_delimiter = iri
            .as_deref()
            .is_some_and(|i| i.ends_with(['/', '#', ':', '?', '[', ']', '@']));
        Ok(TermDefinition {
            prefix: explicit_prefix.unwrap_or(simple && ends_with_delimiter && !term.contains(':')),
            iri,
        })
    }

    /// IRI expansion while defining: terms of the same object are defined on demand.
    fn expand(&mut self, value: &str) -> Result<String, ContextError> {
        if value.starts_with('@') {
            return Ok(value.to_owned());
        }
        if self.map.contains_key(value) && !self.definitions.terms.contains_key(value) {
            self.define(value)?;
        }
        if let Some(TermDefinition { iri: Some(iri), .. }) = self.definitions.terms.get(value) {
            return Ok(iri.clone());
        }
        if let Some((prefix, suffix)) = value.split_once(':') {
            if prefix != "_"
                && !suffix.starts_with("//")
                && self.map.contains_key(prefix)
                && !self.definitions.terms.contains_key(prefix)
            {
                self.define(prefix)?;
            }
            return Ok(expand_compact_iri(value, &self.definitions.terms)
                .unwrap_or_else(|| value.to_owned()));
        }
        Ok(match &self.definitions.vocab {
            Some(vocab) => format!("{vocab}{value}"),
            None => value.to_owned(),
        })
    }
}

/// Refuses an IRI a context maps a term (or `@vocab`) to if it holds a control
/// character: no IRI does (RFC 3987), and stores rely on no expanded attribute name
/// beginning with one (see `store::doc`). Checked once per context processed, so no
/// expansion of a name needs to check again.
fn checked_mapping(what: impl std::fmt::Display, iri: String) -> Result<String, ContextError> {
    if iri.chars().any(char::is_control) {
        return Err(ContextError::Invalid(format!(
            "{what} maps to '{}', which has a control character",
            iri.escape_debug()
        )));
    }
    Ok(iri)
}

fn check_container(term: &str, container: &Value) -> Result<(), ContextError> {
    const KNOWN: &[&str] = &[
        "@list",
        "@set",
        "@index",
        "@language",
        "@id",
        "@type",
        "@graph",
    ];
    let ok = match container {
        Value::Null => true,
        Value::String(c) => KNOWN.contains(&c.as_str()),
        Value::Array(cs) => cs
            .iter()
            .all(|c| c.as_str().is_some_and(|c| KNOWN.contains(&c))),
        _ => false,
    };
    if ok {
        Ok(())
    } else {
        Err(ContextError::Invalid(format!(
            "@container of term '{term}' is not valid: {container}"
        )))
    }
}

/// How entities are represented in answers (clause 4.5: normalized, concise,
/// simplified a.k.a. keyValues).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Normalized,
    Concise,
    KeyValues,
}

/// Everything that shapes the rendering of an entity besides the context.
#[derive(Debug, Clone, PartialEq)]
pub struct RenderOptions {
    pub format: Format,
    /// Include `createdAt` and `modifiedAt` (`options=sysAttrs`).
    pub sys_attrs: bool,
    /// `lang`: LanguageProperties are shown as Properties in this language.
    pub lang: Option<String>,
}

impl Default for RenderOptions {
    fn default() -> Self {
        RenderOptions {
            format: Format::Normalized,
            sys_attrs: false,
            lang: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    struct Docs(HashMap<String, Arc<Value>>);
    impl ContextSource for Docs {
        fn get(&self, url: &str) -> Option<Arc<Value>> {
            self.0.get(url).cloned()
        }
    }

    #[test]
    fn the_core_context_expands_and_compacts_its_terms() {
        let ctx = ActiveContext::core();
        assert_eq!(
            ctx.expand_iri("location", true),
            "https://uri.etsi.org/ngsi-ld/location"
        );
        assert_eq!(
            ctx.compact_iri("https://uri.etsi.org/ngsi-ld/location", true),
            "location"
        );
        assert_eq!(
            ctx.expand_iri("temperature", true),
            "https://uri.etsi.org/ngsi-ld/default-context/temperature"
        );
        assert_eq!(
            ctx.compact_iri(
                "https://uri.etsi.org/ngsi-ld/default-context/temperature",
                true
            ),
            "temperature"
        );
        assert_eq!(
            ctx.expand_iri("urn:ngsi-ld:Car:1", false),
            "urn:ngsi-ld:Car:1"
        );
        assert_eq!(
            ctx.expand_iri("https://example.org/a.b", true),
            "https://example.org/a.b"
        );
        assert_eq!(
            ctx.expand_iri("ngsi-ld:foo", true),
            "https://uri.etsi.org/ngsi-ld/foo"
        );
    }

    #[test]
    fn user_terms_prefixes_and_the_protected_core() {
        let local = json!({
            "schema": "https://schema.org/",
            "name": "schema:name",
            "Shelter": {"@id": "https://example.jp/Shelter"},
            "location": "https://example.jp/notTheCoreLocation",
            "ex": {"@id": "https://ex.org/", "@prefix": true}
        });
        let ctx = ActiveContext::process(&local, &NoRemoteContexts).unwrap();
        assert_eq!(ctx.expand_iri("name", true), "https://schema.org/name");
        assert_eq!(ctx.compact_iri("https://schema.org/name", true), "name");
        assert_eq!(
            ctx.compact_iri("https://schema.org/address", true),
            "schema:address"
        );
        assert_eq!(ctx.compact_iri("https://ex.org/x", true), "ex:x");
        assert_eq!(
            ctx.expand_iri("Shelter", true),
            "https://example.jp/Shelter"
        );
        // The core context is applied last and wins.
        assert_eq!(
            ctx.expand_iri("location", true),
            "https://uri.etsi.org/ngsi-ld/location"
        );
    }

    /// A term or `@vocab` mapped to an IRI with a control character is refused, by
    /// name, wherever in the IRI it is: stores rely on no expanded attribute name
    /// beginning with one (`store::doc`), and no name can expand to one once every
    /// mapping is free of them.
    #[test]
    fn mappings_to_iris_with_control_characters_are_refused() {
        for (local, named) in [
            (json!({"capacity": "\u{1}capacity"}), "term 'capacity'"),
            (
                json!({"reliability": {"@id": "\u{2}reliability"}}),
                "term 'reliability'",
            ),
            (json!({"r": "https://ex.org/r\u{7f}"}), "term 'r'"),
            (json!({"ex": "\u{1}", "name": "ex:name"}), "term 'ex'"),
            (json!({"@vocab": "\u{1}"}), "@vocab"),
        ] {
            let Err(ContextError::Invalid(why)) = ActiveContext::process(&local, &NoRemoteContexts)
            else {
                panic!("{local} was accepted");
            };
            assert!(why.starts_with(named), "{local}: {why}");
        }
        let fine = json!({"capacity": "https://ex.org/capacity", "@vocab": "https://ex.org/"});
        assert!(ActiveContext::process(&fine, &NoRemoteContexts).is_ok());
    }

    #[test]
    fn remote_contexts_come_from_the_source_or_are_reported_missing() {
        let url = "https://example.jp/ctx.jsonld";
        let err = ActiveContext::process(&json!(url), &NoRemoteContexts).unwrap_err();
        assert_eq!(err, ContextError::Unavailable(url.into()));
        let docs = Docs(HashMap::from([(
            url.to_owned(),
            Arc::new(json!({"@context": {"river": "https://example.jp/River"}})),
        )]));
        let ctx = ActiveContext::process(&json!([url, CORE_CONTEXT_URL]), &docs).unwrap();
        assert_eq!(ctx.expand_iri("river", true), "https://example.jp/River");
    }

    #[test]
    fn bad_contexts_are_refused_with_the_reason() {
        for (bad, needle) in [
            (json!(42), "must be a URL"),
            (json!({"a": 5}), "term 'a'"),
            (json!({"a": "b:x", "b": "a:y"}), "cyclic"),
            (json!({"@version": 1.0}), "@version"),
            (
                json!({"a": {"@id": "x:y", "@container": "@bogus"}}),
                "@container",
            ),
        ] {
            let err = ActiveContext::process(&bad, &NoRemoteContexts)
                .unwrap_err()
                .to_string();
            assert!(err.contains(needle), "{bad}: {err}");
        }
        let url = "https://example.jp/self.jsonld";
        let docs = Docs(HashMap::from([(
            url.to_owned(),
            Arc::new(json!({"@context": url})),
        )]));
        let err = ActiveContext::process(&json!(url), &docs)
            .unwrap_err()
            .to_string();
        assert!(err.contains("includes itself"), "{err}");
    }

    #[test]
    fn core_urls_of_every_version_are_recognised() {
        assert!(is_core_context_url(CORE_CONTEXT_URL));
        assert!(is_core_context_url(
            "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context.jsonld"
        ));
        assert!(is_core_context_url(
            "https://uri.etsi.org/ngsi-ld/v1/ngsi-ld-core-context-v1.9.jsonld"
        ));
        assert!(!is_core_context_url(
            "https://example.org/ngsi-ld-core-context.jsonld"
        ));
    }
}
