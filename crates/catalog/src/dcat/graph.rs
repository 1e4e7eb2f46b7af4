//! The small RDF model the DCAT documents are built in before they are written out:
//! IRIs, blank nodes and literals, triples in the order they were added (repeats
//! dropped), and the vocabularies DCAT-AP uses. Predicates are [`Name`]s from a known
//! namespace, so every writer can always give them a prefixed name (RDF/XML cannot
//! write a predicate any other way).

use std::collections::HashSet;
use std::fmt;

use super::DcatError;

/// The vocabularies the catalog writes, each with the prefix the documents use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Namespace {
    Rdf,
    Rdfs,
    Xsd,
    Dcat,
    Dct,
    Foaf,
    Vcard,
    Skos,
    Hydra,
}

impl Namespace {
    /// Every namespace, in the order documents declare them.
    pub const ALL: [Namespace; 9] = [
        Namespace::Rdf,
        Namespace::Rdfs,
        Namespace::Xsd,
        Namespace::Dcat,
        Namespace::Dct,
        Namespace::Foaf,
        Namespace::Vcard,
        Namespace::Skos,
        Namespace::Hydra,
    ];

    pub fn prefix(self) -> &'static str {
        match self {
            Namespace::Rdf => "rdf",
            Namespace::Rdfs => "rdfs",
            Namespace::Xsd => "xsd",
            Namespace::Dcat => "dcat",
            Namespace::Dct => "dct",
            Namespace::Foaf => "foaf",
            Namespace::Vcard => "vcard",
            Namespace::Skos => "skos",
            Namespace::Hydra => "hydra",
        }
    }

    pub fn iri(self) -> &'static str {
        match self {
            Namespace::Rdf => "http://www.w3.org/1999/02/22-rdf-syntax-ns#",
            Namespace::Rdfs => "http://www.w3.org/2000/01/rdf-schema#",
            Namespace::Xsd => "http://www.w3.org/2001/XMLSchema#",
            Namespace::Dcat => "http://www.w3.org/ns/dcat#",
            Namespace::Dct => "http://purl.org/dc/terms/",
            Namespace::Foaf => "http://xmlns.com/foaf/0.1/",
            Namespace::Vcard => "http://www.w3.org/2006/vcard/ns#",
            Namespace::Skos => "http://www.w3.org/2004/02/skos/core#",
            Namespace::Hydra => "http://www.w3.org/ns/hydra/core#",
        }
    }

    /// The namespace and local name of an IRI, when the IRI lies in a known namespace
    /// and the rest is a name every syntax accepts unescaped (letters, digits, `_`
    /// and `-`, not starting with a digit or `-`).
    pub fn split(iri: &str) -> Option<(Namespace, &str)> {
        Namespace::ALL.into_iter().find_map(|ns| {
            let local = iri.strip_prefix(ns.iri())?;
            is_simple_local_name(local).then_some((ns, local))
        })
    }
}

fn is_simple_local_name(local: &str) -> bool {
    let mut chars = local.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// A term of a known vocabulary: a property or a class.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Name {
    pub namespace: Namespace,
    pub local: &'static str,
}

impl Name {
    pub const fn new(namespace: Namespace, local: &'static str) -> Name {
        Name { namespace, local }
    }

    pub fn iri(self) -> Iri {
        Iri(format!("{}{}", self.namespace.iri(), self.local))
    }

    /// `dct:title`.
    pub fn prefixed(self) -> String {
        format!("{}:{}", self.namespace.prefix(), self.local)
    }
}

/// An absolute IRI, safe to write in every syntax: characters IRIs forbid (spaces,
/// `<`, `>`, `"`, `{`, `}`, `|`, `\`, `^`, `` ` ``, controls) are percent-encoded;
/// other non-ASCII characters are kept, as IRIs allow.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Iri(String);

/// The schemes a link in the catalog may use. Anything else (`javascript:`, a
/// relative path, a scheme that reads like one of the documents' prefixes) is not
/// published as a link.
const SCHEMES: &[&str] = &["http", "https", "ftp", "mailto", "urn", "tel"];

impl Iri {
    /// An IRI from a URL as a user or an operator gave it.
    pub fn parse(text: &str) -> Result<Iri, DcatError> {
        let text = text.trim();
        let invalid = || DcatError::InvalidIri(text.to_owned());
        let (scheme, rest) = text.split_once(':').ok_or_else(invalid)?;
        let scheme = scheme.to_ascii_lowercase();
        if !SCHEMES.contains(&scheme.as_str()) || rest.is_empty() {
            return Err(invalid());
        }
        if matches!(scheme.as_str(), "http" | "https" | "ftp") {
            let authority = rest.strip_prefix("//").ok_or_else(invalid)?;
            let host = authority.split(['/', '?', '#']).next().unwrap_or_default();
            if host.is_empty() {
                return Err(invalid());
            }
        }
        let mut iri = String::with_capacity(text.len());
        iri.push_str(&scheme);
        iri.push(':');
        for c in rest.chars() {
            if c.is_control() || c == ' ' || "<>\"{}|\\^`".contains(c) {
                percent_encode_char(c, &mut iri);
            } else {
                iri.push(c);
            }
        }
        Ok(Iri(iri))
    }

    /// One of this crate's own base IRIs, written correctly by hand.
    pub(crate) fn constant(iri: &'static str) -> Iri {
        Iri(iri.to_owned())
    }

    /// This IRI with path segments appended, each percent-encoded (all but RFC 3986's
    /// `pchar`s) so that an id can never add a segment, a query or a fragment of its
    /// own.
    pub fn join(&self, segments: &[&str]) -> Iri {
        let mut iri = self.0.trim_end_matches('/').to_owned();
        for segment in segments {
            iri.push('/');
            for c in segment.chars() {
                if c.is_ascii_alphanumeric() || "-._~!$&'()*+,;=:@".contains(c) {
                    iri.push(c);
                } else {
                    percent_encode_char(c, &mut iri);
                }
            }
        }
        Iri(iri)
    }

    /// This IRI with a query string (keys and values are percent-encoded).
    pub fn with_query(&self, pairs: &[(&str, &str)]) -> Iri {
        let mut iri = self.0.clone();
        for (index, (key, value)) in pairs.iter().enumerate() {
            iri.push(if index == 0 { '?' } else { '&' });
            for (n, part) in [key, value].into_iter().enumerate() {
                if n == 1 {
                    iri.push('=');
                }
                for c in part.chars() {
                    if c.is_ascii_alphanumeric() || "-._~:".contains(c) {
                        iri.push(c);
                    } else {
                        percent_encode_char(c, &mut iri);
                    }
                }
            }
        }
        Iri(iri)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Iri {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

fn percent_encode_char(c: char, out: &mut String) {
    let mut buffer = [0u8; 4];
    for byte in c.encode_utf8(&mut buffer).bytes() {
        out.push_str(&format!("%{byte:02X}"));
    }
}

/// A subject: an IRI or a blank node (numbered within its graph).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Node {
    Iri(Iri),
    Blank(u32),
}

impl From<Iri> for Node {
    fn from(iri: Iri) -> Node {
        Node::Iri(iri)
    }
}

impl From<&Node> for Node {
    fn from(node: &Node) -> Node {
        node.clone()
    }
}

impl From<&Iri> for Node {
    fn from(iri: &Iri) -> Node {
        Node::Iri(iri.clone())
    }
}

/// A literal's text with its language or datatype.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Literal {
    pub value: String,
    pub kind: LiteralKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum LiteralKind {
    /// An `xsd:string`.
    Plain,
    /// An `rdf:langString` with its BCP 47 tag.
    Language(&'static str),
    Typed(Name),
}

impl Literal {
    pub fn plain(value: impl Into<String>) -> Literal {
        Literal {
            value: value.into(),
            kind: LiteralKind::Plain,
        }
    }

    pub fn lang(value: impl Into<String>, language: &'static str) -> Literal {
        Literal {
            value: value.into(),
            kind: LiteralKind::Language(language),
        }
    }

    pub fn typed(value: impl Into<String>, datatype: Name) -> Literal {
        Literal {
            value: value.into(),
            kind: LiteralKind::Typed(datatype),
        }
    }
}

/// An object: a node or a literal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Term {
    Node(Node),
    Literal(Literal),
}

impl From<Node> for Term {
    fn from(node: Node) -> Term {
        Term::Node(node)
    }
}

impl From<Iri> for Term {
    fn from(iri: Iri) -> Term {
        Term::Node(Node::Iri(iri))
    }
}

impl From<&Iri> for Term {
    fn from(iri: &Iri) -> Term {
        Term::Node(Node::Iri(iri.clone()))
    }
}

impl From<Name> for Term {
    fn from(name: Name) -> Term {
        Term::Node(Node::Iri(name.iri()))
    }
}

impl From<Literal> for Term {
    fn from(literal: Literal) -> Term {
        Term::Literal(literal)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Triple {
    pub subject: Node,
    pub predicate: Name,
    pub object: Term,
}

/// An RDF graph: triples in the order they were added, each once.
#[derive(Debug, Clone, Default)]
pub struct Graph {
    triples: Vec<Triple>,
    seen: HashSet<Triple>,
    blank_nodes: u32,
}

/// One subject with its properties, each property with its objects, in the order
/// they were first added: what every writer walks.
#[derive(Debug)]
pub struct Description<'a> {
    pub subject: &'a Node,
    pub properties: Vec<(Name, Vec<&'a Term>)>,
}

impl Description<'_> {
    /// The objects of `rdf:type`.
    pub fn types(&self) -> impl Iterator<Item = &Term> {
        self.properties
            .iter()
            .filter(|(name, _)| *name == rdf::TYPE)
            .flat_map(|(_, objects)| objects.iter().copied())
    }
}

impl Graph {
    pub fn new() -> Graph {
        Graph::default()
    }

    /// Adds a triple (nothing when the graph holds it already).
    pub fn add(&mut self, subject: impl Into<Node>, predicate: Name, object: impl Into<Term>) {
        let triple = Triple {
            subject: subject.into(),
            predicate,
            object: object.into(),
        };
        if self.seen.insert(triple.clone()) {
            self.triples.push(triple);
        }
    }

    /// A blank node not used before in this graph.
    pub fn blank_node(&mut self) -> Node {
        self.blank_nodes += 1;
        Node::Blank(self.blank_nodes)
    }

    pub fn triples(&self) -> &[Triple] {
        &self.triples
    }

    pub fn len(&self) -> usize {
        self.triples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.triples.is_empty()
    }

    /// Whether the graph holds this triple.
    pub fn contains(&self, subject: &Node, predicate: Name, object: &Term) -> bool {
        self.seen.contains(&Triple {
            subject: subject.clone(),
            predicate,
            object: object.clone(),
        })
    }

    /// The objects of one subject's property.
    pub fn objects<'a>(
        &'a self,
        subject: &'a Node,
        predicate: Name,
    ) -> impl Iterator<Item = &'a Term> + 'a {
        self.triples
            .iter()
            .filter(move |t| t.subject == *subject && t.predicate == predicate)
            .map(|t| &t.object)
    }

    /// The subjects with this `rdf:type`.
    pub fn subjects_of_type(&self, class: Name) -> Vec<&Node> {
        let class: Term = class.into();
        self.triples
            .iter()
            .filter(|t| t.predicate == rdf::TYPE && t.object == class)
            .map(|t| &t.subject)
            .collect()
    }

    /// The graph grouped by subject, then by property.
    pub fn descriptions(&self) -> Vec<Description<'_>> {
        let mut descriptions: Vec<Description<'_>> = Vec::new();
        let mut index: std::collections::HashMap<&Node, usize> = Default::default();
        for triple in &self.triples {
            let at = *index.entry(&triple.subject).or_insert_with(|| {
                descriptions.push(Description {
                    subject: &triple.subject,
                    properties: Vec::new(),
                });
                descriptions.len() - 1
            });
            let properties = &mut descriptions[at].properties;
            match properties.iter_mut().find(|(p, _)| *p == triple.predicate) {
                Some((_, objects)) => objects.push(&triple.object),
                None => properties.push((triple.predicate, vec![&triple.object])),
            }
        }
        descriptions
    }

    /// The namespaces the graph's IRIs (subjects, predicates, objects, datatypes)
    /// fall in, in [`Namespace::ALL`] order: the prefixes a document must declare.
    pub fn namespaces(&self) -> Vec<Namespace> {
        let mut used = HashSet::new();
        for triple in &self.triples {
            used.insert(triple.predicate.namespace);
            if let Node::Iri(iri) = &triple.subject {
                if let Some((ns, _)) = Namespace::split(iri.as_str()) {
                    used.insert(ns);
                }
            }
            match &triple.object {
                Term::Node(Node::Iri(iri)) => {
                    if let Some((ns, _)) = Namespace::split(iri.as_str()) {
                        used.insert(ns);
                    }
                }
                Term::Literal(Literal {
                    kind: LiteralKind::Typed(datatype),
                    ..
                }) => {
                    used.insert(datatype.namespace);
                }
                _ => {}
            }
        }
        Namespace::ALL
            .into_iter()
            .filter(|ns| used.contains(ns))
            .collect()
    }
}

macro_rules! vocabulary {
    ($module:ident, $namespace:ident, { $($constant:ident = $local:literal),* $(,)? }) => {
        #[allow(missing_docs)]
        pub mod $module {
            use super::{Name, Namespace};
            $(pub const $constant: Name = Name::new(Namespace::$namespace, $local);)*
        }
    };
}

vocabulary!(rdf, Rdf, { TYPE = "type" });
vocabulary!(rdfs, Rdfs, { LABEL = "label" });
vocabulary!(xsd, Xsd, {
    DATE_TIME = "dateTime",
    NON_NEGATIVE_INTEGER = "nonNegativeInteger",
});
vocabulary!(dcat, Dcat, {
    CATALOG = "Catalog",
    DATASET = "Dataset",
    DISTRIBUTION = "Distribution",
    DATASET_PROPERTY = "dataset",
    DISTRIBUTION_PROPERTY = "distribution",
    KEYWORD = "keyword",
    THEME = "theme",
    THEME_TAXONOMY = "themeTaxonomy",
    LANDING_PAGE = "landingPage",
    CONTACT_POINT = "contactPoint",
    ACCESS_URL = "accessURL",
    DOWNLOAD_URL = "downloadURL",
    MEDIA_TYPE = "mediaType",
    BYTE_SIZE = "byteSize",
    VERSION = "version",
});
vocabulary!(dct, Dct, {
    IDENTIFIER = "identifier",
    TITLE = "title",
    DESCRIPTION = "description",
    PUBLISHER = "publisher",
    CREATOR = "creator",
    SPATIAL = "spatial",
    ISSUED = "issued",
    MODIFIED = "modified",
    LANGUAGE = "language",
    FORMAT = "format",
    LICENSE = "license",
    LICENSE_DOCUMENT = "LicenseDocument",
    LOCATION = "Location",
    MEDIA_TYPE = "MediaType",
    MEDIA_TYPE_OR_EXTENT = "MediaTypeOrExtent",
    LINGUISTIC_SYSTEM = "LinguisticSystem",
});
vocabulary!(foaf, Foaf, {
    AGENT = "Agent",
    ORGANIZATION = "Organization",
    DOCUMENT = "Document",
    NAME = "name",
    MBOX = "mbox",
    HOMEPAGE = "homepage",
    PAGE = "page",
});
vocabulary!(vcard, Vcard, {
    KIND = "Kind",
    FN = "fn",
    HAS_EMAIL = "hasEmail",
});
vocabulary!(skos, Skos, {
    CONCEPT = "Concept",
    CONCEPT_SCHEME = "ConceptScheme",
    PREF_LABEL = "prefLabel",
    IN_SCHEME = "inScheme",
});
vocabulary!(hydra, Hydra, {
    PAGED_COLLECTION = "PagedCollection",
    PARTIAL_COLLECTION_VIEW = "PartialCollectionView",
    TOTAL_ITEMS = "totalItems",
    ITEMS_PER_PAGE = "itemsPerPage",
    FIRST = "first",
    LAST = "last",
    NEXT = "next",
    PREVIOUS = "previous",
    FIRST_PAGE = "firstPage",
    LAST_PAGE = "lastPage",
    NEXT_PAGE = "nextPage",
    PREVIOUS_PAGE = "previousPage",
});
