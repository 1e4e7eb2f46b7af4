//! The CKAN dictionaries the Action API answers with: packages, resources,
//! organisations (renkei's tenants), groups (the 17 categories), tags and licences,
//! in the shapes CKAN 2.10 gives them, so that `ckanapi` and harvesters read
//! renkei as they read CKAN.

use serde_json::{json, Map, Value};

use crate::package::{format_timestamp, Package, Resource};
use crate::vocabulary::{self, Category, License};

/// What the dictionaries need to know of an organisation.
#[derive(Debug, Clone, PartialEq)]
pub struct Organization {
    /// The 全国地方公共団体コード; it is both the CKAN id and name.
    pub code: String,
    /// The official name (`焼津市`).
    pub title: String,
    pub created: chrono::DateTime<chrono::Utc>,
}

impl From<&identity::tenant::TenantRecord> for Organization {
    fn from(tenant: &identity::tenant::TenantRecord) -> Self {
        Organization {
            code: tenant.code.clone(),
            title: tenant.name.clone(),
            created: tenant.created_at,
        }
    }
}

impl Organization {
    /// CKAN's organisation dictionary (`package_count` only when known).
    pub fn dict(&self, package_count: Option<usize>) -> Value {
        let mut dict = json!({
            "id": self.code,
            "name": self.code,
            "title": self.title,
            "display_name": self.title,
            "type": "organization",
            "description": "",
            "image_url": "",
            "image_display_url": "",
            "created": format_timestamp(&self.created),
            "is_organization": true,
            "approval_status": "approved",
            "state": "active",
        });
        if let Some(n) = package_count {
            dict["package_count"] = json!(n);
        }
        dict
    }
}

/// CKAN's group dictionary for a category.
pub fn group_dict(category: &Category, package_count: Option<usize>) -> Value {
    let mut dict = json!({
        "id": category.name,
        "name": category.name,
        "title": category.title_ja,
        "display_name": category.title_ja,
        "description": category.title_en,
        "type": "group",
        "image_url": "",
        "image_display_url": "",
        "is_organization": false,
        "approval_status": "approved",
        "state": "active",
    });
    if let Some(n) = package_count {
        dict["package_count"] = json!(n);
    }
    dict
}

/// CKAN's licence dictionary (`license_list`).
pub fn license_dict(license: &License) -> Value {
    json!({
        "id": license.id,
        "title": license.title,
        "url": license.url,
        "od_conformance": if license.open { "approved" } else { "not reviewed" },
        "osd_conformance": "not reviewed",
        "status": "active",
        "maintainer": "",
        "family": "",
        "is_generic": false,
    })
}

/// CKAN's resource dictionary.
pub fn resource_dict(package: &Package, position: usize, resource: &Resource) -> Value {
    let mut dict = Map::new();
    let mut put = |k: &str, v: Value| {
        dict.insert(k.to_owned(), v);
    };
    put("id", json!(resource.id));
    put("package_id", json!(package.id));
    put("url", json!(resource.url));
    put("name", json!(resource.name));
    put("description", json!(resource.description));
    put("format", json!(resource.format));
    put("mimetype", json!(resource.mimetype));
    put("size", json!(resource.size));
    put("hash", json!(resource.hash.clone().unwrap_or_default()));
    put("url_type", json!(resource.url_type));
    put("created", json!(format_timestamp(&resource.created)));
    put(
        "last_modified",
        json!(resource.last_modified.as_ref().map(format_timestamp)),
    );
    put(
        "metadata_modified",
        json!(format_timestamp(&resource.metadata_modified)),
    );
    put("position", json!(position));
    put("state", json!("active"));
    put("datastore_active", json!(resource.datastore_active));
    if let Some(report) = &resource.validation {
        put("validation", report.clone());
    }
    for (k, v) in &resource.extras {
        dict.entry(k.clone()).or_insert_with(|| v.clone());
    }
    Value::Object(dict)
}

/// CKAN's package dictionary, resources and organisation included.
pub fn package_dict(package: &Package, organization: Option<&Organization>) -> Value {
    let license: Option<&License> = package.license();
    let tags: Vec<Value> = package
        .tags
        .iter()
        .map(|t| json!({"name": t, "display_name": t, "state": "active", "vocabulary_id": null}))
        .collect();
    let groups: Vec<Value> = package
        .groups
        .iter()
        .filter_map(|g| vocabulary::category(g))
        .map(|c| {
            json!({
                "id": c.name, "name": c.name, "title": c.title_ja,
                "display_name": c.title_ja, "description": c.title_en,
                "image_display_url": "",
            })
        })
        .collect();
    let extras: Vec<Value> = package
        .extras
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect();
    let resources: Vec<Value> = package
        .resources
        .iter()
        .enumerate()
        .map(|(i, r)| resource_dict(package, i, r))
        .collect();
    json!({
        "id": package.id,
        "name": package.name,
        "title": package.title,
        "type": "dataset",
        "notes": package.notes,
        "url": package.url,
        "version": package.version,
        "author": package.author,
        "author_email": package.author_email,
        "maintainer": package.maintainer,
        "maintainer_email": package.maintainer_email,
        "license_id": package.license_id,
        "license_title": license.map(|l| l.title),
        "license_url": license.map(|l| l.url),
        "isopen": license.is_some_and(|l| l.open),
        "owner_org": package.owner_org,
        "organization": organization.map(|o| o.dict(None)),
        "private": package.private,
        "state": package.state.as_str(),
        "metadata_created": format_timestamp(&package.metadata_created),
        "metadata_modified": format_timestamp(&package.metadata_modified),
        "creator_user_id": package.creator_user_id,
        "num_resources": package.resources.len(),
        "num_tags": package.tags.len(),
        "tags": tags,
        "groups": groups,
        "extras": extras,
        "resources": resources,
        "relationships_as_object": [],
        "relationships_as_subject": [],
    })
}
