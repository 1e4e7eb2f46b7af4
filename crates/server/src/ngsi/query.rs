//! Turning query-string parameters into an [`EntityQuery`] and rendering options:
//! the parameters of Query Entities (clause 6.4.3.2), Retrieve Entity (6.5.3.1) and
//! Purge (6.4.3.3), parsed with `ngsi-ld`'s parsers and expanded with the request's
//! `@context` so that the store sees only IRIs.

use super::params::Params;
use broker::linked::LinkedEntities;
use ngsi_ld::context::{codec, ActiveContext, Format, RenderOptions};
use ngsi_ld::model::{Attribute, AttributeValue, DatasetSelector, Entity, RelationshipObject};
use ngsi_ld::query::attrs::Projection;
use ngsi_ld::query::{geo, q, scope, types, EntityQuery};
use ngsi_ld::NgsiError;
use serde_json::Value;
use std::cell::Cell;
use std::collections::BTreeSet;

/// Entities per page when the client does not say (clause 6.4.3.2, `limit`).
pub const DEFAULT_PAGE_SIZE: usize = 20;

/// The selection parameters of a query, parsed but not yet expanded.
pub fn entity_query(params: &Params, ctx: &ActiveContext) -> Result<EntityQuery, NgsiError> {
    let mut query = EntityQuery {
        types: params.get("type")?.map(types::parse).transpose()?,
        ids: params.list("id")?,
        id_pattern: params.get("idPattern")?.map(str::to_owned),
        attrs: attribute_names(params)?,
        q: params.get("q")?.map(q::parse).transpose()?,
        scope_q: params.get("scopeQ")?.map(scope::parse).transpose()?,
        geo_q: geo_query(params)?,
        limit: params.usize("limit")?.unwrap_or(DEFAULT_PAGE_SIZE),
        offset: params.usize("offset")?.unwrap_or(0),
        count: params.bool("count")?,
    };
    if let Some(pattern) = &query.id_pattern {
        check_id_pattern(pattern)?;
    }
    for id in &query.ids {
        check_iri("id", id)?;
    }
    expand_query(&mut query, ctx);
    Ok(query)
}

pub fn expand_query(query: &mut EntityQuery, ctx: &ActiveContext) {
    query.expand_names(&|t| ctx.expand_iri(t, true), &|a| ctx.expand_iri(a, true));
}

fn geo_query(params: &Params) -> Result<Option<ngsi_ld::query::GeoQuery>, NgsiError> {
    let georel = params.get("georel")?;
    let geometry = params.get("geometry")?;
    let coordinates = params.get("coordinates")?;
    match (georel, geometry, coordinates) {
        (None, None, None) => Ok(None),
        (Some(rel), Some(geometry), Some(coordinates)) => Ok(Some(geo::parse_geo_query(
            rel,
            geometry,
            coordinates,
            params.get("geoproperty")?,
        )?)),
        _ => Err(NgsiError::bad_request_data(
            "a geo-query needs all of georel, geometry and coordinates",
        )),
    }
}

/// Refuses an `idPattern` that is not a valid regular expression. Beyond what the
/// `regex` crate refuses, a quantifier directly after another (`a**`, `a+*`) is
/// refused as the ECMAScript and POSIX syntaxes clients write against do; a `?` after
/// a quantifier is the lazy marker and stays allowed.
pub fn check_id_pattern(pattern: &str) -> Result<(), NgsiError> {
    let bad = |detail: String| {
        NgsiError::bad_request_data(format!(
            "idPattern '{pattern}' is not a valid regular expression: {detail}"
        ))
    };
    regex::Regex::new(pattern).map_err(|e| bad(e.to_string()))?;
    let chars: Vec<char> = pattern.chars().collect();
    let (mut i, mut in_class) = (0, false);
    // Whether the previous token was a quantifier, and whether it was made lazy.
    let (mut quantified, mut lazy) = (false, false);
    while let Some(&c) = chars.get(i) {
        let mut is_quantifier = false;
        match c {
            '\\' => i += 1,
            '[' if !in_class => in_class = true,
            ']' if in_class => in_class = false,
            _ if in_class => {}
            '?' if quantified && !lazy => {
                lazy = true;
                i += 1;
                continue;
            }
            // `(?` opens a group with flags, not a quantifier.
            '?' if i > 0 && chars.get(i - 1) == Some(&'(') => {}
            '*' | '+' | '?' => is_quantifier = true,
            '{' => {
                let rest = chars.get(i + 1..).unwrap_or_default();
                if let Some(len) = rest.iter().position(|&c| c == '}') {
                    let inside = rest.get(..len).unwrap_or_default();
                    if !inside.is_empty() && inside.iter().all(|c| c.is_ascii_digit() || *c == ',')
                    {
                        is_quantifier = true;
                        if quantified {
                            return Err(bad(format!(
                                "quantifier at character {} repeats a quantifier",
                                i + 1
                            )));
                        }
                        i += len + 1;
                    }
                }
            }
            _ => {}
        }
        if is_quantifier && quantified && c != '{' {
            return Err(bad(format!(
                "'{c}' at character {} repeats a quantifier",
                i + 1
            )));
        }
        quantified = is_quantifier;
        lazy = false;
        i += 1;
    }
    Ok(())
}

/// The `attrs` parameter: attribute names, which `id` and `type` are not (those are
/// entity members, chosen with `pick` and `omit`).
pub fn attribute_names(params: &Params) -> Result<Vec<String>, NgsiError> {
    let attrs = params.list("attrs")?;
    check_attribute_names(&attrs)?;
    Ok(attrs)
}

/// Refuses `id`, `type` and JSON-LD keywords among attribute names.
pub fn check_attribute_names(names: &[String]) -> Result<(), NgsiError> {
    match names
        .iter()
        .find(|n| matches!(n.as_str(), "id" | "type") || n.starts_with('@'))
    {
        Some(name) => Err(NgsiError::bad_request_data(format!(
            "attrs: '{name}' is not an attribute name"
        ))),
        None => Ok(()),
    }
}

/// Refuses an entity id that is not an absolute IRI.
pub fn check_iri(what: &str, id: &str) -> Result<(), NgsiError> {
    let scheme_ok = id.split_once(':').is_some_and(|(scheme, rest)| {
        !scheme.is_empty()
            && scheme
                .chars()
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic())
            && scheme
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            && !rest.is_empty()
    });
    if scheme_ok
        && !id
            .chars()
            .any(|c| c.is_whitespace() || matches!(c, '<' | '>' | '"'))
    {
        Ok(())
    } else {
        Err(NgsiError::bad_request_data(format!(
            "{what} '{id}' is not an absolute IRI"
        )))
    }
}

/// The instances of an attribute that `deleteAll` and `datasetId` name (clause
/// 6.7.3.2): every one, the one of a dataset id, or the default one.
pub fn dataset_selector(params: &Params) -> Result<DatasetSelector, NgsiError> {
    if params.bool("deleteAll")? {
        return Ok(DatasetSelector::All);
    }
    match params.get("datasetId")? {
        Some(dataset) => {
            check_iri("datasetId", dataset)?;
            Ok(DatasetSelector::Id(dataset.to_owned()))
        }
        None => Ok(DatasetSelector::Default),
    }
}

/// The representation asked for by `format` and `options` (clause 6.3.7), and `lang`.
pub fn render_options(params: &Params) -> Result<RenderOptions, NgsiError> {
    let options = params.list("options")?;
    let mut format = Format::Normalized;
    let mut sys_attrs = false;
    for option in &options {
        match option.as_str() {
            "keyValues" | "simplified" => format = Format::KeyValues,
            "concise" => format = Format::Concise,
            "normalized" => format = Format::Normalized,
            "sysAttrs" => sys_attrs = true,
            // Options of other operations travel on the same parameter.
            "noOverwrite" | "replace" | "update" => {}
            // Like an unknown parameter, an unknown value of `options` or `format` makes
            // the request itself invalid (clause 6.3.7).
            other => {
                return Err(NgsiError::invalid_request(format!(
                    "unknown option '{other}': use keyValues, concise, normalized or sysAttrs"
                )))
            }
        }
    }
    if let Some(f) = params.get("format")? {
        format = match f {
            "keyValues" | "simplified" => Format::KeyValues,
            "concise" => Format::Concise,
            "normalized" => Format::Normalized,
            other => {
                return Err(NgsiError::invalid_request(format!(
                    "unknown format '{other}': use keyValues, concise or normalized"
                )))
            }
        };
    }
    Ok(RenderOptions {
        format,
        sys_attrs,
        lang: params.get("lang")?.map(str::to_owned),
    })
}

/// Which members of an entity are shown: `attrs`, and `pick` or `omit` (clause 4.21),
/// with names expanded; `id` and `type` are members too.
#[derive(Debug, Clone)]
pub struct AttributeFilter {
    attrs: Option<Vec<String>>,
    projection: Projection,
    /// `datasetId`: only these instances are shown, `None` standing for the default
    /// instance (`@none`).
    dataset_ids: Option<Vec<Option<String>>>,
}

impl AttributeFilter {
    pub fn from_params(params: &Params, ctx: &ActiveContext) -> Result<AttributeFilter, NgsiError> {
        let attrs = attribute_names(params)?;
        let (pick, omit) = (params.get("pick")?, params.get("omit")?);
        if !attrs.is_empty() && (pick.is_some() || omit.is_some()) {
            // Two ways of saying which attributes to show would contradict each other.
            return Err(NgsiError::bad_request_data(
                "attrs cannot be used together with pick or omit",
            ));
        }
        let mut filter = AttributeFilter::new(attrs, Projection::parse(pick, omit)?, ctx)?;
        let dataset_ids = params.list("datasetId")?;
        if !dataset_ids.is_empty() {
            let mut wanted = Vec::new();
            for id in dataset_ids {
                if id == "@none" {
                    wanted.push(None);
                } else {
                    check_iri("datasetId", &id)?;
                    wanted.push(Some(id));
                }
            }
            filter.dataset_ids = Some(wanted);
        }
        Ok(filter)
    }

    /// A filter from attribute names and a projection, both as the client wrote them.
    pub fn new(
        attrs: Vec<String>,
        projection: Projection,
        ctx: &ActiveContext,
    ) -> Result<AttributeFilter, NgsiError> {
        let expand = |name: &str| ctx.expand_iri(name, true);
        Ok(AttributeFilter {
            attrs: (!attrs.is_empty()).then(|| attrs.iter().map(|n| expand(n)).collect()),
            projection: projection.map_names(&expand),
            dataset_ids: None,
        })
    }

    /// Leaves only the attributes to show (`id` and `type` are left to [`Self::finish`]).
    pub fn apply(&self, entity: &mut Entity) {
        if let Some(keep) = &self.attrs {
            entity.attributes.retain(|name, _| keep.contains(name));
        }
        entity
            .attributes
            .retain(|name, _| self.projection.shows(name));
        if let Some(wanted) = &self.dataset_ids {
            entity.attributes.retain(|_, instances| {
                instances.retain(|a| wanted.contains(&a.dataset_id));
                !instances.is_empty()
            });
        }
    }

    /// Whether an instance of the attribute `name` (expanded) with `dataset_id` is
    /// shown: what [`Self::apply`] keeps, for histories, which are no entities.
    pub fn shows(&self, name: &str, dataset_id: Option<&str>) -> bool {
        self.attrs
            .as_ref()
            .is_none_or(|keep| keep.iter().any(|k| k == name))
            && self.projection.shows(name)
            && self
                .dataset_ids
                .as_ref()
                .is_none_or(|wanted| wanted.iter().any(|d| d.as_deref() == dataset_id))
    }

    /// Whether `attrs` or `datasetId` select instances (pick and omit only shape
    /// what is shown).
    pub fn selects_instances(&self) -> bool {
        self.attrs.is_some() || self.dataset_ids.is_some()
    }

    /// The expanded names of `attrs`, empty when every attribute is asked for.
    pub fn attribute_names(&self) -> &[String] {
        self.attrs.as_deref().unwrap_or(&[])
    }

    /// Whether pick or omit show neither `id` nor `type`, so that an entity without
    /// attributes to show has nothing left.
    pub fn hides_core(&self) -> bool {
        self.projects_away_core()
    }

    /// Whether a retrieved entity, already filtered with [`Self::apply`], has nothing
    /// to show: none of the attributes asked for, or no member left by pick or omit.
    pub fn leaves_nothing(&self, entity: &Entity) -> bool {
        entity.attributes.is_empty() && (self.attrs.is_some() || self.projects_away_core())
    }

    /// Whether pick or omit leave a queried entity, already filtered, without any
    /// member; `attrs` and `datasetId` leave its `id` and `type`, so it stays listed.
    pub fn projects_everything_away(&self, entity: &Entity) -> bool {
        entity.attributes.is_empty() && self.projects_away_core()
    }

    fn projects_away_core(&self) -> bool {
        !(self.projection.shows("id") || self.projection.shows("type"))
    }

    /// Removes `id` and `type` from a rendered entity when pick or omit say so.
    pub fn finish(&self, rendered: &mut Value) {
        if let Value::Object(map) = rendered {
            for member in ["id", "type"] {
                if !self.projection.shows(member) {
                    map.remove(member);
                }
            }
        }
    }

    /// The filter of an entity linked through the relationship `name` (expanded):
    /// the braced list after it in pick or omit; `attrs` only selects the root's.
    pub fn linked(&self, name: &str) -> AttributeFilter {
        AttributeFilter {
            attrs: None,
            projection: self.projection.linked(name),
            dataset_ids: None,
        }
    }
}

/// How linked entities are shown (clause 4.5.23).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinMode {
    /// Appended to the list of results.
    Flat,
    /// Inside the relationship that links them, as its `entity`.
    Inline,
}

/// `join` and `joinLevel`: which linked entities to retrieve, and how to show them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Join {
    pub mode: JoinMode,
    /// How many relationship hops to follow, at least 1.
    pub levels: usize,
}

/// Deeper joins are refused: every level may multiply the entities read.
pub const MAX_JOIN_LEVEL: usize = 32;

/// Reads the `join` (`flat`, `inline` or `@none`) and `joinLevel` (default 1)
/// query parameters.
pub fn join(params: &Params) -> Result<Option<Join>, NgsiError> {
    parse_join(params.get("join")?, params.usize("joinLevel")?)
}

/// `join` and `joinLevel` however they came (query parameters or a Query document).
pub fn parse_join(mode: Option<&str>, levels: Option<usize>) -> Result<Option<Join>, NgsiError> {
    let mode = match mode {
        None | Some("@none") => None,
        Some("flat") => Some(JoinMode::Flat),
        Some("inline") => Some(JoinMode::Inline),
        Some(other) => {
            return Err(NgsiError::bad_request_data(format!(
                "join '{other}' is not one of flat, inline or @none"
            )))
        }
    };
    let levels = levels.unwrap_or(1);
    if !(1..=MAX_JOIN_LEVEL).contains(&levels) {
        return Err(NgsiError::bad_request_data(format!(
            "joinLevel {levels} is not between 1 and {MAX_JOIN_LEVEL}"
        )));
    }
    Ok(mode.map(|mode| Join { mode, levels }))
}

/// At most this many linked entities are rendered inline for one answer: with many
/// links per entity, each join level multiplies the copies.
const MAX_INLINE_RENDERINGS: usize = 10_000;

/// Renders entities for Retrieve and Query Entities: the format, the members to
/// show, GeoJSON, and the linked entities of a join.
pub struct Renderer<'a> {
    pub ctx: &'a ActiveContext,
    pub options: &'a RenderOptions,
    /// The GeoProperty of GeoJSON answers (expanded); `None` renders NGSI-LD JSON.
    pub geometry: Option<&'a str>,
    pub join: Option<Join>,
    /// The entities the join reaches (see `Broker::linked_entities`).
    pub linked: &'a LinkedEntities,
    inline_budget: Cell<usize>,
}

impl<'a> Renderer<'a> {
    pub fn new(
        ctx: &'a ActiveContext,
        options: &'a RenderOptions,
        geometry: Option<&'a str>,
        join: Option<Join>,
        linked: &'a LinkedEntities,
    ) -> Renderer<'a> {
        Renderer {
            ctx,
            options,
            geometry,
            join,
            linked,
            inline_budget: Cell::new(MAX_INLINE_RENDERINGS),
        }
    }

    /// Renders entities already filtered with `filter`, followed, for a flat join, by
    /// each entity they link to (once, in the order first reached).
    pub fn render_all(&self, entities: &[Entity], filter: &AttributeFilter) -> Vec<Value> {
        let mut out: Vec<Value> = entities.iter().map(|e| self.render(e, filter, 0)).collect();
        if self.join.is_some_and(|j| j.mode == JoinMode::Flat) {
            let mut emitted: BTreeSet<String> = entities.iter().map(|e| e.id.clone()).collect();
            for entity in entities {
                self.flat_linked(entity, filter, 0, &mut emitted, &mut out);
            }
        }
        out
    }

    /// Whether answers can be written straight from the model as JSON text
    /// ([`Self::write_one`], [`Self::write_list`]): GeoJSON and flat joins reshape
    /// rendered `Value`s and take [`Self::render_all`].
    pub fn streams(&self) -> bool {
        self.geometry.is_none() && self.join.is_none_or(|j| j.mode == JoinMode::Inline)
    }

    /// One entity, already filtered, as JSON text ending with `context` as its
    /// `@context` member when given (JSON-LD answers).
    pub fn write_one(
        &self,
        entity: &Entity,
        filter: &AttributeFilter,
        context: Option<&str>,
    ) -> Result<Vec<u8>, NgsiError> {
        written(serde_json::to_vec(&Streamed {
            renderer: self,
            entity,
            filter,
            context,
        }))
    }

    /// Entities, already filtered, as a JSON array, each ending with `context` when
    /// given.
    pub fn write_list(
        &self,
        entities: &[Entity],
        filter: &AttributeFilter,
        context: Option<&str>,
    ) -> Result<Vec<u8>, NgsiError> {
        let list: Vec<Streamed<'_>> = entities
            .iter()
            .map(|entity| Streamed {
                renderer: self,
                entity,
                filter,
                context,
            })
            .collect();
        written(serde_json::to_vec(&list))
    }

    /// One entity, already filtered, `depth` hops away from the entity asked for.
    pub fn render(&self, entity: &Entity, filter: &AttributeFilter, depth: usize) -> Value {
        let inline =
            |name: &str, attribute: &Attribute| self.inline(name, attribute, filter, depth);
        match self.geometry {
            Some(geometry) => {
                codec::encode_geojson_feature(entity, self.ctx, self.options, geometry)
            }
            None => {
                let mut value =
                    codec::encode_entity_joined(entity, self.ctx, self.options, &inline);
                filter.finish(&mut value);
                value
            }
        }
    }

    /// The linked entities shown inside one relationship instance for `join=inline`.
    fn inline(
        &self,
        name: &str,
        attribute: &Attribute,
        filter: &AttributeFilter,
        depth: usize,
    ) -> Option<Value> {
        let join = self.join?;
        let AttributeValue::Relationship { object, .. } = &attribute.value else {
            return None;
        };
        if join.mode != JoinMode::Inline || depth >= join.levels {
            return None;
        }
        let linked_filter = filter.linked(name);
        let mut rendered = Vec::new();
        for id in targets(object) {
            let Some(target) = self.linked.get(id) else {
                continue;
            };
            let budget = self.inline_budget.get();
            if budget == 0 {
                break;
            }
            self.inline_budget.set(budget - 1);
            let mut target = target.clone();
            linked_filter.apply(&mut target);
            rendered.push(self.render(&target, &linked_filter, depth + 1));
        }
        match object {
            RelationshipObject::One(_) => rendered.into_iter().next(),
            RelationshipObject::Many(_) => (!rendered.is_empty()).then_some(Value::Array(rendered)),
        }
    }

    /// Appends, depth first, the entities `entity` links to for `join=flat`.
    fn flat_linked(
        &self,
        entity: &Entity,
        filter: &AttributeFilter,
        depth: usize,
        emitted: &mut BTreeSet<String>,
        out: &mut Vec<Value>,
    ) {
        let Some(join) = self.join else { return };
        if depth >= join.levels {
            return;
        }
        for (name, instances) in &entity.attributes {
            for attribute in instances {
                let AttributeValue::Relationship { object, .. } = &attribute.value else {
                    continue;
                };
                for id in targets(object) {
                    let Some(target) = self.linked.get(id) else {
                        continue;
                    };
                    if !emitted.insert(id.to_owned()) {
                        continue;
                    }
                    let linked_filter = filter.linked(name);
                    let mut target = target.clone();
                    linked_filter.apply(&mut target);
                    out.push(self.render(&target, &linked_filter, depth + 1));
                    self.flat_linked(&target, &linked_filter, depth + 1, emitted, out);
                }
            }
        }
    }
}

/// One top-level entity of an answer, serialized straight from the model with its
/// inline joins (see [`Renderer::streams`]).
struct Streamed<'r> {
    renderer: &'r Renderer<'r>,
    entity: &'r Entity,
    filter: &'r AttributeFilter,
    context: Option<&'r str>,
}

impl serde::Serialize for Streamed<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let Streamed {
            renderer,
            entity,
            filter,
            context,
        } = self;
        let inline =
            |name: &str, attribute: &Attribute| renderer.inline(name, attribute, filter, 0);
        codec::EntityJson::new(entity, renderer.ctx, renderer.options)
            .linked(&inline)
            .members(
                filter.projection.shows("id"),
                filter.projection.shows("type"),
            )
            .with_context(*context)
            .serialize(serializer)
    }
}

/// An answer written as JSON text; writing into memory fails only on a map key that
/// is not a string, which a rendered entity never has.
fn written(text: Result<Vec<u8>, serde_json::Error>) -> Result<Vec<u8>, NgsiError> {
    text.map_err(|err| {
        NgsiError::new(
            ngsi_ld::ProblemType::InternalError,
            format!("the answer could not be written as JSON: {err}"),
        )
    })
}

fn targets(object: &RelationshipObject) -> Vec<&str> {
    match object {
        RelationshipObject::One(id) => vec![id.as_str()],
        RelationshipObject::Many(ids) => ids.iter().map(String::as_str).collect(),
    }
}

/// Whether a query names a selector besides entity ids (clause 5.7.2.4): `id` and
/// `idPattern` only narrow one of type, attrs, q, geoQ or scopeQ, so a query without
/// any of those would list the tenant and is refused unless it is local.
pub fn selects_something(query: &EntityQuery) -> bool {
    query.types.is_some()
        || !query.attrs.is_empty()
        || query.q.is_some()
        || query.geo_q.is_some()
        || query.scope_q.is_some()
}

/// The raw query string with every `+` inside a quoted string of `q` turned into an
/// encoded space. Form encoders (Python requests, `URLSearchParams`, Java's
/// `URLEncoder`) write a space as `+` and a plus as `%2B`; the parameters are otherwise
/// decoded without that rule (see `params`) so that unquoted `+` keeps its meaning in
/// dates and scopes. Inside a quoted `q` string a raw `+` can only be such a space.
pub fn form_spaces_in_q(raw_query: &str) -> String {
    raw_query
        .split('&')
        .map(|pair| match pair.split_once('=') {
            Some(("q", value)) => format!("q={}", quoted_pluses_to_spaces(value)),
            _ => pair.to_owned(),
        })
        .collect::<Vec<_>>()
        .join("&")
}

fn quoted_pluses_to_spaces(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    let mut quoted = false;
    let mut rest = value;
    while let Some(c) = rest.chars().next() {
        // A quote or backslash may come percent-encoded or as itself.
        let (unit, decoded) = match rest.get(..3) {
            Some(e) if e.eq_ignore_ascii_case("%22") => (e, '"'),
            Some(e) if e.eq_ignore_ascii_case("%5C") => (e, '\\'),
            _ => (rest.get(..c.len_utf8()).unwrap_or(""), c),
        };
        rest = rest.get(unit.len()..).unwrap_or("");
        match decoded {
            '"' => quoted = !quoted,
            '+' if quoted => {
                out.push_str("%20");
                continue;
            }
            '\\' if quoted => {
                // The escaped character is copied as it is, whatever it is.
                out.push_str(unit);
                if let Some(next) = rest.chars().next() {
                    let len = if next == '%' { 3 } else { next.len_utf8() };
                    let escaped = rest.get(..len).unwrap_or(rest);
                    out.push_str(escaped);
                    rest = rest.get(escaped.len()..).unwrap_or("");
                }
                continue;
            }
            _ => {}
        }
        out.push_str(unit);
    }
    out
}

/// Applies `attrs`/`pick`/`omit` to a page of query results, drops the entities that
/// they leave empty (clause 4.21), and fetches the entities linked from the rest when
/// a join is asked for.
pub async fn project_page(
    broker: &broker::Broker,
    request: &super::NgsiRequest,
    entities: &mut Vec<Entity>,
    filter: &AttributeFilter,
    join: Option<Join>,
) -> Result<LinkedEntities, NgsiError> {
    for entity in entities.iter_mut() {
        filter.apply(entity);
    }
    entities.retain(|entity| !filter.projects_everything_away(entity));
    match join {
        Some(join) => {
            let roots: Vec<&Entity> = entities.iter().collect();
            broker
                .linked_entities(&request.tenant, &roots, join.levels, &request.visibility)
                .await
        }
        None => Ok(LinkedEntities::default()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pluses_in_quoted_q_strings_are_spaces() {
        assert_eq!(
            form_spaces_in_q("type=A&q=name%3D%3D%22Eiffel+Tower%22%3Bn%3E1&x=a+b"),
            "type=A&q=name%3D%3D%22Eiffel%20Tower%22%3Bn%3E1&x=a+b"
        );
        // Unquoted pluses (a time zone) and encoded pluses stay pluses.
        assert_eq!(
            form_spaces_in_q("q=at>2024-01-01T00:00:00+09:00;name==\"a%2Bb+c\""),
            "q=at>2024-01-01T00:00:00+09:00;name==\"a%2Bb%20c\""
        );
        // An escaped quote does not end the string.
        assert_eq!(
            form_spaces_in_q("q=name==\"a\\\"+b\"+"),
            "q=name==\"a\\\"%20b\"+"
        );
    }

    #[test]
    fn quantifiers_on_quantifiers_are_refused_but_lazy_ones_allowed() {
        for bad in ["a**", "a+*", "a{2}*", "a*{2}", "a???"] {
            assert!(check_id_pattern(bad).is_err(), "{bad}");
        }
        for good in ["a*?", "a+?", "(?i)a", "[*+]+", "a\\**", "a{2}?"] {
            assert!(check_id_pattern(good).is_ok(), "{good}");
        }
    }
}
