//! The actions of the Action API on datasets, resources, organisations,
//! groups, tags, licences and tokens: each reads its parameters, calls the
//! catalog and renders CKAN's dictionaries.

use catalog::ckan::{group_dict, license_dict, package_dict, resource_dict, Organization};
use catalog::package::Package;
use catalog::search::{parse_fq, SearchQuery, SearchRequest, Sort};
use catalog::service::Access;
use catalog::vocabulary::{self, CATEGORIES, LICENSES};
use serde_json::{json, Value};

use super::{ActionResult, CallerAccess, CkanError, Params};
use crate::AppState;

/// The most rows `package_search` gives at once, as CKAN's default
/// `ckan.search.rows_max`.
const ROWS_MAX: usize = 1000;

pub async fn run(
    state: &AppState,
    action: &str,
    params: Params,
    access: &CallerAccess,
) -> ActionResult {
    let catalog = &state.catalog;
    match action {
        "status_show" => Ok(json!({
            "site_title": "renkei",
            "site_url": state.config.public_url,
            "site_description": "県・市町村共同利用のデータ連携基盤 / shared data platform of a prefecture and its municipalities",
            "ckan_version": "2.10.4",
            "api_version": 3,
            "locale_default": "ja",
            "extensions": ["datastore", "dcat"],
        })),
        "package_list" => {
            let names = catalog
                .package_list(params.usize("limit")?, params.usize("offset")?.unwrap_or(0))
                .await?;
            Ok(json!(names))
        }
        "package_show" => {
            let package = catalog.package_show(params.required("id")?, access).await?;
            render(state, &package).await
        }
        "package_search" => package_search(state, &params, access).await,
        "package_create" => {
            let package = catalog.package_create(&params.map, access).await?;
            render(state, &package).await
        }
        "package_update" | "package_patch" => {
            let package = catalog
                .package_update(&params.map, action == "package_patch", access)
                .await?;
            render(state, &package).await
        }
        "package_delete" => {
            let package = catalog
                .package_delete(params.required("id")?, access)
                .await?;
            super::publish::withdraw_package(state, &package).await?;
            Ok(Value::Null)
        }
        "dataset_purge" => {
            let package = catalog
                .package_purge(params.required("id")?, access)
                .await?;
            super::publish::withdraw_package(state, &package).await?;
            super::datastore::drop_tables_of(state, &package).await?;
            Ok(Value::Null)
        }
        "resource_show" => {
            let id = params.required("id")?;
            let package = catalog.resource_package(id, access).await?;
            resource_of(&package, id)
        }
        "resource_create" | "resource_update" | "resource_patch" => {
            super::upload::write_resource(state, action, params, access).await
        }
        "resource_delete" => {
            let id = params.required("id")?;
            super::publish::withdraw_resource(state, id, access).await?;
            catalog.resource_delete(id, access).await?;
            state.datastore.drop_table(id).await.map_err(internal)?;
            Ok(Value::Null)
        }
        "organization_list" => organization_list(state, &params).await,
        "organization_show" => organization_show(state, &params, access).await,
        "group_list" => group_list(state, &params).await,
        "group_show" => {
            let id = params.required("id")?;
            let category = vocabulary::category(id)
                .ok_or_else(|| CkanError::NotFound(format!("Group not found: {id}")))?;
            let counts = counts_by(state, |p| p.groups.clone()).await?;
            Ok(group_dict(
                category,
                Some(*counts.get(category.name).unwrap_or(&0)),
            ))
        }
        "tag_list" => {
            let query = params.str("query").map(catalog::search::fold);
            let mut tags: Vec<String> = catalog
                .with_index(|index| {
                    index
                        .packages()
                        .filter(|p| p.is_open())
                        .flat_map(|p| p.tags.iter().cloned())
                        .collect()
                })
                .await?;
            tags.sort_unstable();
            tags.dedup();
            if let Some(q) = query {
                tags.retain(|t| catalog::search::fold(t).contains(&q));
            }
            Ok(json!(tags))
        }
        "license_list" => Ok(Value::Array(LICENSES.iter().map(license_dict).collect())),
        "api_token_create" => super::tokens::api_token_create(state, &params, access).await,
        "help_show" => Ok(json!(format!(
            "renkei implements CKAN's {} action; see https://docs.ckan.org/en/2.10/api/",
            params.str("name").unwrap_or("")
        ))),
        action if action.starts_with("harvest_") => {
            super::harvest::run(state, action, params, access).await
        }
        action if action.starts_with("datastore_") => {
            super::datastore::run(state, action, params, access).await
        }
        other => Err(CkanError::BadRequest(format!(
            "Bad request - Action name not known: {other}"
        ))),
    }
}

pub fn internal(e: impl std::fmt::Display) -> CkanError {
    CkanError::Internal(e.to_string())
}

/// A package's dictionary with its organisation.
pub async fn render(state: &AppState, package: &Package) -> ActionResult {
    let org = state.catalog.organization(&package.owner_org).await?;
    Ok(package_dict(package, org.as_ref()))
}

pub fn resource_of(package: &Package, id: &str) -> ActionResult {
    package
        .resources
        .iter()
        .position(|r| r.id == id)
        .map(|i| resource_dict(package, i, &package.resources[i]))
        .ok_or_else(|| CkanError::NotFound(format!("Resource was not found: {id}")))
}

async fn package_search(state: &AppState, params: &Params, access: &CallerAccess) -> ActionResult {
    let rows = params.usize("rows")?.unwrap_or(10);
    if rows > ROWS_MAX {
        return Err(CkanError::field(
            "rows",
            format!("Must be less than or equal to {ROWS_MAX}"),
        ));
    }
    let fq = params.str("fq").unwrap_or("");
    let filters = parse_fq(fq).map_err(|e| CkanError::field("fq", e.to_string()))?;
    let sort =
        Sort::parse(params.str("sort").unwrap_or("")).map_err(|e| CkanError::field("sort", e))?;
    let facet_limit = match params.map.get("facet.limit") {
        Some(Value::String(s)) if s.trim() == "-1" => None,
        Some(Value::Number(n)) if n.as_i64() == Some(-1) => None,
        _ => Some(params.usize("facet.limit")?.unwrap_or(50)),
    };
    let request = SearchRequest {
        query: SearchQuery::parse(params.str("q").unwrap_or("")),
        filters,
        sort,
        start: params.usize("start")?.unwrap_or(0),
        rows,
        facet_fields: params.list("facet.field")?,
        facet_limit,
        facet_mincount: params.usize("facet.mincount")?.unwrap_or(1),
    };
    let include_private = params.bool("include_private")?.unwrap_or(false);
    let mut found = state
        .catalog
        .package_search(&request, include_private, access)
        .await?;
    let orgs = state.catalog.organizations().await?;
    found.facets.set_display_names("organization", |code| {
        orgs.get(code).map(|t| t.name.clone())
    });
    found.facets.set_display_names("groups", |name| {
        vocabulary::category(name).map(|c| c.title_ja.to_owned())
    });
    let mut results = Vec::with_capacity(found.packages.len());
    for package in &found.packages {
        let org = orgs.get(&package.owner_org).map(Organization::from);
        results.push(package_dict(package, org.as_ref()));
    }
    Ok(json!({
        "count": found.count,
        "results": results,
        "facets": found.facets.to_legacy_facets(),
        "search_facets": found.facets,
        "sort": params.str("sort").unwrap_or("score desc, metadata_modified desc"),
    }))
}

/// How many open datasets each value of `key` has.
async fn counts_by(
    state: &AppState,
    key: impl Fn(&Package) -> Vec<String>,
) -> Result<std::collections::HashMap<String, usize>, CkanError> {
    Ok(state
        .catalog
        .with_index(|index| {
            let mut counts = std::collections::HashMap::new();
            for p in index.packages().filter(|p| p.is_open()) {
                for k in key(p) {
                    *counts.entry(k).or_insert(0) += 1;
                }
            }
            counts
        })
        .await?)
}

async fn organization_list(state: &AppState, params: &Params) -> ActionResult {
    let orgs = state.catalog.organizations().await?;
    let mut list: Vec<_> = orgs.values().collect();
    list.sort_by(|a, b| a.code.cmp(&b.code));
    let offset = params.usize("offset")?.unwrap_or(0);
    let limit = params.usize("limit")?.unwrap_or(usize::MAX);
    let page = list.into_iter().skip(offset).take(limit);
    if params.bool("all_fields")?.unwrap_or(false) {
        let counts = counts_by(state, |p| vec![p.owner_org.clone()]).await?;
        Ok(Value::Array(
            page.map(|t| Organization::from(t).dict(Some(*counts.get(&t.code).unwrap_or(&0))))
                .collect(),
        ))
    } else {
        Ok(json!(page.map(|t| t.code.clone()).collect::<Vec<_>>()))
    }
}

async fn organization_show(
    state: &AppState,
    params: &Params,
    access: &CallerAccess,
) -> ActionResult {
    let id = params.required("id")?;
    let org = state
        .catalog
        .organization(id)
        .await?
        .ok_or_else(|| CkanError::NotFound(format!("Organization not found: {id}")))?;
    let packages: Vec<std::sync::Arc<Package>> = state
        .catalog
        .with_index(|index| {
            index
                .packages()
                .filter(|p| {
                    p.owner_org == org.code
                        && p.state == catalog::package::State::Active
                        && (!p.private || access.can_read_private(&p.owner_org))
                })
                .cloned()
                .collect()
        })
        .await?;
    let mut dict = org.dict(Some(packages.len()));
    if params.bool("include_datasets")?.unwrap_or(false) {
        dict["packages"] = Value::Array(
            packages
                .iter()
                .take(1000)
                .map(|p| package_dict(p, Some(&org)))
                .collect(),
        );
    }
    Ok(dict)
}

async fn group_list(state: &AppState, params: &Params) -> ActionResult {
    if params.bool("all_fields")?.unwrap_or(false) {
        let counts = counts_by(state, |p| p.groups.clone()).await?;
        Ok(Value::Array(
            CATEGORIES
                .iter()
                .map(|c| group_dict(c, Some(*counts.get(c.name).unwrap_or(&0))))
                .collect(),
        ))
    } else {
        Ok(json!(CATEGORIES.iter().map(|c| c.name).collect::<Vec<_>>()))
    }
}
