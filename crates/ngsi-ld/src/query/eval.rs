//! Evaluation of an [`EntityQuery`] against one entity in memory: the reference
//! semantics of `q` (clause 4.9), `scopeQ` (clause 4.19), type expressions (clause
//! 4.17) and `geoQ` (clause 4.10). In-memory stores filter with it directly and SQL
//! stores use it to check what their translated queries may only approximate.
//!
//! A `q` attribute path resolves to *targets* (one per attribute instance, sub-attribute
//! or meta-data member found); a JSON array target contributes each element as a
//! *candidate*. A term holds when any candidate satisfies it, except the negations
//! (`!=`, `!~=`), which need the path to exist and no candidate to satisfy the positive
//! form, so that "not red" never selects entities that have no colour at all.

use super::{AttrPath, EntityQuery, GeoQuery, GeoRel, QExpr, QOp, QValue, ScopeExpr};
use crate::geometry::{haversine_distance, Geometry};
use crate::model::{Attribute, AttributeValue, Entity, RelationshipObject};
use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, SecondsFormat, Utc};
use regex::Regex;
use serde_json::Value;
use std::cmp::Ordering;

/// A query prepared for evaluation: regular expressions compiled once.
pub struct Matcher {
    query: EntityQuery,
    /// `None` when the query has no idPattern; `Some(None)` when the pattern does not
    /// compile, which (the parsers having checked it) can only come from a caller
    /// building the query by hand, and then selects nothing rather than everything.
    id_pattern: Option<Option<Regex>>,
    q: Option<Compiled>,
}

/// A `q` expression with its regular expressions compiled.
enum Compiled {
    And(Vec<Compiled>),
    Or(Vec<Compiled>),
    Term { path: AttrPath, test: Test },
}

enum Test {
    Exists,
    Compare(QOp, QValue),
    /// `~=` (or `!~=` when `negated`); `None` when the pattern does not compile, and
    /// then no string matches it.
    Regex {
        regex: Option<Regex>,
        negated: bool,
    },
}

impl Matcher {
    pub fn new(query: &EntityQuery) -> Matcher {
        Matcher {
            query: query.clone(),
            id_pattern: query.id_pattern.as_deref().map(|p| Regex::new(p).ok()),
            q: query.q.as_ref().map(compile),
        }
    }

    /// Whether the entity satisfies every selection of the query (types, ids,
    /// idPattern, attrs, q, scopeQ, geoQ); paging is the caller's business.
    pub fn matches(&self, entity: &Entity) -> bool {
        let query = &self.query;
        if let Some(types) = &query.types {
            if !types.matches(&entity.types) {
                return false;
            }
        }
        if !query.ids.is_empty() && !query.ids.contains(&entity.id) {
            return false;
        }
        if let Some(pattern) = &self.id_pattern {
            // NGSI-LD uses the pattern as a search, as POSIX and most brokers do.
            if !pattern.as_ref().is_some_and(|re| re.is_match(&entity.id)) {
                return false;
            }
        }
        if !query.attrs.is_empty()
            && !query
                .attrs
                .iter()
                .any(|a| entity.attributes.get(a).is_some_and(|v| !v.is_empty()))
        {
            return false;
        }
        if let Some(q) = &self.q {
            if !eval_q(q, entity) {
                return false;
            }
        }
        if let Some(scope) = &query.scope_q {
            if !scope_matches(scope, &entity.scopes) {
                return false;
            }
        }
        if let Some(geo) = &query.geo_q {
            if !geo_matches(geo, entity) {
                return false;
            }
        }
        true
    }
}

fn compile(expr: &QExpr) -> Compiled {
    match expr {
        QExpr::And(parts) => Compiled::And(parts.iter().map(compile).collect()),
        QExpr::Or(parts) => Compiled::Or(parts.iter().map(compile).collect()),
        QExpr::Term(term) => {
            let test = match &term.comparison {
                None => Test::Exists,
                Some((op @ (QOp::Matches | QOp::NotMatches), value)) => {
                    let pattern = match value {
                        QValue::Regex(p) | QValue::Text(p) => Some(p.as_str()),
                        _ => None,
                    };
                    Test::Regex {
                        regex: pattern.and_then(|p| Regex::new(p).ok()),
                        negated: *op == QOp::NotMatches,
                    }
                }
                Some((op, value)) => Test::Compare(*op, value.clone()),
            };
            Compiled::Term {
                path: term.path.clone(),
                test,
            }
        }
    }
}

fn eval_q(expr: &Compiled, entity: &Entity) -> bool {
    match expr {
        Compiled::And(parts) => parts.iter().all(|p| eval_q(p, entity)),
        Compiled::Or(parts) => parts.iter().any(|p| eval_q(p, entity)),
        Compiled::Term { path, test } => {
            let targets = resolve(entity, path);
            let exists = !targets.is_empty();
            let candidates = candidates(&targets);
            match test {
                Test::Exists => exists,
                Test::Regex { regex, negated } => {
                    let any = regex.as_ref().is_some_and(|re| {
                        candidates
                            .iter()
                            .any(|c| c.as_text().is_some_and(|s| re.is_match(&s)))
                    });
                    if *negated {
                        exists && !any
                    } else {
                        any
                    }
                }
                Test::Compare(QOp::Ne, value) => {
                    exists && !candidates.iter().any(|c| equals(c, value))
                }
                Test::Compare(op, value) => candidates.iter().any(|c| compare_op(c, *op, value)),
            }
        }
    }
}

/// What a `q` path reaches before JSON arrays are opened into their elements.
pub(crate) enum Target<'a> {
    Json(&'a Value),
    /// An IRI or plain string held outside JSON (relationship objects, vocab IRIs,
    /// `unitCode`, `datasetId`).
    Str(&'a str),
    Time(DateTime<Utc>),
    /// Something that exists but has no comparable value (a GeoProperty).
    Opaque,
}

/// One value a `q` term is tested against.
pub(crate) enum Candidate<'a> {
    Json(&'a Value),
    Str(&'a str),
    Time(DateTime<Utc>),
}

impl Candidate<'_> {
    /// The candidate as text, if it is a string (date-times in RFC 3339 form).
    fn as_text(&self) -> Option<std::borrow::Cow<'_, str>> {
        match self {
            Candidate::Json(Value::String(s)) => Some(s.as_str().into()),
            Candidate::Str(s) => Some((*s).into()),
            Candidate::Time(t) => Some(crate::time::rfc3339_utc(t, SecondsFormat::AutoSi).into()),
            Candidate::Json(_) => None,
        }
    }
}

/// Resolves `attr.sub.sub[key]` over every instance (every datasetId) of the attribute.
pub(crate) fn resolve<'a>(entity: &'a Entity, path: &AttrPath) -> Vec<Target<'a>> {
    let mut current: Vec<&'a Attribute> = entity
        .attributes
        .get(&path.attr)
        .map(|instances| instances.iter().collect())
        .unwrap_or_default();
    for (i, name) in path.sub_attrs.iter().enumerate() {
        if super::ATTRIBUTE_META_MEMBERS.contains(&name.as_str()) {
            // Meta-data is a leaf: nothing can be addressed below it.
            if i + 1 != path.sub_attrs.len() || !path.trailing.is_empty() {
                return Vec::new();
            }
            return current
                .into_iter()
                .filter_map(|a| meta_target(a, name))
                .collect();
        }
        current = current
            .into_iter()
            .filter_map(|a| a.sub_attributes.get(name))
            .flatten()
            .collect();
    }
    let mut targets = Vec::new();
    for attribute in current {
        value_targets(&attribute.value, &path.trailing, &mut targets);
    }
    targets
}

/// The candidates of an attribute's instances themselves (no sub-attribute, no
/// trailing path): what [`resolve`] and [`candidates`] give for the bare name. They
/// replace what `out` held; `targets` is room to work in. A caller going through
/// every attribute of an entity keeps both, rather than two new vectors per
/// attribute.
pub(crate) fn attribute_candidates<'a>(
    instances: &'a [Attribute],
    targets: &mut Vec<Target<'a>>,
    out: &mut Vec<Candidate<'a>>,
) {
    targets.clear();
    for attribute in instances {
        value_targets(&attribute.value, &[], targets);
    }
    out.clear();
    candidates_into(targets, out);
}

fn meta_target<'a>(attribute: &'a Attribute, member: &str) -> Option<Target<'a>> {
    match member {
        "observedAt" => attribute.observed_at.map(Target::Time),
        "createdAt" => attribute.created_at.map(Target::Time),
        "modifiedAt" => attribute.modified_at.map(Target::Time),
        "unitCode" => attribute.unit_code.as_deref().map(Target::Str),
        "datasetId" => attribute.dataset_id.as_deref().map(Target::Str),
        _ => None,
    }
}

/// The values of one attribute instance reached by the trailing `[key]` path.
fn value_targets<'a>(value: &'a AttributeValue, trailing: &[String], out: &mut Vec<Target<'a>>) {
    let iris_only = |iris: &mut dyn Iterator<Item = &'a str>, out: &mut Vec<Target<'a>>| {
        // IRIs have no inner structure for a trailing path to address.
        if trailing.is_empty() {
            out.extend(iris.map(Target::Str));
        }
    };
    match value {
        AttributeValue::Property(v) => follow(v, trailing, true, out),
        AttributeValue::JsonProperty(v) => follow(v, trailing, false, out),
        AttributeValue::ListProperty(items) => {
            for item in items {
                follow(item, trailing, true, out);
            }
        }
        AttributeValue::Relationship { object, .. } => match object {
            RelationshipObject::One(iri) => iris_only(&mut std::iter::once(iri.as_str()), out),
            RelationshipObject::Many(iris) => iris_only(&mut iris.iter().map(String::as_str), out),
        },
        AttributeValue::ListRelationship(iris) | AttributeValue::VocabProperty(iris) => {
            iris_only(&mut iris.iter().map(String::as_str), out)
        }
        // `name[ja]` selects the strings of one language; `name` all of them.
        AttributeValue::LanguageProperty(map) => match trailing {
            [] => out.extend(map.values().map(Target::Json)),
            [tag] => out.extend(map.get(tag).map(Target::Json)),
            _ => {}
        },
        AttributeValue::GeoProperty(_) => {
            if trailing.is_empty() {
                out.push(Target::Opaque);
            }
        }
    }
}

/// Follows `keys` into a JSON value; keys applied to an array apply to each element.
/// `unwrap` strips JSON-LD value objects (`{"@value": x}`) on the way, which plain
/// JSON (JsonProperty) must keep as they are.
fn follow<'a>(value: &'a Value, keys: &[String], unwrap: bool, out: &mut Vec<Target<'a>>) {
    let value = if unwrap { unwrap_value(value) } else { value };
    let Some((key, rest)) = keys.split_first() else {
        out.push(Target::Json(value));
        return;
    };
    match value {
        Value::Object(members) => {
            if let Some(inner) = members.get(key) {
                follow(inner, rest, unwrap, out);
            }
        }
        Value::Array(items) => {
            for item in items {
                if let Value::Object(members) = item {
                    if let Some(inner) = members.get(key) {
                        follow(inner, rest, unwrap, out);
                    }
                }
            }
        }
        _ => {}
    }
}

/// `{"@value": x, ...}` (typed literals such as `{"@type":"DateTime","@value":"…"}`)
/// to `x`; anything else as it is.
fn unwrap_value(value: &Value) -> &Value {
    match value {
        Value::Object(members) => members.get("@value").unwrap_or(value),
        _ => value,
    }
}

/// Opens array targets into their elements and drops targets without a value.
pub(crate) fn candidates<'a>(targets: &[Target<'a>]) -> Vec<Candidate<'a>> {
    let mut out = Vec::new();
    candidates_into(targets, &mut out);
    out
}

/// [`candidates`], added to `out`.
fn candidates_into<'a>(targets: &[Target<'a>], out: &mut Vec<Candidate<'a>>) {
    for target in targets {
        match target {
            Target::Json(Value::Array(items)) => {
                out.extend(items.iter().map(|v| Candidate::Json(unwrap_value(v))))
            }
            Target::Json(v) => out.push(Candidate::Json(v)),
            Target::Str(s) => out.push(Candidate::Str(s)),
            Target::Time(t) => out.push(Candidate::Time(*t)),
            Target::Opaque => {}
        }
    }
}

/// `==` semantics: equal to the value, to any member of a list, or within a range.
fn equals(candidate: &Candidate, value: &QValue) -> bool {
    match value {
        QValue::List(items) => items.iter().any(|item| equals(candidate, item)),
        QValue::Range(low, high) => {
            matches!(
                compare(candidate, low),
                Some(Ordering::Greater | Ordering::Equal)
            ) && matches!(
                compare(candidate, high),
                Some(Ordering::Less | Ordering::Equal)
            )
        }
        _ => compare(candidate, value) == Some(Ordering::Equal),
    }
}

fn compare_op(candidate: &Candidate, op: QOp, value: &QValue) -> bool {
    let ordering = || compare(candidate, value);
    match op {
        QOp::Eq => equals(candidate, value),
        QOp::Ne => !equals(candidate, value),
        QOp::Gt => ordering() == Some(Ordering::Greater),
        QOp::Ge => matches!(ordering(), Some(Ordering::Greater | Ordering::Equal)),
        QOp::Lt => ordering() == Some(Ordering::Less),
        QOp::Le => matches!(ordering(), Some(Ordering::Less | Ordering::Equal)),
        // Regular expressions are compiled into `Test::Regex`, never compared.
        QOp::Matches | QOp::NotMatches => false,
    }
}

/// How the candidate orders against a scalar query value; `None` when their kinds
/// differ (a number never equals or exceeds a string).
fn compare(candidate: &Candidate, value: &QValue) -> Option<Ordering> {
    match (value, candidate) {
        (QValue::Number(n), Candidate::Json(Value::Number(c))) => c.as_f64()?.partial_cmp(n),
        (QValue::Bool(b), Candidate::Json(Value::Bool(c))) => Some(c.cmp(b)),
        (QValue::Text(s) | QValue::Uri(s) | QValue::DateTime(s), Candidate::Time(t)) => {
            compare_temporal(&Temporal::At(*t), &parse_temporal(s)?)
        }
        (QValue::DateTime(s), c) => {
            let text = c.as_text()?;
            match (parse_temporal(&text), parse_temporal(s)) {
                (Some(a), Some(b)) => compare_temporal(&a, &b),
                // Not both date-times: fall back to the written forms, which order
                // chronologically for ISO 8601 values of the same shape.
                _ => Some(text.as_ref().cmp(s.as_str())),
            }
        }
        (QValue::Text(s) | QValue::Uri(s), c) => Some(c.as_text()?.as_ref().cmp(s.as_str())),
        _ => None,
    }
}

/// An ISO 8601 date-time, date or time.
enum Temporal {
    At(DateTime<Utc>),
    Date(NaiveDate),
    Time(NaiveTime),
}

fn parse_temporal(text: &str) -> Option<Temporal> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Some(Temporal::At(at.with_timezone(&Utc)));
    }
    // A date-time without offset is taken as UTC, the NGSI-LD convention.
    if let Ok(at) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Some(Temporal::At(at.and_utc()));
    }
    if let Ok(date) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Some(Temporal::Date(date));
    }
    let time = text.strip_suffix('Z').unwrap_or(text);
    NaiveTime::parse_from_str(time, "%H:%M:%S%.f")
        .or_else(|_| NaiveTime::parse_from_str(time, "%H:%M"))
        .ok()
        .map(Temporal::Time)
}

/// Orders two temporal values of compatible kinds; a date against a date-time stands
/// for midnight UTC of that day, as SQL casts do.
fn compare_temporal(a: &Temporal, b: &Temporal) -> Option<Ordering> {
    let midnight = |d: &NaiveDate| d.and_time(NaiveTime::MIN).and_utc();
    match (a, b) {
        (Temporal::At(a), Temporal::At(b)) => Some(a.cmp(b)),
        (Temporal::Date(a), Temporal::Date(b)) => Some(a.cmp(b)),
        (Temporal::Time(a), Temporal::Time(b)) => Some(a.cmp(b)),
        (Temporal::At(a), Temporal::Date(b)) => Some(a.cmp(&midnight(b))),
        (Temporal::Date(a), Temporal::At(b)) => Some(midnight(a).cmp(b)),
        _ => None,
    }
}

/// Whether the entity's scopes satisfy a `scopeQ`; an entity without scopes never does.
fn scope_matches(expr: &ScopeExpr, scopes: &[String]) -> bool {
    match expr {
        ScopeExpr::And(parts) => parts.iter().all(|p| scope_matches(p, scopes)),
        ScopeExpr::Or(parts) => parts.iter().any(|p| scope_matches(p, scopes)),
        ScopeExpr::Pattern(pattern) => scopes.iter().any(|s| scope_pattern_matches(pattern, s)),
    }
}

/// Matches one scope against a pattern level by level: `+` stands for exactly one
/// level, a final `#` for the levels so far and any number below them.
fn scope_pattern_matches(pattern: &str, scope: &str) -> bool {
    let levels = |s: &str| -> Vec<String> {
        s.trim_start_matches('/')
            .split('/')
            .filter(|l| !l.is_empty())
            .map(str::to_string)
            .collect()
    };
    let pattern = levels(pattern);
    let scope = levels(scope);
    let mut scope_levels = scope.iter();
    for (i, level) in pattern.iter().enumerate() {
        if level == "#" {
            return i + 1 == pattern.len();
        }
        match scope_levels.next() {
            Some(s) if level == "+" || s == level => {}
            _ => return false,
        }
    }
    scope_levels.next().is_none()
}

/// Whether any instance of the queried GeoProperty stands in the relation to the
/// reference geometry.
fn geo_matches(query: &GeoQuery, entity: &Entity) -> bool {
    let Some(instances) = entity.attributes.get(&query.property) else {
        return false;
    };
    instances.iter().any(|instance| match &instance.value {
        AttributeValue::GeoProperty(value) => match Geometry::shape_of(value) {
            Ok(shape) => geo_relation_holds(query.rel, &shape, &query.geometry.shape),
            Err(_) => false,
        },
        _ => false,
    })
}

/// Whether `entity RELATION reference` holds: `within` means the entity lies within
/// the reference, `contains` that the entity contains it.
pub fn geo_relation_holds(
    rel: GeoRel,
    entity: &::geo::Geometry<f64>,
    reference: &::geo::Geometry<f64>,
) -> bool {
    if let GeoRel::Near {
        max_distance,
        min_distance,
    } = rel
    {
        let distance = haversine_distance(entity, reference);
        return max_distance.is_none_or(|max| distance <= max)
            && min_distance.is_none_or(|min| distance >= min);
    }
    // The same coordinates are equal whatever the topology graph makes of the shape
    // (it gets equality wrong for some valid polygons and panics on others).
    if rel == GeoRel::Equals && entity == reference {
        return true;
    }
    // geo's topology graph has known panics on some degenerate shapes; a query must
    // not take the broker down, so such an entity is simply not selected.
    let matrix = std::panic::catch_unwind(|| {
        use ::geo::Relate;
        entity.relate(reference)
    });
    let Ok(matrix) = matrix else {
        return false;
    };
    match rel {
        GeoRel::Within => matrix.is_within(),
        GeoRel::Contains => matrix.is_contains(),
        GeoRel::Intersects => matrix.is_intersects(),
        GeoRel::Disjoint => matrix.is_disjoint(),
        GeoRel::Equals => matrix.is_equal_topo(),
        GeoRel::Overlaps => matrix.is_overlaps(),
        GeoRel::Near { .. } => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::{QTerm, TypeExpr};
    use serde_json::json;
    use std::collections::BTreeMap;

    const V: &str = "https://example.org/vocab#";

    #[test]
    fn a_polygon_equals_itself() {
        let polygon = json!({"type": "Polygon", "coordinates": [[[13.2865906, 52.5648645], [13.2879639, 52.5648645], [13.2797241, 52.4988679], [13.477478, 52.4712703], [13.5049438, 52.5373084], [13.2865906, 52.5648645]]]});
        let shape = Geometry::from_geojson(&polygon).unwrap().shape;
        assert!(geo_relation_holds(GeoRel::Equals, &shape, &shape));
        let other = json!({"type": "Polygon", "coordinates": [[[0.0, 0.0], [1.0, 0.0], [1.0, 1.0], [0.0, 0.0]]]});
        let other = Geometry::from_geojson(&other).unwrap().shape;
        assert!(!geo_relation_holds(GeoRel::Equals, &shape, &other));
    }

    fn iri(name: &str) -> String {
        format!("{V}{name}")
    }

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .unwrap()
            .with_timezone(&Utc)
    }

    fn put(entity: &mut Entity, name: &str, attribute: Attribute) {
        entity
            .attributes
            .entry(iri(name))
            .or_default()
            .push(attribute);
    }

    /// A weather station in Yaizu with one attribute of every kind.
    fn station() -> Entity {
        let mut e = Entity::new(
            "urn:ngsi-ld:WeatherObserved:yaizu-001",
            vec![iri("WeatherObserved")],
        );
        e.scopes = vec!["/Shizuoka/Yaizu".into(), "/Disaster/Flood".into()];
        let mut temperature = Attribute::new(AttributeValue::Property(json!(21.5)));
        temperature.observed_at = Some(at("2024-06-01T09:00:00Z"));
        temperature.unit_code = Some("CEL".into());
        temperature.created_at = Some(at("2024-01-01T00:00:00Z"));
        temperature.modified_at = Some(at("2024-06-01T09:00:05Z"));
        let mut accuracy = Attribute::new(AttributeValue::Property(json!(0.5)));
        accuracy.sub_attributes.insert(
            iri("method"),
            vec![Attribute::new(AttributeValue::Property(json!(
                "thermistor"
            )))],
        );
        temperature
            .sub_attributes
            .insert(iri("accuracy"), vec![accuracy]);
        put(&mut e, "temperature", temperature);
        let mut second = Attribute::new(AttributeValue::Property(json!(30)));
        second.dataset_id = Some("urn:ngsi-ld:Dataset:backup".into());
        put(&mut e, "temperature", second);
        put(
            &mut e,
            "name",
            Attribute::new(AttributeValue::Property(json!("焼津観測所"))),
        );
        put(
            &mut e,
            "active",
            Attribute::new(AttributeValue::Property(json!(true))),
        );
        put(
            &mut e,
            "tags",
            Attribute::new(AttributeValue::Property(json!(["coast", "port"]))),
        );
        put(
            &mut e,
            "address",
            Attribute::new(AttributeValue::Property(
                json!({"addressLocality": "焼津市", "postal": {"code": "425-0022"}}),
            )),
        );
        put(
            &mut e,
            "installedAt",
            Attribute::new(AttributeValue::Property(
                json!({"@type": "DateTime", "@value": "2020-04-01T10:00:00+09:00"}),
            )),
        );
        put(
            &mut e,
            "openedOn",
            Attribute::new(AttributeValue::Property(json!("2020-04-01"))),
        );
        put(
            &mut e,
            "operator",
            Attribute::new(AttributeValue::Relationship {
                object: RelationshipObject::One("urn:ngsi-ld:Organization:yaizu-city".into()),
                object_type: None,
            }),
        );
        put(
            &mut e,
            "partners",
            Attribute::new(AttributeValue::Relationship {
                object: RelationshipObject::Many(vec!["urn:a".into(), "urn:b".into()]),
                object_type: None,
            }),
        );
        let label = BTreeMap::from([
            ("ja".to_string(), json!("焼津")),
            ("en".to_string(), json!(["Yaizu", "Yaidzu"])),
        ]);
        put(
            &mut e,
            "label",
            Attribute::new(AttributeValue::LanguageProperty(label)),
        );
        put(
            &mut e,
            "category",
            Attribute::new(AttributeValue::VocabProperty(vec![iri("weather")])),
        );
        put(
            &mut e,
            "readings",
            Attribute::new(AttributeValue::ListProperty(vec![
                json!(1),
                json!(5),
                json!({"@value": 9}),
            ])),
        );
        put(
            &mut e,
            "sensors",
            Attribute::new(AttributeValue::ListRelationship(vec![
                "urn:s1".into(),
                "urn:s2".into(),
            ])),
        );
        put(
            &mut e,
            "config",
            Attribute::new(AttributeValue::JsonProperty(
                json!({"@value": "raw", "mode": {"level": 3}}),
            )),
        );
        put(
            &mut e,
            "location",
            Attribute::new(AttributeValue::GeoProperty(
                json!({"type": "Point", "coordinates": [138.327, 34.875]}),
            )),
        );
        e
    }

    fn path(attr: &str, subs: &[&str], trailing: &[&str]) -> AttrPath {
        let is_meta = |s: &&str| super::super::ATTRIBUTE_META_MEMBERS.contains(s);
        AttrPath {
            attr: iri(attr),
            sub_attrs: subs
                .iter()
                .map(|s| if is_meta(s) { s.to_string() } else { iri(s) })
                .collect(),
            trailing: trailing.iter().map(|s| s.to_string()).collect(),
        }
    }

    fn term(p: AttrPath, op: QOp, value: QValue) -> QExpr {
        QExpr::Term(QTerm {
            path: p,
            comparison: Some((op, value)),
        })
    }

    fn exists(p: AttrPath) -> QExpr {
        QExpr::Term(QTerm {
            path: p,
            comparison: None,
        })
    }

    fn q(expr: QExpr) -> bool {
        let query = EntityQuery {
            q: Some(expr),
            ..EntityQuery::default()
        };
        Matcher::new(&query).matches(&station())
    }

    fn attr(name: &str) -> AttrPath {
        path(name, &[], &[])
    }

    fn num(n: f64) -> QValue {
        QValue::Number(n)
    }

    fn text(s: &str) -> QValue {
        QValue::Text(s.into())
    }

    fn dt(s: &str) -> QValue {
        QValue::DateTime(s.into())
    }

    #[test]
    fn selects_by_type_id_pattern_and_attrs() {
        let e = station();
        let matches = |query: EntityQuery| Matcher::new(&query).matches(&e);
        assert!(matches(EntityQuery::default()));
        let types = |t: TypeExpr| EntityQuery {
            types: Some(t),
            ..Default::default()
        };
        assert!(matches(types(TypeExpr::Type(iri("WeatherObserved")))));
        assert!(!matches(types(TypeExpr::Type(iri("Vehicle")))));
        assert!(matches(types(TypeExpr::Or(vec![
            TypeExpr::Type(iri("Vehicle")),
            TypeExpr::Type(iri("WeatherObserved")),
        ]))));
        let ids = |ids: &[&str]| EntityQuery {
            ids: ids.iter().map(|s| s.to_string()).collect(),
            ..Default::default()
        };
        assert!(matches(ids(&[
            "urn:x",
            "urn:ngsi-ld:WeatherObserved:yaizu-001"
        ])));
        assert!(!matches(ids(&["urn:x"])));
        let pattern = |p: &str| EntityQuery {
            id_pattern: Some(p.into()),
            ..Default::default()
        };
        assert!(
            matches(pattern("yaizu-\\d+")),
            "a search, not a whole match"
        );
        assert!(matches(pattern("^urn:ngsi-ld:WeatherObserved:.*$")));
        assert!(!matches(pattern("^urn:ngsi-ld:Vehicle:")));
        assert!(
            !matches(pattern("(unclosed")),
            "a broken pattern selects nothing"
        );
        let attrs = |a: &[&str]| EntityQuery {
            attrs: a.iter().map(|s| iri(s)).collect(),
            ..Default::default()
        };
        assert!(matches(attrs(&["humidity", "temperature"])));
        assert!(!matches(attrs(&["humidity"])));
        let mut both = pattern("yaizu");
        both.ids = vec!["urn:x".into()];
        assert!(!matches(both), "every selection must hold");
    }

    #[test]
    fn existence_of_paths() {
        assert!(q(exists(attr("temperature"))));
        assert!(!q(exists(attr("humidity"))));
        assert!(q(exists(attr("location"))), "a GeoProperty exists");
        assert!(q(exists(path("temperature", &["accuracy"], &[]))));
        assert!(q(exists(path("temperature", &["accuracy", "method"], &[]))));
        assert!(!q(exists(path("temperature", &["precision"], &[]))));
        assert!(q(exists(path("temperature", &["observedAt"], &[]))));
        assert!(q(exists(path("temperature", &["unitCode"], &[]))));
        assert!(!q(exists(path("name", &["observedAt"], &[]))));
        assert!(!q(exists(path(
            "temperature",
            &["observedAt", "accuracy"],
            &[]
        ))));
        assert!(q(exists(path("address", &[], &["postal", "code"]))));
        assert!(!q(exists(path("address", &[], &["postal", "box"]))));
        assert!(!q(exists(path("operator", &[], &["x"]))));
    }

    #[test]
    fn numbers_over_every_instance() {
        let t = || attr("temperature");
        assert!(q(term(t(), QOp::Eq, num(21.5))));
        assert!(
            q(term(t(), QOp::Eq, num(30.0))),
            "the backup dataset counts too"
        );
        assert!(!q(term(t(), QOp::Eq, num(21.0))));
        assert!(q(term(t(), QOp::Gt, num(25.0))));
        assert!(!q(term(t(), QOp::Gt, num(30.0))));
        assert!(q(term(t(), QOp::Ge, num(30.0))));
        assert!(q(term(t(), QOp::Lt, num(22.0))));
        assert!(!q(term(t(), QOp::Lt, num(21.5))));
        assert!(q(term(t(), QOp::Le, num(21.5))));
        let range = |a: f64, b: f64| QValue::Range(Box::new(num(a)), Box::new(num(b)));
        assert!(q(term(t(), QOp::Eq, range(20.0, 21.5))), "inclusive");
        assert!(!q(term(t(), QOp::Eq, range(22.0, 29.0))));
        assert!(
            q(term(t(), QOp::Ne, range(22.0, 29.0))),
            "neither 21.5 nor 30 lies in 22..29"
        );
        assert!(!q(term(t(), QOp::Ne, range(20.0, 35.0))));
        let list = QValue::List(vec![num(99.0), num(21.5)]);
        assert!(q(term(t(), QOp::Eq, list.clone())));
        assert!(!q(term(t(), QOp::Ne, list)));
        assert!(q(term(
            t(),
            QOp::Ne,
            QValue::List(vec![num(1.0), num(2.0)])
        )));
        assert!(!q(term(t(), QOp::Ne, num(21.5))));
        assert!(q(term(t(), QOp::Ne, num(99.0))));
        assert!(
            !q(term(attr("humidity"), QOp::Ne, num(99.0))),
            "!= needs the attribute"
        );
        assert!(!q(term(t(), QOp::Eq, text("21.5"))), "kinds never mix");
        assert!(!q(term(attr("name"), QOp::Gt, num(5.0))));
        assert!(!q(term(t(), QOp::Gt, QValue::List(vec![num(1.0)]))));
    }

    #[test]
    fn text_booleans_and_arrays() {
        assert!(q(term(attr("name"), QOp::Eq, text("焼津観測所"))));
        assert!(!q(term(attr("name"), QOp::Eq, text("焼津"))));
        assert!(
            q(term(attr("name"), QOp::Gt, text("焼津"))),
            "lexicographic"
        );
        assert!(!q(term(attr("name"), QOp::Lt, text("焼津"))));
        assert!(q(term(attr("active"), QOp::Eq, QValue::Bool(true))));
        assert!(!q(term(attr("active"), QOp::Eq, QValue::Bool(false))));
        assert!(q(term(attr("active"), QOp::Ne, QValue::Bool(false))));
        assert!(!q(term(attr("active"), QOp::Eq, text("true"))));
        assert!(q(term(attr("tags"), QOp::Eq, text("port"))), "any element");
        assert!(!q(term(attr("tags"), QOp::Ne, text("port"))));
        assert!(q(term(attr("tags"), QOp::Ne, text("harbour"))));
        assert!(q(term(
            path("address", &[], &["addressLocality"]),
            QOp::Eq,
            text("焼津市")
        )));
        assert!(q(term(
            path("address", &[], &["postal", "code"]),
            QOp::Eq,
            text("425-0022")
        )));
        assert!(!q(term(
            path("address", &[], &["postal"]),
            QOp::Eq,
            text("425-0022")
        )));
    }

    #[test]
    fn date_times_compare_chronologically() {
        let installed = || attr("installedAt");
        assert!(
            q(term(installed(), QOp::Gt, dt("2020-01-01T00:00:00Z"))),
            "@value unwrapped"
        );
        assert!(
            q(term(installed(), QOp::Eq, dt("2020-04-01T01:00:00Z"))),
            "same instant, other offset"
        );
        assert!(q(term(
            installed(),
            QOp::Eq,
            dt("2020-04-01T01:00:00.000Z")
        )));
        assert!(!q(term(installed(), QOp::Lt, dt("2020-04-01T00:59:59Z"))));
        assert!(
            q(term(installed(), QOp::Ge, dt("2020-04-01"))),
            "a date is its midnight"
        );
        assert!(!q(term(installed(), QOp::Ge, dt("2020-04-02"))));
        let opened = || attr("openedOn");
        assert!(q(term(opened(), QOp::Eq, dt("2020-04-01"))));
        assert!(q(term(opened(), QOp::Ge, dt("2020-04-01"))));
        assert!(!q(term(opened(), QOp::Lt, dt("2020-03-31"))));
        let range = QValue::Range(Box::new(dt("2020-03-01")), Box::new(dt("2020-05-01")));
        assert!(q(term(opened(), QOp::Eq, range)));
        assert!(
            !q(term(attr("name"), QOp::Lt, dt("2020-01-01"))),
            "text after digits"
        );
        assert!(
            !q(term(attr("temperature"), QOp::Gt, dt("2020-01-01"))),
            "numbers are not dates"
        );
    }

    #[test]
    fn meta_data_members() {
        let meta = |m: &str| path("temperature", &[m], &[]);
        assert!(q(term(
            meta("observedAt"),
            QOp::Eq,
            dt("2024-06-01T18:00:00+09:00")
        )));
        assert!(q(term(
            meta("observedAt"),
            QOp::Ge,
            dt("2024-06-01T00:00:00Z")
        )));
        assert!(q(term(meta("observedAt"), QOp::Gt, dt("2024-06-01"))));
        assert!(!q(term(meta("observedAt"), QOp::Lt, dt("2024-01-01"))));
        assert!(q(term(
            meta("observedAt"),
            QOp::Eq,
            text("2024-06-01T09:00:00Z")
        )));
        assert!(!q(term(meta("observedAt"), QOp::Eq, num(1.0))));
        assert!(q(term(
            meta("createdAt"),
            QOp::Lt,
            dt("2024-02-01T00:00:00Z")
        )));
        assert!(q(term(
            meta("modifiedAt"),
            QOp::Gt,
            dt("2024-06-01T09:00:00Z")
        )));
        assert!(q(term(meta("unitCode"), QOp::Eq, text("CEL"))));
        assert!(!q(term(meta("unitCode"), QOp::Eq, text("FAH"))));
        let backup = QValue::Uri("urn:ngsi-ld:Dataset:backup".into());
        assert!(q(term(meta("datasetId"), QOp::Eq, backup.clone())));
        assert!(!q(term(meta("datasetId"), QOp::Ne, backup)));
        assert!(q(term(
            meta("datasetId"),
            QOp::Ne,
            QValue::Uri("urn:other".into())
        )));
    }

    #[test]
    fn sub_attributes() {
        let accuracy = || path("temperature", &["accuracy"], &[]);
        assert!(q(term(accuracy(), QOp::Eq, num(0.5))));
        assert!(!q(term(accuracy(), QOp::Lt, num(0.1))));
        let method = path("temperature", &["accuracy", "method"], &[]);
        assert!(q(term(method.clone(), QOp::Eq, text("thermistor"))));
        assert!(!q(term(method, QOp::Eq, text("resistor"))));
        assert!(!q(term(
            path("temperature", &["precision"], &[]),
            QOp::Ne,
            num(1.0)
        )));
    }

    #[test]
    fn relationships_and_other_kinds() {
        let uri = |s: &str| QValue::Uri(s.into());
        assert!(q(term(
            attr("operator"),
            QOp::Eq,
            uri("urn:ngsi-ld:Organization:yaizu-city")
        )));
        assert!(q(term(
            attr("operator"),
            QOp::Eq,
            text("urn:ngsi-ld:Organization:yaizu-city")
        )));
        assert!(!q(term(
            attr("operator"),
            QOp::Eq,
            uri("urn:ngsi-ld:Organization:shizuoka")
        )));
        assert!(q(term(attr("partners"), QOp::Eq, uri("urn:b"))));
        assert!(!q(term(attr("partners"), QOp::Ne, uri("urn:b"))));
        assert!(
            q(term(attr("label"), QOp::Eq, text("Yaidzu"))),
            "any language, any string"
        );
        assert!(q(term(path("label", &[], &["ja"]), QOp::Eq, text("焼津"))));
        assert!(!q(term(path("label", &[], &["en"]), QOp::Eq, text("焼津"))));
        assert!(q(term(attr("category"), QOp::Eq, uri(&iri("weather")))));
        assert!(q(term(attr("readings"), QOp::Eq, num(5.0))));
        assert!(
            q(term(attr("readings"), QOp::Eq, num(9.0))),
            "@value unwrapped in lists"
        );
        assert!(q(term(attr("readings"), QOp::Gt, num(8.0))));
        assert!(!q(term(attr("readings"), QOp::Gt, num(10.0))));
        assert!(q(term(attr("sensors"), QOp::Eq, uri("urn:s2"))));
        assert!(!q(term(attr("sensors"), QOp::Eq, uri("urn:s3"))));
        assert!(q(term(
            path("config", &[], &["mode", "level"]),
            QOp::Eq,
            num(3.0)
        )));
        assert!(
            !q(term(attr("config"), QOp::Eq, text("raw"))),
            "JSON is not unwrapped"
        );
        assert!(q(term(
            path("config", &[], &["@value"]),
            QOp::Eq,
            text("raw")
        )));
        assert!(
            !q(term(attr("location"), QOp::Eq, text("Point"))),
            "GeoProperties have no q value"
        );
        // It exists, and nothing in it equals the value.
        assert!(q(term(attr("location"), QOp::Ne, text("Point"))));
    }

    #[test]
    fn regular_expressions() {
        let re = |s: &str| QValue::Regex(s.into());
        assert!(q(term(attr("name"), QOp::Matches, re("観測"))));
        assert!(!q(term(attr("name"), QOp::Matches, re("^Tokyo"))));
        assert!(q(term(attr("name"), QOp::NotMatches, re("^Tokyo"))));
        assert!(!q(term(attr("name"), QOp::NotMatches, re("観測"))));
        assert!(
            !q(term(attr("humidity"), QOp::NotMatches, re("x"))),
            "!~= needs the attribute"
        );
        assert!(q(term(attr("tags"), QOp::Matches, re("^po"))));
        assert!(!q(term(attr("tags"), QOp::NotMatches, re("^po"))));
        assert!(q(term(attr("operator"), QOp::Matches, re("yaizu-city$"))));
        assert!(q(term(
            path("temperature", &["observedAt"], &[]),
            QOp::Matches,
            re("^2024-06-01T09")
        )));
        assert!(
            !q(term(attr("temperature"), QOp::Matches, re("21"))),
            "numbers are not text"
        );
        assert!(!q(term(attr("name"), QOp::Matches, re("(unclosed"))));
    }

    #[test]
    fn and_or_combine_terms() {
        let yes = || term(attr("temperature"), QOp::Gt, num(25.0));
        let no = || term(attr("temperature"), QOp::Gt, num(50.0));
        assert!(q(QExpr::And(vec![yes(), yes()])));
        assert!(!q(QExpr::And(vec![yes(), no()])));
        assert!(q(QExpr::Or(vec![no(), yes()])));
        assert!(!q(QExpr::Or(vec![no(), no()])));
        assert!(q(QExpr::Or(vec![
            no(),
            QExpr::And(vec![yes(), exists(attr("name"))])
        ])));
    }

    fn scoped(scope: ScopeExpr, scopes: &[&str]) -> bool {
        let mut e = station();
        e.scopes = scopes.iter().map(|s| s.to_string()).collect();
        let query = EntityQuery {
            scope_q: Some(scope),
            ..Default::default()
        };
        Matcher::new(&query).matches(&e)
    }

    #[test]
    fn scope_patterns() {
        let p = |s: &str| ScopeExpr::Pattern(s.into());
        assert!(scoped(p("/Shizuoka/Yaizu"), &["/Shizuoka/Yaizu"]));
        assert!(!scoped(p("/Shizuoka/Yaizu"), &["/Shizuoka"]));
        assert!(!scoped(p("/Shizuoka/Yaizu"), &["/Shizuoka/Yaizu/Port"]));
        assert!(
            !scoped(p("/Shizuoka"), &["/Shizuoka/Yaizu"]),
            "exact, not a prefix"
        );
        assert!(scoped(p("/Shizuoka/+"), &["/Shizuoka/Yaizu"]));
        assert!(!scoped(p("/Shizuoka/+"), &["/Shizuoka"]));
        assert!(!scoped(p("/Shizuoka/+"), &["/Shizuoka/Yaizu/Port"]));
        assert!(!scoped(p("/Shizuoka/+"), &["/ShizuokaCity/Aoi"]));
        assert!(scoped(p("/Shizuoka/#"), &["/Shizuoka"]));
        assert!(scoped(p("/Shizuoka/#"), &["/Shizuoka/Yaizu/Port"]));
        assert!(!scoped(p("/Shizuoka/#"), &["/Aichi/Nagoya"]));
        assert!(scoped(p("/#"), &["/Aichi"]));
        assert!(!scoped(p("/#"), &[]), "no scope, no match");
        assert!(scoped(p("/+/Yaizu"), &["/Shizuoka/Yaizu"]));
        assert!(
            scoped(p("/Aichi"), &["/Shizuoka/Yaizu", "/Aichi"]),
            "any of the scopes"
        );
        let and = ScopeExpr::And(vec![p("/Shizuoka/#"), p("/Disaster/Flood")]);
        assert!(scoped(and.clone(), &["/Shizuoka/Yaizu", "/Disaster/Flood"]));
        assert!(!scoped(and, &["/Shizuoka/Yaizu"]));
        let or = ScopeExpr::Or(vec![p("/Aichi"), p("/Shizuoka/+")]);
        assert!(scoped(or.clone(), &["/Shizuoka/Yaizu"]));
        assert!(!scoped(or, &["/Gifu"]));
    }

    /// A polygon around central Yaizu (Shizuoka prefecture).
    const AROUND_YAIZU: &str =
        "[[[138.28,34.84],[138.37,34.84],[138.37,34.91],[138.28,34.91],[138.28,34.84]]]";

    fn geo_query(georel: &str, geometry: &str, coordinates: &str) -> GeoQuery {
        let mut query =
            super::super::geo::parse_geo_query(georel, geometry, coordinates, None).unwrap();
        query.property = iri("location");
        query
    }

    fn located(location: Value, query: GeoQuery) -> bool {
        let mut e = station();
        e.attributes.insert(
            iri("location"),
            vec![Attribute::new(AttributeValue::GeoProperty(location))],
        );
        let query = EntityQuery {
            geo_q: Some(query),
            ..Default::default()
        };
        Matcher::new(&query).matches(&e)
    }

    fn yaizu_point() -> Value {
        json!({"type": "Point", "coordinates": [138.327, 34.875]})
    }

    #[test]
    fn yaizu_is_within_yaizu_and_near_its_neighbour_not_tokyo() {
        assert!(located(
            yaizu_point(),
            geo_query("within", "Polygon", AROUND_YAIZU)
        ));
        let shizuoka_city =
            "[[[138.35,34.93],[138.45,34.93],[138.45,35.0],[138.35,35.0],[138.35,34.93]]]";
        assert!(!located(
            yaizu_point(),
            geo_query("within", "Polygon", shizuoka_city)
        ));
        // Yaizu station is some 350 m away; Tokyo station about 160 km.
        let neighbour = "[138.330,34.877]";
        let tokyo = "[139.767,35.681]";
        assert!(located(
            yaizu_point(),
            geo_query("near;maxDistance==1000", "Point", neighbour)
        ));
        assert!(!located(
            yaizu_point(),
            geo_query("near;maxDistance==100", "Point", neighbour)
        ));
        assert!(!located(
            yaizu_point(),
            geo_query("near;maxDistance==1000", "Point", tokyo)
        ));
        assert!(located(
            yaizu_point(),
            geo_query("near;minDistance==100000", "Point", tokyo)
        ));
        assert!(!located(
            yaizu_point(),
            geo_query("near;minDistance==1000", "Point", neighbour)
        ));
        assert!(located(
            yaizu_point(),
            geo_query(
                "near;minDistance==100;maxDistance==1000",
                "Point",
                neighbour
            )
        ));
    }

    #[test]
    fn near_measures_to_the_closest_point_of_a_shape() {
        // A coastal road 0.01° of latitude (≈1.1 km) north of the station.
        let road =
            json!({"type": "LineString", "coordinates": [[138.30, 34.885], [138.35, 34.885]]});
        assert!(located(
            road.clone(),
            geo_query("near;maxDistance==1200", "Point", "[138.327,34.875]")
        ));
        assert!(!located(
            road,
            geo_query("near;maxDistance==1000", "Point", "[138.327,34.875]")
        ));
        let area = json!({"type": "Polygon", "coordinates": [[[138.28,34.84],[138.37,34.84],[138.37,34.91],[138.28,34.91],[138.28,34.84]]]});
        assert!(
            located(
                area,
                geo_query("near;maxDistance==0", "Point", "[138.327,34.875]")
            ),
            "inside is distance 0"
        );
    }

    #[test]
    fn topological_relations_follow_the_entity_to_reference_order() {
        let area = json!({"type": "Polygon", "coordinates": [[[138.28,34.84],[138.37,34.84],[138.37,34.91],[138.28,34.91],[138.28,34.84]]]});
        assert!(located(
            area.clone(),
            geo_query("contains", "Point", "[138.327,34.875]")
        ));
        assert!(!located(
            area.clone(),
            geo_query("within", "Point", "[138.327,34.875]")
        ));
        assert!(!located(
            yaizu_point(),
            geo_query("contains", "Polygon", AROUND_YAIZU)
        ));
        assert!(located(
            yaizu_point(),
            geo_query("intersects", "Polygon", AROUND_YAIZU)
        ));
        assert!(!located(
            yaizu_point(),
            geo_query("disjoint", "Polygon", AROUND_YAIZU)
        ));
        assert!(located(
            yaizu_point(),
            geo_query("disjoint", "Point", "[139.767,35.681]")
        ));
        assert!(located(
            yaizu_point(),
            geo_query("equals", "Point", "[138.327,34.875]")
        ));
        assert!(!located(
            yaizu_point(),
            geo_query("equals", "Point", "[138.328,34.875]")
        ));
        assert!(located(
            area.clone(),
            geo_query("equals", "Polygon", AROUND_YAIZU)
        ));
        let shifted =
            "[[[138.30,34.86],[138.40,34.86],[138.40,34.95],[138.30,34.95],[138.30,34.86]]]";
        assert!(located(
            area.clone(),
            geo_query("overlaps", "Polygon", shifted)
        ));
        assert!(
            !located(area, geo_query("overlaps", "Polygon", AROUND_YAIZU)),
            "equal is not overlapping"
        );
    }

    #[test]
    fn geo_query_needs_a_valid_geoproperty_of_that_name() {
        let within = || geo_query("within", "Polygon", AROUND_YAIZU);
        let mut query = within();
        query.property = iri("observationSpace");
        let mut only = EntityQuery {
            geo_q: Some(query),
            ..Default::default()
        };
        assert!(
            !Matcher::new(&only).matches(&station()),
            "no such GeoProperty"
        );
        only.geo_q = Some(within());
        assert!(Matcher::new(&only).matches(&station()));
        assert!(!located(
            json!({"type": "Point", "coordinates": [500, 0]}),
            within()
        ));
        assert!(!located(json!("not geojson"), within()));
        // Any instance may satisfy the relation.
        let mut e = station();
        let mut elsewhere = Attribute::new(AttributeValue::GeoProperty(
            json!({"type": "Point", "coordinates": [139.767, 35.681]}),
        ));
        elsewhere.dataset_id = Some("urn:ngsi-ld:Dataset:tokyo".into());
        e.attributes
            .get_mut(&iri("location"))
            .unwrap()
            .insert(0, elsewhere);
        assert!(Matcher::new(&only).matches(&e));
        // A Property named like the GeoProperty is not a location.
        e.attributes.insert(
            iri("location"),
            vec![Attribute::new(AttributeValue::Property(yaizu_point()))],
        );
        assert!(!Matcher::new(&only).matches(&e));
    }
}
