//! What a store indexes so that it can narrow a query with its own indexes before the
//! evaluator ([`super::eval::Matcher`]) decides: the comparable values of every
//! attribute ([`index_entries`]), the bounding box of a geometry ([`BoundingBox`]),
//! and the conditions on them that a `q` or `geoQ` implies ([`q_prefilter`],
//! [`geo_prefilter`]).
//!
//! Soundness rule: a prefilter may let through entities the evaluator then rejects,
//! never the reverse. That holds because the indexed values are exactly the candidates
//! the evaluator compares (`eval::resolve` and `eval::candidates`), and a term is only
//! turned into a condition where the evaluator's comparison is the plain numeric or
//! text order the store's index uses; everything else becomes [`Prefilter::All`].
//!
//! Strings are indexed by their first [`INDEXED_TEXT_CHARS`] characters only, so that
//! no index row outgrows a b-tree page (PostgreSQL refuses rows over about 2.7 KB),
//! and text conditions compare the same prefix of their literal (see
//! [`Prefilter::Text`]).

use super::eval::{attribute_candidates, Candidate};
use super::{GeoQuery, GeoRel, QExpr, QOp, QValue};
use crate::model::{iri, AttributeValue, Entity};
use serde_json::Value;
use std::borrow::Cow;

/// One comparable value of an attribute (or, with `value: None`, the fact that the
/// entity has the attribute at all), borrowed from the entity: a store writes the
/// entries of every entity it stores, and copying each name and string first cost a
/// write more than encoding them.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexEntry<'a> {
    pub attr: &'a str,
    pub value: Option<IndexedValue<'a>>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum IndexedValue<'a> {
    Number(f64),
    /// Strings, IRIs, and booleans as `true`/`false`, cut to [`indexed_text`].
    Text(Cow<'a, str>),
}

/// An [`IndexEntry`] as a store reads it back, borrowed from what it stored. Names and
/// strings stay bytes (the UTF-8 the entry was written as): the prefilter only compares
/// them, and comparing UTF-8 bytes orders strings as comparing `str`s does, so a store
/// need not validate every string of every candidate it reads. A store that keeps the
/// name shortened ([`iri::shorten`]) gives back its prefix apart: the name is
/// `prefix` followed by `attr`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EntryRef<'a> {
    pub prefix: &'static str,
    pub attr: &'a [u8],
    pub value: Option<ValueRef<'a>>,
}

impl EntryRef<'_> {
    /// Whether the entry is of the attribute named `name` (an expanded IRI).
    pub fn is_of(&self, name: &str) -> bool {
        name.as_bytes().strip_prefix(self.prefix.as_bytes()) == Some(self.attr)
    }
}

/// An [`IndexedValue`] borrowed from what a store stored.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ValueRef<'a> {
    Number(f64),
    Text(&'a [u8]),
}

impl IndexEntry<'_> {
    pub fn as_ref(&self) -> EntryRef<'_> {
        EntryRef {
            prefix: "",
            attr: self.attr.as_bytes(),
            value: self.value.as_ref().map(|value| match value {
                IndexedValue::Number(n) => ValueRef::Number(*n),
                IndexedValue::Text(t) => ValueRef::Text(t.as_bytes()),
            }),
        }
    }
}

/// How many characters of a string the index keeps. At most 4 bytes each, a row stays
/// far below the size a b-tree index row may have.
pub const INDEXED_TEXT_CHARS: usize = 256;

/// The part of a string the index keeps: its first [`INDEXED_TEXT_CHARS`] characters
/// (Unicode scalar values, as SQL's `left`/`substr` count them).
pub fn indexed_text(text: &str) -> &str {
    match text.char_indices().nth(INDEXED_TEXT_CHARS) {
        Some((end, _)) => &text[..end],
        None => text,
    }
}

/// The entries a store keeps for an entity: one presence entry per attribute, and one
/// per number, string or boolean the evaluator would compare a `q` term against.
pub fn index_entries(entity: &Entity) -> Vec<IndexEntry<'_>> {
    entries(entity, true)
}

/// [`index_entries`], keeping an attribute's presence entry only when `presence` says
/// so or it has no value entry ([`index_rows`]). The entries come attribute by
/// attribute, each attribute's presence entry first, then its values without repeats;
/// two entries of different attributes never repeat, so each value is looked for among
/// its own attribute's entries only (these share long IRI prefixes, and comparing
/// every pair was a third of the work).
fn entries(entity: &Entity, presence: bool) -> Vec<IndexEntry<'_>> {
    let mut entries = Vec::with_capacity(entity.attributes.len() * 2);
    let (mut targets, mut candidates) = (Vec::new(), Vec::new());
    for (attr, instances) in &entity.attributes {
        let start = entries.len();
        entries.push(IndexEntry { attr, value: None });
        attribute_candidates(instances, &mut targets, &mut candidates);
        for candidate in candidates.drain(..) {
            let value = match candidate {
                Candidate::Json(Value::Number(n)) => n.as_f64().map(IndexedValue::Number),
                Candidate::Json(Value::String(s)) => {
                    Some(IndexedValue::Text(indexed_text(s).into()))
                }
                Candidate::Json(Value::Bool(b)) => {
                    Some(IndexedValue::Text(if *b { "true" } else { "false" }.into()))
                }
                Candidate::Str(s) => Some(IndexedValue::Text(indexed_text(s).into())),
                _ => None,
            };
            if let Some(value) = value {
                if !entries[start + 1..]
                    .iter()
                    .any(|e| e.value.as_ref() == Some(&value))
                {
                    entries.push(IndexEntry {
                        attr,
                        value: Some(value),
                    });
                }
            }
        }
        if !presence && entries.len() > start + 1 {
            entries.remove(start);
        }
    }
    entries
}

/// The entries worth a row in a store's value index: every value, and a bare presence
/// entry only for an attribute with no value entry (a value already says the attribute
/// is there). Both stores keep exactly these.
pub fn index_rows(entity: &Entity) -> Vec<IndexEntry<'_>> {
    entries(entity, false)
}

/// A comparison an index can answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Eq,
    Gt,
    Ge,
    Lt,
    Le,
}

impl Comparison {
    /// Whether a value ordered `ordering` against the literal satisfies it.
    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        match self {
            Comparison::Eq => ordering.is_eq(),
            Comparison::Gt => ordering.is_gt(),
            Comparison::Ge => ordering.is_ge(),
            Comparison::Lt => ordering.is_lt(),
            Comparison::Le => ordering.is_le(),
        }
    }
}

/// A condition implied by a `q` expression, in terms of [`index_entries`].
#[derive(Debug, Clone, PartialEq)]
pub enum Prefilter {
    /// No narrowing possible: every entity is a candidate.
    All,
    /// The entity has the attribute.
    Has(String),
    Number(String, Comparison, f64),
    /// A comparison with the indexed prefix of the attribute's strings. The literal is
    /// already cut to [`indexed_text`] and a strict order made non-strict where the cut
    /// could make a match look equal (see `text_prefilter`).
    Text(String, Comparison, String),
    And(Vec<Prefilter>),
    Or(Vec<Prefilter>),
}

impl Prefilter {
    /// How many conditions on single attributes the prefilter holds: what a store
    /// needs to know to keep its SQL within its limits on size and parameters (a
    /// store may give up narrowing a huge one and leave it to the evaluator).
    pub fn term_count(&self) -> usize {
        match self {
            Prefilter::All => 0,
            Prefilter::Has(_) | Prefilter::Number(..) | Prefilter::Text(..) => 1,
            Prefilter::And(parts) | Prefilter::Or(parts) => {
                parts.iter().map(Prefilter::term_count).sum()
            }
        }
    }

    /// Whether an entity whose index entries are `entries` passes: how a store that
    /// keeps the entries beside the entity, not in an index of their own, applies the
    /// prefilter. An attribute is there if it has any entry; a comparison holds if a
    /// value of the attribute of the same kind satisfies it, numbers by their order
    /// and strings by their bytes (as SQL's `BINARY` collation compares them).
    pub fn admits(&self, entries: &[EntryRef<'_>]) -> bool {
        match self {
            Prefilter::All => true,
            Prefilter::Has(attr) => entries.iter().any(|e| e.is_of(attr)),
            Prefilter::Number(attr, c, n) => entries.iter().any(|e| {
                e.is_of(attr)
                    && matches!(e.value, Some(ValueRef::Number(v))
                        if v.partial_cmp(n).is_some_and(|o| c.holds(o)))
            }),
            Prefilter::Text(attr, c, t) => entries.iter().any(|e| {
                e.is_of(attr)
                    && matches!(e.value, Some(ValueRef::Text(v)) if c.holds(v.cmp(t.as_bytes())))
            }),
            Prefilter::And(parts) => parts.iter().all(|p| p.admits(entries)),
            Prefilter::Or(parts) => parts.iter().any(|p| p.admits(entries)),
        }
    }
}

/// The condition an index can check for a `q` expression (a superset of its matches).
pub fn q_prefilter(expr: &QExpr) -> Prefilter {
    match expr {
        QExpr::And(parts) => {
            let parts: Vec<Prefilter> = parts
                .iter()
                .map(q_prefilter)
                .filter(|p| *p != Prefilter::All)
                .collect();
            match parts.len() {
                0 => Prefilter::All,
                1 => parts.into_iter().next().unwrap_or(Prefilter::All),
                _ => Prefilter::And(parts),
            }
        }
        QExpr::Or(parts) => {
            let parts: Vec<Prefilter> = parts.iter().map(q_prefilter).collect();
            if parts.contains(&Prefilter::All) {
                Prefilter::All
            } else {
                Prefilter::Or(parts)
            }
        }
        QExpr::Term(term) => {
            let path = &term.path;
            let attr = path.attr.clone();
            // Sub-attributes, meta-data and paths into values are not indexed, but the
            // attribute itself must still exist.
            if !path.sub_attrs.is_empty() || !path.trailing.is_empty() {
                return Prefilter::Has(attr);
            }
            match &term.comparison {
                None => Prefilter::Has(attr),
                Some((op, value)) => term_prefilter(attr, *op, value),
            }
        }
    }
}

fn term_prefilter(attr: String, op: QOp, value: &QValue) -> Prefilter {
    let comparison = match op {
        QOp::Eq => Comparison::Eq,
        QOp::Gt => Comparison::Gt,
        QOp::Ge => Comparison::Ge,
        QOp::Lt => Comparison::Lt,
        QOp::Le => Comparison::Le,
        // `!=` and patterns need the attribute, and nothing more is known.
        QOp::Ne | QOp::Matches | QOp::NotMatches => return Prefilter::Has(attr),
    };
    match value {
        QValue::Number(n) => Prefilter::Number(attr, comparison, *n),
        QValue::Text(s) | QValue::Uri(s) => text_prefilter(attr, comparison, s),
        QValue::Bool(b) if comparison == Comparison::Eq => {
            text_prefilter(attr, comparison, &b.to_string())
        }
        QValue::List(items) if comparison == Comparison::Eq => {
            let parts: Vec<Prefilter> = items
                .iter()
                .map(|item| term_prefilter(attr.clone(), op, item))
                .collect();
            if parts
                .iter()
                .all(|p| matches!(p, Prefilter::Number(..) | Prefilter::Text(..)))
            {
                Prefilter::Or(parts)
            } else {
                Prefilter::Has(attr)
            }
        }
        QValue::Range(low, high) if comparison == Comparison::Eq => {
            match (low.as_ref(), high.as_ref()) {
                (QValue::Number(l), QValue::Number(h)) => Prefilter::And(vec![
                    Prefilter::Number(attr.clone(), Comparison::Ge, *l),
                    Prefilter::Number(attr, Comparison::Le, *h),
                ]),
                _ => Prefilter::Has(attr),
            }
        }
        // Date-times compare chronologically, not as the index orders text.
        _ => Prefilter::Has(attr),
    }
}

/// The condition on indexed (cut) strings implied by comparing the whole strings with
/// `literal`.
///
/// Cutting to a fixed number of characters keeps the order (if `a <= b` then
/// `cut(a) <= cut(b)`), so `value == literal` implies `cut(value) == cut(literal)`,
/// and `value > literal` implies `cut(value) >= cut(literal)`. Strictness survives
/// only when the literal is shorter than the cut: a longer string that starts with
/// such a literal still has a longer cut, while a literal of the cut's length or more
/// can equal the cut of a greater (or, once itself cut, smaller) value.
fn text_prefilter(attr: String, comparison: Comparison, literal: &str) -> Prefilter {
    let cut = indexed_text(literal);
    let comparison = if literal.chars().count() < INDEXED_TEXT_CHARS {
        comparison
    } else {
        match comparison {
            Comparison::Gt => Comparison::Ge,
            Comparison::Lt => Comparison::Le,
            other => other,
        }
    };
    Prefilter::Text(attr, comparison, cut.to_owned())
}

/// A longitude/latitude box.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoundingBox {
    pub min_lon: f64,
    pub min_lat: f64,
    pub max_lon: f64,
    pub max_lat: f64,
}

impl BoundingBox {
    /// The box around every position of a GeoJSON geometry.
    pub fn of_geojson(value: &Value) -> Option<BoundingBox> {
        let mut bbox: Option<BoundingBox> = None;
        collect_positions(value, &mut |lon, lat| {
            let b = bbox.get_or_insert(BoundingBox {
                min_lon: lon,
                min_lat: lat,
                max_lon: lon,
                max_lat: lat,
            });
            b.min_lon = b.min_lon.min(lon);
            b.min_lat = b.min_lat.min(lat);
            b.max_lon = b.max_lon.max(lon);
            b.max_lat = b.max_lat.max(lat);
        });
        bbox
    }

    fn union(self, other: BoundingBox) -> BoundingBox {
        BoundingBox {
            min_lon: self.min_lon.min(other.min_lon),
            min_lat: self.min_lat.min(other.min_lat),
            max_lon: self.max_lon.max(other.max_lon),
            max_lat: self.max_lat.max(other.max_lat),
        }
    }

    /// The box grown by `metres` on every side (generously: a degree of longitude is
    /// taken at the latitude where it is shortest within the box).
    pub fn grown_by(self, metres: f64) -> BoundingBox {
        const METRES_PER_DEGREE: f64 = 111_000.0;
        let dlat = metres / METRES_PER_DEGREE;
        let widest_lat = self.min_lat.abs().max(self.max_lat.abs()) + dlat;
        let cos = widest_lat.min(89.0).to_radians().cos();
        let dlon = if widest_lat >= 89.0 {
            360.0
        } else {
            metres / (METRES_PER_DEGREE * cos)
        };
        BoundingBox {
            min_lon: (self.min_lon - dlon).max(-180.0),
            min_lat: (self.min_lat - dlat).max(-90.0),
            max_lon: (self.max_lon + dlon).min(180.0),
            max_lat: (self.max_lat + dlat).min(90.0),
        }
    }
}

fn collect_positions(value: &Value, visit: &mut dyn FnMut(f64, f64)) {
    match value {
        Value::Object(members) => {
            if let Some(coordinates) = members.get("coordinates") {
                collect_positions(coordinates, visit);
            }
            if let Some(Value::Array(geometries)) = members.get("geometries") {
                geometries.iter().for_each(|g| collect_positions(g, visit));
            }
        }
        Value::Array(items) => match (
            items.first().and_then(Value::as_f64),
            items.get(1).and_then(Value::as_f64),
        ) {
            (Some(lon), Some(lat)) => visit(lon, lat),
            _ => items.iter().for_each(|item| collect_positions(item, visit)),
        },
        _ => {}
    }
}

/// The bounding box of an entity's `location` (every instance), which stores index.
pub fn location_box(entity: &Entity) -> Option<BoundingBox> {
    entity
        .attributes
        .get(iri::LOCATION)?
        .iter()
        .filter_map(|a| match &a.value {
            AttributeValue::GeoProperty(g) => BoundingBox::of_geojson(g),
            _ => None,
        })
        .reduce(BoundingBox::union)
}

/// The box an entity's `location` box must intersect to possibly match a geo-query on
/// `location`; `None` when no box can narrow it (another property, `disjoint`, or
/// `near` with only a minimum distance).
pub fn geo_prefilter(query: &GeoQuery) -> Option<BoundingBox> {
    if query.property != iri::LOCATION {
        return None;
    }
    let reference = BoundingBox::of_geojson(&query.geometry.geojson)?;
    match query.rel {
        GeoRel::Near {
            max_distance: Some(d),
            ..
        } => Some(reference.grown_by(d)),
        GeoRel::Near {
            max_distance: None, ..
        }
        | GeoRel::Disjoint => None,
        // Containment, intersection, equality and overlap all need the boxes to meet;
        // a hair of slack keeps boundary-touching shapes in.
        GeoRel::Within
        | GeoRel::Contains
        | GeoRel::Intersects
        | GeoRel::Equals
        | GeoRel::Overlaps => Some(reference.grown_by(1.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::context::{decode_entity, ActiveContext};
    use crate::query::eval::Matcher;
    use crate::query::{q, EntityQuery};
    use proptest::prelude::*;
    use serde_json::json;

    fn entity(capacity: Value, name: &str) -> Entity {
        decode_entity(
            &json!({"id": "urn:ngsi-ld:Shelter:1", "type": "Shelter",
                    "capacity": {"type": "Property", "value": capacity},
                    "name": {"type": "LanguageProperty", "languageMap": {"ja": name, "en": "Tower"}},
                    "open": {"type": "Property", "value": true},
                    "managedBy": {"type": "Relationship", "object": "urn:ngsi-ld:City:1"},
                    "location": {"type": "GeoProperty", "value": {"type": "Point", "coordinates": [138.3, 34.8]}}}),
            &ActiveContext::core(),
        )
        .unwrap()
    }

    /// Evaluates a prefilter against an entity's index entries, as a store would.
    fn admits(filter: &Prefilter, entries: &[IndexEntry]) -> bool {
        let entries: Vec<EntryRef<'_>> = entries.iter().map(IndexEntry::as_ref).collect();
        filter.admits(&entries)
    }

    fn expanded(q_text: &str) -> QExpr {
        let mut query = EntityQuery {
            q: Some(q::parse(q_text).unwrap()),
            ..Default::default()
        };
        let ctx = ActiveContext::core();
        query.expand_names(&|t| ctx.expand_iri(t, true), &|a| ctx.expand_iri(a, true));
        query.q.unwrap()
    }

    #[test]
    fn entries_cover_numbers_text_booleans_languages_and_objects() {
        let shelter = entity(json!([120, 80]), "中港タワー");
        let entries = index_entries(&shelter);
        let values: Vec<_> = entries.iter().filter_map(|e| e.value.clone()).collect();
        assert!(values.contains(&IndexedValue::Number(120.0)));
        assert!(values.contains(&IndexedValue::Number(80.0)));
        assert!(values.contains(&IndexedValue::Text("中港タワー".into())));
        assert!(values.contains(&IndexedValue::Text("true".into())));
        assert!(values.contains(&IndexedValue::Text("urn:ngsi-ld:City:1".into())));
        let bbox = location_box(&entity(json!(1), "x")).unwrap();
        assert_eq!((bbox.min_lon, bbox.max_lat), (138.3, 34.8));
    }

    /// The values of `name`'s entries, in order (`None` for its presence entry).
    fn values_of<'a>(entries: Vec<IndexEntry<'a>>, name: &str) -> Vec<Option<IndexedValue<'a>>> {
        entries
            .into_iter()
            .filter(|e| e.attr == name)
            .map(|e| e.value)
            .collect()
    }

    #[test]
    fn values_repeat_once_and_rows_keep_presence_only_without_a_value() {
        let shelter = entity(json!([120, 80, 120]), "x");
        let capacity = "https://uri.etsi.org/ngsi-ld/default-context/capacity";
        let location = iri::LOCATION;
        let n = |x: f64| Some(IndexedValue::Number(x));
        assert_eq!(
            values_of(index_entries(&shelter), capacity),
            [None, n(120.0), n(80.0)]
        );
        assert_eq!(
            values_of(index_rows(&shelter), capacity),
            [n(120.0), n(80.0)]
        );
        // A geometry is never compared by `q`: only its presence is kept, by both.
        assert_eq!(values_of(index_entries(&shelter), location), [None]);
        assert_eq!(values_of(index_rows(&shelter), location), [None]);
        // Every attribute is there, in the order of the entity's attributes.
        let names: Vec<&str> = index_rows(&shelter).iter().map(|e| e.attr).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        sorted.dedup();
        assert_eq!(sorted.len(), shelter.attributes.len());
    }

    #[test]
    fn prefilters_narrow_only_what_they_can() {
        let capacity = "https://uri.etsi.org/ngsi-ld/default-context/capacity".to_owned();
        assert_eq!(
            q_prefilter(&expanded("capacity>50")),
            Prefilter::Number(capacity, Comparison::Gt, 50.0)
        );
        assert!(matches!(
            q_prefilter(&expanded("capacity!=50")),
            Prefilter::Has(_)
        ));
        assert!(matches!(
            q_prefilter(&expanded("observedAt>2024-01-01T00:00:00Z|capacity==1")),
            Prefilter::Or(_)
        ));
        assert_eq!(
            q_prefilter(&expanded("a==1|b~=x.*")),
            Prefilter::Or(vec![
                Prefilter::Number(
                    "https://uri.etsi.org/ngsi-ld/default-context/a".into(),
                    Comparison::Eq,
                    1.0
                ),
                Prefilter::Has("https://uri.etsi.org/ngsi-ld/default-context/b".into()),
            ])
        );
    }

    proptest! {
        /// Whatever the evaluator accepts, the prefilter admits.
        #[test]
        fn prefilters_never_reject_a_match(
            capacity in prop_oneof![any::<i32>().prop_map(|n| json!(n)), "[a-c]{0,3}".prop_map(|s| json!(s)), any::<bool>().prop_map(|b| json!(b))],
            op in prop_oneof![Just("=="), Just("!="), Just(">"), Just(">="), Just("<"), Just("<=")],
            value in prop_oneof![any::<i16>().prop_map(|n| n.to_string()), "[a-c]{1,3}".prop_map(|s| format!("\"{s}\"")), Just("true".to_owned()), Just("1..5".to_owned()), Just("1,2,\"b\"".to_owned())],
        ) {
            let e = entity(capacity, "x");
            let q_text = format!("capacity{op}{value}");
            let Ok(parsed) = q::parse(&q_text) else { return Ok(()) };
            let mut query = EntityQuery { q: Some(parsed), ..Default::default() };
            let ctx = ActiveContext::core();
            query.expand_names(&|t| ctx.expand_iri(t, true), &|a| ctx.expand_iri(a, true));
            if Matcher::new(&query).matches(&e) {
                let q_expr = query.q.clone().unwrap_or(QExpr::And(vec![]));
                prop_assert!(admits(&q_prefilter(&q_expr), &index_entries(&e)), "{}", q_text);
            }
        }

        /// Strings around the indexed length (cut or not, sharing a long prefix or not,
        /// with multi-byte characters): whatever the evaluator accepts, the prefilter
        /// over the cut index admits.
        #[test]
        fn prefilters_on_cut_strings_never_reject_a_match(
            stored in "[aあ]{250,260}",
            literal in "[aあ]{250,260}",
            op in prop_oneof![Just("=="), Just(">"), Just(">="), Just("<"), Just("<=")],
            same in any::<bool>(),
        ) {
            let literal = if same { stored.clone() } else { literal };
            let e = entity(json!(stored), "x");
            let q_expr = expanded(&format!("capacity{op}\"{literal}\""));
            let query = EntityQuery { q: Some(q_expr.clone()), ..Default::default() };
            if Matcher::new(&query).matches(&e) {
                prop_assert!(admits(&q_prefilter(&q_expr), &index_entries(&e)), "{} {} {}", stored, op, literal);
            }
        }
    }

    #[test]
    fn long_strings_are_indexed_by_a_prefix_cut_at_a_character() {
        let long = "大".repeat(INDEXED_TEXT_CHARS + 10);
        let shelter = entity(json!(long), "x");
        let entries = index_entries(&shelter);
        let cut = "大".repeat(INDEXED_TEXT_CHARS);
        assert!(entries.contains(&IndexEntry {
            attr: "https://uri.etsi.org/ngsi-ld/default-context/capacity",
            value: Some(IndexedValue::Text(cut.as_str().into())),
        }));
        assert_eq!(indexed_text("short"), "short");
        let capacity = "https://uri.etsi.org/ngsi-ld/default-context/capacity".to_owned();
        assert_eq!(
            q_prefilter(&expanded(&format!("capacity==\"{long}\""))),
            Prefilter::Text(capacity.clone(), Comparison::Eq, cut.clone())
        );
        assert_eq!(
            q_prefilter(&expanded(&format!("capacity>\"{long}\""))),
            Prefilter::Text(capacity.clone(), Comparison::Ge, cut.clone())
        );
        assert_eq!(
            q_prefilter(&expanded(&format!("capacity<\"{long}\""))),
            Prefilter::Text(capacity.clone(), Comparison::Le, cut)
        );
        // A literal shorter than the cut keeps its strict order.
        assert_eq!(
            q_prefilter(&expanded("capacity>\"b\"")),
            Prefilter::Text(capacity, Comparison::Gt, "b".into())
        );
    }
}
