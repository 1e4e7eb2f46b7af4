//! Turning query-string parameters into an [`EntityQuery`] and rendering options:
//! the parameters of Query Entities (clause 6.4.3.2), Retrieve Entity (6.5.3.1) and
//! Purge (6.4.3.3), parsed with `ngsi-ld`'s parsers and expanded with the request's
//! `@context` so that the store sees only IRIs.

use super::params::Params;
use ngsi_ld::context::{ActiveContext, Format, RenderOptions};
use ngsi_ld::model::Entity;
use ngsi_ld::query::attrs::Projection;
use ngsi_ld::query::{geo, q, scope, types, EntityQuery};
use ngsi_ld::NgsiError;

/// Entities per page when the client does not say (clause 6.4.3.2, `limit`).
pub const DEFAULT_PAGE_SIZE: usize = 20;

/// The selection parameters of a query, parsed but not yet expanded.
pub fn entity_query(params: &Params, ctx: &ActiveContext) -> Result<EntityQuery, NgsiError> {
    let mut query = EntityQuery {
        types: params.get("type")?.map(types::parse).transpose()?,
        ids: params.list("id")?,
        id_pattern: params.get("idPattern")?.map(str::to_owned),
        attrs: params.list("attrs")?,
        q: params.get("q")?.map(q::parse).transpose()?,
        scope_q: params.get("scopeQ")?.map(scope::parse).transpose()?,
        geo_q: geo_query(params)?,
        limit: params.usize("limit")?.unwrap_or(DEFAULT_PAGE_SIZE),
        offset: params.usize("offset")?.unwrap_or(0),
        count: params.bool("count")?,
    };
    if let Some(pattern) = &query.id_pattern {
        regex::Regex::new(pattern).map_err(|e| {
            NgsiError::bad_request_data(format!("idPattern is not a valid regular expression: {e}"))
        })?;
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
            other => {
                return Err(NgsiError::bad_request_data(format!(
                    "unknown option '{other}'"
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
                return Err(NgsiError::bad_request_data(format!(
                    "unknown format '{other}'"
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

/// Which attributes of an entity are shown: `attrs`, `pick` and `omit`.
pub struct AttributeFilter {
    keep: Option<Vec<String>>,
    omit: Vec<String>,
}

impl AttributeFilter {
    pub fn from_params(params: &Params, ctx: &ActiveContext) -> Result<AttributeFilter, NgsiError> {
        let expand = |names: Vec<String>| -> Vec<String> {
            names.iter().map(|n| ctx.expand_iri(n, true)).collect()
        };
        let attrs = params.list("attrs")?;
        let projection = Projection::parse(params.get("pick")?, params.get("omit")?)?;
        let mut keep = (!attrs.is_empty()).then(|| expand(attrs));
        let mut omit = Vec::new();
        match projection {
            Projection::All => {}
            Projection::Pick(names) => {
                let picked = expand(names);
                keep = Some(match keep {
                    Some(k) => k.into_iter().filter(|n| picked.contains(n)).collect(),
                    None => picked,
                });
            }
            Projection::Omit(names) => omit = expand(names),
        }
        Ok(AttributeFilter { keep, omit })
    }

    pub fn apply(&self, entity: &mut Entity) {
        if let Some(keep) = &self.keep {
            entity.attributes.retain(|name, _| keep.contains(name));
        }
        entity
            .attributes
            .retain(|name, _| !self.omit.contains(name));
    }
}
