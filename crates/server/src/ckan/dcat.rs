//! The catalog as linked data: `/catalog.{jsonld,ttl,xml,rdf}` (paged by
//! `page`, filtered by `modified_since`, newest first, as ckanext-dcat pages
//! it) and `/dataset/{id or name}.{jsonld,ttl,xml,rdf}`, in DCAT-AP 3 shapes
//! built by `catalog::dcat`. Only open datasets are ever described.

use axum::extract::{Path as UrlPath, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use catalog::ckan::Organization;
use catalog::dcat::{catalog_graph, dataset_graph, CatalogInfo, Format, Iri, Page};
use catalog::package::{parse_timestamp, Package};
use std::collections::HashMap;
use std::sync::Arc;

use crate::AppState;

/// Datasets per catalog page.
const PAGE_SIZE: u64 = 100;

fn refused(status: StatusCode, message: &str) -> Response {
    (status, message.to_owned()).into_response()
}

fn internal(e: impl std::fmt::Display) -> Response {
    tracing::error!(error = %e, "DCAT answer failed");
    refused(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error")
}

/// What the catalog says of itself: the platform's URL, and as publisher the
/// registered prefecture (the one running the platform), or the first tenant.
async fn catalog_info(state: &AppState) -> Result<CatalogInfo, Response> {
    let base_url = Iri::parse(state.config.public_url.trim_end_matches('/')).map_err(internal)?;
    let orgs = state.catalog.organizations().await.map_err(internal)?;
    let mut tenants: Vec<_> = orgs.values().collect();
    tenants.sort_by(|a, b| a.code.cmp(&b.code));
    let operator = tenants
        .iter()
        .find(|t| t.prefecture_code().is_none())
        .or(tenants.first());
    let publisher = match operator {
        Some(t) => Organization::from(*t),
        None => {
            return Err(refused(
                StatusCode::NOT_FOUND,
                "the catalog has no organisation yet",
            ))
        }
    };
    let modified = state
        .catalog
        .with_index(|index| {
            index
                .packages()
                .filter(|p| p.is_open())
                .map(|p| p.metadata_modified)
                .max()
        })
        .await
        .map_err(internal)?
        .unwrap_or(publisher.created);
    Ok(CatalogInfo {
        base_url,
        title_ja: "オープンデータカタログ".into(),
        title_en: "Open data catalog".into(),
        description_ja: "県・市町村共同利用のデータ連携基盤 renkei のオープンデータ".into(),
        description_en:
            "Open data of the renkei platform shared by a prefecture and its municipalities".into(),
        publisher,
        modified,
    })
}

fn organization_of(
    orgs: &HashMap<String, identity::tenant::TenantRecord>,
    package: &Package,
) -> Option<Organization> {
    orgs.get(&package.owner_org).map(Organization::from)
}

fn answer(format: Format, body: String) -> Response {
    ([(header::CONTENT_TYPE, format.content_type())], body).into_response()
}

/// `GET /catalog.{ext}`.
pub async fn catalog_page(
    State(state): State<AppState>,
    uri: axum::http::Uri,
    Query(query): Query<HashMap<String, String>>,
) -> Response {
    let Some(format) = uri
        .path()
        .strip_prefix("/catalog.")
        .and_then(Format::from_extension)
    else {
        return refused(StatusCode::NOT_FOUND, "Not found");
    };
    let number: u64 = match query.get("page").map(|p| p.parse::<u64>()) {
        None => 1,
        Some(Ok(n)) if n >= 1 => n,
        Some(_) => {
            return refused(
                StatusCode::BAD_REQUEST,
                "page must be a whole number from 1",
            )
        }
    };
    let modified_since = match query.get("modified_since") {
        None => None,
        Some(text) => match parse_timestamp(text) {
            Some(t) => Some(t),
            None => {
                return refused(
                    StatusCode::BAD_REQUEST,
                    "modified_since is not a date or date-time",
                )
            }
        },
    };
    let info = match catalog_info(&state).await {
        Ok(info) => info,
        Err(response) => return response,
    };
    let mut open: Vec<Arc<Package>> = match state
        .catalog
        .with_index(|index| {
            index
                .packages()
                .filter(|p| p.is_open())
                .filter(|p| modified_since.is_none_or(|since| p.metadata_modified >= since))
                .cloned()
                .collect()
        })
        .await
    {
        Ok(list) => list,
        Err(e) => return internal(e),
    };
    open.sort_by(|a, b| {
        b.metadata_modified
            .cmp(&a.metadata_modified)
            .then_with(|| a.name.cmp(&b.name))
    });
    let orgs = match state.catalog.organizations().await {
        Ok(orgs) => orgs,
        Err(e) => return internal(e),
    };
    let page = Page {
        number,
        size: PAGE_SIZE,
        total: open.len() as u64,
        modified_since,
        format,
    };
    let datasets: Vec<(Package, Organization)> = open
        .iter()
        .skip(((number - 1) * PAGE_SIZE) as usize)
        .take(PAGE_SIZE as usize)
        .filter_map(|p| organization_of(&orgs, p).map(|o| ((**p).clone(), o)))
        .collect();
    answer(
        format,
        catalog_graph(&info, &datasets, &page).serialize(format),
    )
}

/// `GET /dataset/{id or name}.{ext}`.
pub async fn dataset(State(state): State<AppState>, UrlPath(file): UrlPath<String>) -> Response {
    let Some((key, format)) = file
        .rsplit_once('.')
        .and_then(|(key, ext)| Format::from_extension(ext).map(|f| (key.to_owned(), f)))
    else {
        return refused(StatusCode::NOT_FOUND, "Not found");
    };
    let info = match catalog_info(&state).await {
        Ok(info) => info,
        Err(response) => return response,
    };
    let package = match state
        .catalog
        .package_show(&key, &catalog::service::Anonymous)
        .await
    {
        Ok(package) if package.is_open() => package,
        Ok(_) | Err(catalog::service::CatalogError::NotFound(_)) => {
            return refused(StatusCode::NOT_FOUND, "Not found")
        }
        Err(e) => return internal(e),
    };
    let orgs = match state.catalog.organizations().await {
        Ok(orgs) => orgs,
        Err(e) => return internal(e),
    };
    let Some(org) = organization_of(&orgs, &package) else {
        return refused(StatusCode::NOT_FOUND, "Not found");
    };
    match dataset_graph(&info, &package, &org) {
        Ok(graph) => answer(format, graph.serialize(format)),
        Err(_) => refused(StatusCode::NOT_FOUND, "Not found"),
    }
}
