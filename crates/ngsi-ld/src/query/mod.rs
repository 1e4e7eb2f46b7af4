//! The NGSI-LD query languages as typed syntax trees: the `q` language (clause 4.9),
//! `scopeQ` (clause 4.19), entity type expressions (clause 4.17), `geoQ` (clause 4.10)
//! and the entity query that combines them. Attribute and type names in these trees
//! are as the client wrote them until the broker expands them with the `@context`
//! (see [`EntityQuery::expand_names`]); stores only ever see expanded IRIs.
//!
//! The parsers live in the submodules; each returns a typed error naming the offending
//! character position, so a client learns exactly what was wrong.

pub mod attrs;
pub mod eval;
pub mod geo;
pub mod index;
pub mod q;
pub mod scope;
pub mod types;

/// A `q` expression: terms combined with `;` (and) and `|` (or).
#[derive(Debug, Clone, PartialEq)]
pub enum QExpr {
    And(Vec<QExpr>),
    Or(Vec<QExpr>),
    Term(QTerm),
}

/// One `q` term: an attribute path alone (existence) or compared with a value.
#[derive(Debug, Clone, PartialEq)]
pub struct QTerm {
    pub path: AttrPath,
    pub comparison: Option<(QOp, QValue)>,
}

/// `attr.sub.sub[key][key]`: the attribute, the sub-attribute chain and the path into
/// the attribute's JSON value. `attr` and `sub_attrs` are names to expand; the special
/// names `observedAt`, `createdAt`, `modifiedAt`, `unitCode` and `datasetId` in
/// `sub_attrs` address the attribute's meta-data. `trailing` keys are kept as written.
#[derive(Debug, Clone, PartialEq)]
pub struct AttrPath {
    pub attr: String,
    pub sub_attrs: Vec<String>,
    pub trailing: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QOp {
    Eq,
    Ne,
    Gt,
    Ge,
    Lt,
    Le,
    /// `~=`: the value matches a regular expression.
    Matches,
    /// `!~=`: the value does not match a regular expression.
    NotMatches,
}

/// A value on the right of a `q` comparison.
#[derive(Debug, Clone, PartialEq)]
pub enum QValue {
    Number(f64),
    /// A quoted string, unescaped.
    Text(String),
    Bool(bool),
    /// An unquoted ISO 8601 date-time, date or time, kept in its written form.
    DateTime(String),
    /// An unquoted URI (`urn:ngsi-ld:Vehicle:A1`).
    Uri(String),
    /// `a,b,c`: equal to any of (with `==`) or to none of (with `!=`).
    List(Vec<QValue>),
    /// `low..high`, inclusive at both ends.
    Range(Box<QValue>, Box<QValue>),
    /// The pattern of `~=` and `!~=`, already checked to be a valid regex.
    Regex(String),
}

/// A `scopeQ` expression.
#[derive(Debug, Clone, PartialEq)]
pub enum ScopeExpr {
    And(Vec<ScopeExpr>),
    Or(Vec<ScopeExpr>),
    /// A scope pattern such as `/Madrid/Gardens`, `/Madrid/+` or `/Madrid/#`.
    Pattern(String),
}

/// An entity type expression (`type=Building,(Vehicle;Car)`).
#[derive(Debug, Clone, PartialEq)]
pub enum TypeExpr {
    And(Vec<TypeExpr>),
    Or(Vec<TypeExpr>),
    Type(String),
}

/// The spatial relations of `georel`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum GeoRel {
    Near {
        max_distance: Option<f64>,
        min_distance: Option<f64>,
    },
    Within,
    Contains,
    Intersects,
    Disjoint,
    Equals,
    Overlaps,
}

/// A validated GeoJSON geometry, kept both as GeoJSON (for PostGIS and for echoing
/// back) and as a `geo` geometry (for evaluating relations in Rust).
#[derive(Debug, Clone, PartialEq)]
pub struct Geometry {
    pub geojson: serde_json::Value,
    pub shape: ::geo::Geometry<f64>,
}

/// A `geoQ`: the relation, the reference geometry and the GeoProperty it applies to.
#[derive(Debug, Clone, PartialEq)]
pub struct GeoQuery {
    pub rel: GeoRel,
    pub geometry: Geometry,
    /// The GeoProperty to test; `location` unless `geoproperty` names another.
    pub property: String,
}

/// Everything that selects entities in a query or a purge. Projection (`attrs`,
/// `pick`, `omit`) and rendering are the broker's business, not the store's.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct EntityQuery {
    pub types: Option<TypeExpr>,
    pub ids: Vec<String>,
    /// A regular expression the entity id must match, already checked to compile.
    pub id_pattern: Option<String>,
    /// Only entities having at least one of these attributes (expanded IRIs).
    pub attrs: Vec<String>,
    pub q: Option<QExpr>,
    pub scope_q: Option<ScopeExpr>,
    pub geo_q: Option<GeoQuery>,
    pub limit: usize,
    pub offset: usize,
    /// Whether the total number of matches is wanted (`count=true`).
    pub count: bool,
}

impl EntityQuery {
    /// Expands every type and attribute name with `expand_type` / `expand_attr`
    /// (normally the active `@context`), so stores only see IRIs.
    pub fn expand_names(
        &mut self,
        expand_type: &dyn Fn(&str) -> String,
        expand_attr: &dyn Fn(&str) -> String,
    ) {
        if let Some(types) = &mut self.types {
            types.map_names(expand_type);
        }
        if let Some(q) = &mut self.q {
            q.map_attr_names(expand_attr);
        }
        if let Some(geo) = &mut self.geo_q {
            geo.property = expand_attr(&geo.property);
        }
        for attr in &mut self.attrs {
            *attr = expand_attr(attr);
        }
    }
}

impl TypeExpr {
    pub fn map_names(&mut self, f: &dyn Fn(&str) -> String) {
        match self {
            TypeExpr::And(parts) | TypeExpr::Or(parts) => {
                parts.iter_mut().for_each(|p| p.map_names(f))
            }
            TypeExpr::Type(name) => *name = f(name),
        }
    }

    /// Whether an entity with these (expanded) types satisfies the expression.
    pub fn matches(&self, types: &[String]) -> bool {
        match self {
            TypeExpr::And(parts) => parts.iter().all(|p| p.matches(types)),
            TypeExpr::Or(parts) => parts.iter().any(|p| p.matches(types)),
            TypeExpr::Type(name) => types.iter().any(|t| t == name),
        }
    }
}

/// Meta-data members of an attribute that a `q` path may address instead of a
/// sub-attribute.
pub const ATTRIBUTE_META_MEMBERS: &[&str] = &[
    "observedAt",
    "createdAt",
    "modifiedAt",
    "unitCode",
    "datasetId",
];

impl QExpr {
    /// Expands attribute and sub-attribute names; meta-data members stay as they are.
    pub fn map_attr_names(&mut self, f: &dyn Fn(&str) -> String) {
        match self {
            QExpr::And(parts) | QExpr::Or(parts) => {
                parts.iter_mut().for_each(|p| p.map_attr_names(f))
            }
            QExpr::Term(term) => {
                term.path.attr = f(&term.path.attr);
                for sub in &mut term.path.sub_attrs {
                    if !ATTRIBUTE_META_MEMBERS.contains(&sub.as_str()) {
                        *sub = f(sub);
                    }
                }
            }
        }
    }
}
