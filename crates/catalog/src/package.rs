//! Datasets (CKAN "packages") and their resources as the catalog keeps them, and
//! the rules that turn what a CKAN client sends (`package_create`,
//! `package_update`, `package_patch`, `resource_*`) into them. Errors come as
//! CKAN's validation dictionary, field name to messages, so a client learns
//! every problem of a request at once.
//!
//! Two choices differ from stock CKAN on purpose, both so that no data is lost
//! by accident: `package_update` without a `resources` key keeps the resources
//! (an update that means to remove them sends `"resources": []`), and an unknown
//! licence or category is an error instead of being stored as an opaque string.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::vocabulary;

/// Field name → messages, CKAN's `ValidationError` dictionary.
pub type FieldErrors = BTreeMap<String, Vec<String>>;

/// Whether a package is visible in the catalog.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum State {
    Active,
    Draft,
    Deleted,
}

impl State {
    pub fn as_str(self) -> &'static str {
        match self {
            State::Active => "active",
            State::Draft => "draft",
            State::Deleted => "deleted",
        }
    }
}

/// A dataset as stored.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Package {
    pub id: String,
    pub name: String,
    pub title: String,
    pub notes: Option<String>,
    pub url: Option<String>,
    pub version: Option<String>,
    pub author: Option<String>,
    pub author_email: Option<String>,
    pub maintainer: Option<String>,
    pub maintainer_email: Option<String>,
    pub license_id: Option<String>,
    /// The owning organisation: a tenant's 全国地方公共団体コード.
    pub owner_org: String,
    pub private: bool,
    pub state: State,
    pub tags: Vec<String>,
    /// Category (group) names, see [`vocabulary::CATEGORIES`].
    pub groups: Vec<String>,
    pub extras: Vec<(String, String)>,
    pub resources: Vec<Resource>,
    pub metadata_created: DateTime<Utc>,
    pub metadata_modified: DateTime<Utc>,
    pub creator_user_id: Option<String>,
}

/// One resource (distribution) of a dataset.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Resource {
    pub id: String,
    pub url: String,
    pub name: Option<String>,
    pub description: Option<String>,
    /// Upper-case format (`CSV`, `XLSX`, `PDF`, …), guessed from the URL when not given.
    pub format: String,
    pub mimetype: Option<String>,
    pub size: Option<i64>,
    pub hash: Option<String>,
    /// `upload` when the file was uploaded to renkei.
    pub url_type: Option<String>,
    pub created: DateTime<Utc>,
    pub last_modified: Option<DateTime<Utc>>,
    pub metadata_modified: DateTime<Utc>,
    /// Whether a datastore table holds the resource's rows.
    pub datastore_active: bool,
    /// The validation report of the uploaded file (see [`crate::ingest`]), kept
    /// with the resource and shown by the API.
    pub validation: Option<Value>,
    /// Any other keys the client sent, kept and returned as CKAN does.
    pub extras: Map<String, Value>,
}

/// The keys of a resource dictionary that renkei computes; a client cannot set them.
const COMPUTED_RESOURCE_KEYS: &[&str] = &[
    "package_id",
    "created",
    "metadata_modified",
    "datastore_active",
    "state",
    "position",
    "validation",
    "upload",
];

const NAME_MAX: usize = 100;

/// Checks a URL name as CKAN does: 2–100 characters of `a-z 0-9 - _`.
pub fn check_name(name: &str) -> Result<(), String> {
    if name.chars().count() < 2 {
        return Err(format!(
            "Must be at least 2 characters long / 2文字以上にしてください: {name:?}"
        ));
    }
    if name.len() > NAME_MAX {
        return Err(format!(
            "Name must be a maximum of {NAME_MAX} characters long"
        ));
    }
    if !name
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
    {
        return Err(
            "Must be purely lowercase alphanumeric (ascii) characters and these symbols: -_ \
             / 半角英小文字・数字・記号 - _ のみ使えます"
                .to_owned(),
        );
    }
    if matches!(name, "new" | "edit" | "search") {
        return Err(format!("{name:?} is a reserved name"));
    }
    Ok(())
}

/// Collects errors while a request is read.
#[derive(Debug, Default)]
struct Errors(FieldErrors);

impl Errors {
    fn add(&mut self, field: &str, message: impl Into<String>) {
        self.0
            .entry(field.to_owned())
            .or_default()
            .push(message.into());
    }
    fn finish<T>(self, value: T) -> Result<T, FieldErrors> {
        if self.0.is_empty() {
            Ok(value)
        } else {
            Err(self.0)
        }
    }
}

/// A string field: absent and null are `None`; numbers are taken as text (CKAN
/// clients send `version: 1`); anything else is an error.
fn text(map: &Map<String, Value>, key: &str, errors: &mut Errors) -> Option<String> {
    match map.get(key) {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        Some(_) => {
            errors.add(key, "Must be a string / 文字列で指定してください");
            None
        }
    }
}

fn non_empty(value: Option<String>) -> Option<String> {
    value.filter(|s| !s.trim().is_empty())
}

/// CKAN booleans arrive as JSON booleans or as the strings of form posts.
pub fn boolean(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) => match s.to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" | "" => Some(false),
            _ => None,
        },
        Value::Number(n) => n.as_i64().map(|n| n != 0),
        _ => None,
    }
}

/// A timestamp as CKAN writes them (`2024-04-01T09:30:00.123456`, no zone: UTC)
/// or with a zone.
pub fn parse_timestamp(text: &str) -> Option<DateTime<Utc>> {
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    ["%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d"]
        .iter()
        .find_map(|f| {
            NaiveDateTime::parse_from_str(text, f).ok().or_else(|| {
                chrono::NaiveDate::parse_from_str(text, f)
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
            })
        })
        .map(|t| t.and_utc())
}

/// CKAN's timestamp text: microseconds, no zone.
pub fn format_timestamp(t: &DateTime<Utc>) -> String {
    t.format("%Y-%m-%dT%H:%M:%S%.6f").to_string()
}

/// What a client sent for a package, checked: every field `package_create` and
/// `package_update` read. `None` for a list means the key was absent.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PackageInput {
    pub id: Option<String>,
    pub name: String,
    pub title: Option<String>,
    pub notes: Option<String>,
    pub url: Option<String>,
    pub version: Option<String>,
    pub author: Option<String>,
    pub author_email: Option<String>,
    pub maintainer: Option<String>,
    pub maintainer_email: Option<String>,
    pub license_id: Option<String>,
    /// As sent: a code, or the organisation's id or name (the same here).
    pub owner_org: Option<String>,
    pub private: Option<bool>,
    pub state: Option<State>,
    pub tags: Vec<String>,
    pub groups: Vec<String>,
    pub extras: Vec<(String, String)>,
    pub resources: Option<Vec<ResourceInput>>,
}

impl PackageInput {
    /// Reads a `package_create`/`package_update` dictionary.
    pub fn parse(map: &Map<String, Value>) -> Result<PackageInput, FieldErrors> {
        let mut errors = Errors::default();
        let name = non_empty(text(map, "name", &mut errors)).unwrap_or_default();
        if name.is_empty() {
            errors.add("name", "Missing value / 必須項目です");
        } else if let Err(message) = check_name(&name) {
            errors.add("name", message);
        }
        let license_id = non_empty(text(map, "license_id", &mut errors));
        if let Some(id) = &license_id {
            match vocabulary::license(id) {
                Some(_) => {}
                None => errors.add(
                    "license_id",
                    format!("License {id:?} is not known / ライセンス {id:?} は登録されていません"),
                ),
            }
        }
        let private = match map.get("private") {
            None | Some(Value::Null) => None,
            Some(v) => match boolean(v) {
                Some(b) => Some(b),
                None => {
                    errors.add("private", "Must be true or false");
                    None
                }
            },
        };
        let state = match non_empty(text(map, "state", &mut errors)).as_deref() {
            None => None,
            Some("active") => Some(State::Active),
            Some("draft") => Some(State::Draft),
            Some("deleted") => Some(State::Deleted),
            Some(other) => {
                errors.add("state", format!("Unknown state {other:?}"));
                None
            }
        };
        let input = PackageInput {
            id: non_empty(text(map, "id", &mut errors)),
            title: text(map, "title", &mut errors),
            notes: non_empty(text(map, "notes", &mut errors)),
            url: non_empty(text(map, "url", &mut errors)),
            version: non_empty(text(map, "version", &mut errors)),
            author: non_empty(text(map, "author", &mut errors)),
            author_email: non_empty(text(map, "author_email", &mut errors)),
            maintainer: non_empty(text(map, "maintainer", &mut errors)),
            maintainer_email: non_empty(text(map, "maintainer_email", &mut errors)),
            license_id: license_id
                .map(|id| vocabulary::license(&id).map_or(id, |l| l.id.to_owned())),
            owner_org: non_empty(text(map, "owner_org", &mut errors)),
            private,
            state,
            tags: tags(map.get("tags"), &mut errors),
            groups: groups(map.get("groups"), &mut errors),
            extras: extras(map.get("extras"), &mut errors),
            resources: resources(map.get("resources"), &mut errors),
            name,
        };
        errors.finish(input)
    }
}

/// Tags as `[{"name": …}]` (CKAN) or as plain strings; `tag_string` is not read.
fn tags(value: Option<&Value>, errors: &mut Errors) -> Vec<String> {
    let mut out = Vec::new();
    for (index, item) in list(value, "tags", errors).iter().enumerate() {
        let name = match item {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => o.get("name").and_then(Value::as_str),
            _ => None,
        };
        match name.map(str::trim) {
            Some(n) if !n.is_empty() && n.chars().count() <= 100 => {
                if !out.iter().any(|t| t == n) {
                    out.push(n.to_owned());
                }
            }
            _ => errors.add(
                "tags",
                format!("tags[{index}] needs a name of 1 to 100 characters"),
            ),
        }
    }
    out
}

/// Groups as `[{"name": …}]` or `[{"id": …}]`, each one of the 17 categories.
fn groups(value: Option<&Value>, errors: &mut Errors) -> Vec<String> {
    let mut out = Vec::new();
    for item in list(value, "groups", errors) {
        let key = match item {
            Value::String(s) => Some(s.as_str()),
            Value::Object(o) => o
                .get("name")
                .or_else(|| o.get("id"))
                .and_then(Value::as_str),
            _ => None,
        };
        match key.and_then(vocabulary::category) {
            Some(c) => {
                if !out.iter().any(|g| g == c.name) {
                    out.push(c.name.to_owned());
                }
            }
            None => errors.add(
                "groups",
                format!(
                    "Group {} is not one of the 17 categories / 分類が見つかりません",
                    key.unwrap_or("(none)")
                ),
            ),
        }
    }
    out
}

fn extras(value: Option<&Value>, errors: &mut Errors) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = Vec::new();
    for (index, item) in list(value, "extras", errors).iter().enumerate() {
        let pair = item.as_object().and_then(|o| {
            let key = o.get("key")?.as_str()?.to_owned();
            let value = match o.get("value")? {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            Some((key, value))
        });
        match pair {
            Some((key, _)) if key.is_empty() || out.iter().any(|(k, _)| *k == key) => {
                errors.add("extras", format!("extras[{index}]: empty or repeated key"))
            }
            Some(pair) => out.push(pair),
            None => errors.add(
                "extras",
                format!("extras[{index}] must be {{\"key\": …, \"value\": …}}"),
            ),
        }
    }
    out
}

fn resources(value: Option<&Value>, errors: &mut Errors) -> Option<Vec<ResourceInput>> {
    value?;
    let mut out = Vec::new();
    for (index, item) in list(value, "resources", errors).iter().enumerate() {
        match item.as_object().map(ResourceInput::parse) {
            Some(Ok(r)) => out.push(r),
            Some(Err(fields)) => {
                for (field, messages) in fields {
                    for m in messages {
                        errors.add("resources", format!("resources[{index}].{field}: {m}"));
                    }
                }
            }
            None => errors.add("resources", format!("resources[{index}] must be an object")),
        }
    }
    Some(out)
}

fn list<'a>(value: Option<&'a Value>, field: &str, errors: &mut Errors) -> &'a [Value] {
    match value {
        None | Some(Value::Null) => &[],
        Some(Value::Array(items)) => items,
        Some(_) => {
            errors.add(field, "Must be a list / リストで指定してください");
            &[]
        }
    }
}

/// What a client sent for a resource.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ResourceInput {
    pub id: Option<String>,
    pub url: Option<String>,
    pub name: Option<String>,
    pub description: Option<String>,
    pub format: Option<String>,
    pub mimetype: Option<String>,
    pub size: Option<i64>,
    pub hash: Option<String>,
    pub url_type: Option<String>,
    pub last_modified: Option<DateTime<Utc>>,
    pub extras: Map<String, Value>,
}

impl ResourceInput {
    pub fn parse(map: &Map<String, Value>) -> Result<ResourceInput, FieldErrors> {
        let mut errors = Errors::default();
        let size = match map.get("size") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_i64().is_some_and(|n| n >= 0) => n.as_i64(),
            Some(Value::String(s)) if s.trim().is_empty() => None,
            Some(Value::String(s)) => match s.trim().parse::<i64>() {
                Ok(n) if n >= 0 => Some(n),
                _ => {
                    errors.add("size", "Must be a whole number of bytes");
                    None
                }
            },
            Some(_) => {
                errors.add("size", "Must be a whole number of bytes");
                None
            }
        };
        let last_modified = match non_empty(text(map, "last_modified", &mut errors)) {
            None => None,
            Some(t) => match parse_timestamp(&t) {
                Some(t) => Some(t),
                None => {
                    errors.add("last_modified", format!("Date format incorrect: {t:?}"));
                    None
                }
            },
        };
        const KNOWN: &[&str] = &[
            "id",
            "url",
            "name",
            "description",
            "format",
            "mimetype",
            "size",
            "hash",
            "url_type",
            "last_modified",
        ];
        let extras = map
            .iter()
            .filter(|(k, _)| {
                !KNOWN.contains(&k.as_str()) && !COMPUTED_RESOURCE_KEYS.contains(&k.as_str())
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        let input = ResourceInput {
            id: non_empty(text(map, "id", &mut errors)),
            url: text(map, "url", &mut errors),
            name: non_empty(text(map, "name", &mut errors)),
            description: non_empty(text(map, "description", &mut errors)),
            format: non_empty(text(map, "format", &mut errors)),
            mimetype: non_empty(text(map, "mimetype", &mut errors)),
            hash: non_empty(text(map, "hash", &mut errors)),
            url_type: non_empty(text(map, "url_type", &mut errors)),
            size,
            last_modified,
            extras,
        };
        errors.finish(input)
    }
}

/// The format a URL's file extension suggests (`…/shelters.csv` → `CSV`).
pub fn guess_format(url: &str) -> Option<String> {
    let path = url.split(['?', '#']).next().unwrap_or(url);
    let file = path.rsplit('/').next()?;
    let (_, ext) = file.rsplit_once('.')?;
    (!ext.is_empty() && ext.len() <= 8 && ext.chars().all(|c| c.is_ascii_alphanumeric()))
        .then(|| ext.to_ascii_uppercase())
}

impl Resource {
    /// A new resource from input; `id` is used when the input names none.
    pub fn new(input: ResourceInput, id: String, now: DateTime<Utc>) -> Resource {
        let mut resource = Resource {
            id: input.id.clone().unwrap_or(id),
            url: String::new(),
            name: None,
            description: None,
            format: String::new(),
            mimetype: None,
            size: None,
            hash: None,
            url_type: None,
            created: now,
            last_modified: None,
            metadata_modified: now,
            datastore_active: false,
            validation: None,
            extras: Map::new(),
        };
        resource.apply(input, now);
        resource
    }

    /// Replaces the client-set fields by the input's (a `resource_update`).
    pub fn apply(&mut self, input: ResourceInput, now: DateTime<Utc>) {
        self.url = input.url.unwrap_or_default();
        self.format = input
            .format
            .map(|f| f.trim().trim_start_matches('.').to_ascii_uppercase())
            .or_else(|| guess_format(&self.url))
            .unwrap_or_default();
        self.name = input.name;
        self.description = input.description;
        self.mimetype = input.mimetype;
        self.size = input.size;
        self.hash = input.hash;
        self.url_type = input.url_type;
        self.last_modified = input.last_modified;
        self.extras = input.extras;
        self.metadata_modified = now;
    }
}

impl Package {
    /// A new package. `new_id` supplies ids for the package (unless the input names
    /// one) and for its resources.
    pub fn create(
        input: PackageInput,
        owner_org: String,
        creator_user_id: Option<String>,
        now: DateTime<Utc>,
        mut new_id: impl FnMut() -> String,
    ) -> Package {
        let id = input.id.clone().unwrap_or_else(&mut new_id);
        let mut package = Package {
            id,
            name: String::new(),
            title: String::new(),
            notes: None,
            url: None,
            version: None,
            author: None,
            author_email: None,
            maintainer: None,
            maintainer_email: None,
            license_id: None,
            owner_org,
            private: false,
            state: State::Active,
            tags: Vec::new(),
            groups: Vec::new(),
            extras: Vec::new(),
            resources: Vec::new(),
            metadata_created: now,
            metadata_modified: now,
            creator_user_id,
        };
        package.apply(input, now, new_id);
        package
    }

    /// Replaces the client-set fields by the input's (`package_update`): absent
    /// fields become empty, except `resources` (kept when absent), `private` and
    /// `state` (kept when absent). Resources named by id keep what renkei knows of
    /// them (creation time, datastore, validation report).
    pub fn apply(
        &mut self,
        input: PackageInput,
        now: DateTime<Utc>,
        mut new_id: impl FnMut() -> String,
    ) {
        self.title = input
            .title
            .filter(|t| !t.trim().is_empty())
            .unwrap_or_else(|| input.name.clone());
        self.name = input.name;
        self.notes = input.notes;
        self.url = input.url;
        self.version = input.version;
        self.author = input.author;
        self.author_email = input.author_email;
        self.maintainer = input.maintainer;
        self.maintainer_email = input.maintainer_email;
        self.license_id = input.license_id;
        if let Some(private) = input.private {
            self.private = private;
        }
        if let Some(state) = input.state {
            self.state = state;
        }
        self.tags = input.tags;
        self.groups = input.groups;
        self.extras = input.extras;
        if let Some(resources) = input.resources {
            let mut old = std::mem::take(&mut self.resources);
            for r in resources {
                let existing =
                    r.id.as_deref()
                        .and_then(|id| old.iter().position(|o| o.id == id));
                match existing {
                    Some(at) => {
                        let mut kept = old.swap_remove(at);
                        kept.apply(r, now);
                        self.resources.push(kept);
                    }
                    None => self.resources.push(Resource::new(r, new_id(), now)),
                }
            }
        }
        self.metadata_modified = now;
    }

    pub fn resource(&self, id: &str) -> Option<&Resource> {
        self.resources.iter().find(|r| r.id == id)
    }

    pub fn resource_mut(&mut self, id: &str) -> Option<&mut Resource> {
        self.resources.iter_mut().find(|r| r.id == id)
    }

    /// Whether anyone may read it: public and active.
    pub fn is_open(&self) -> bool {
        !self.private && self.state == State::Active
    }

    pub fn license(&self) -> Option<&'static vocabulary::License> {
        self.license_id.as_deref().and_then(vocabulary::license)
    }

    /// What search sees of the package.
    pub fn search_document(&self) -> crate::search::Document {
        crate::search::Document {
            title: self.title.clone(),
            name: self.name.clone(),
            notes: self.notes.clone().unwrap_or_default(),
            tags: self.tags.clone(),
            organization: Some(self.owner_org.clone()),
            groups: self.groups.clone(),
            res_formats: self
                .resources
                .iter()
                .filter(|r| !r.format.is_empty())
                .map(|r| r.format.clone())
                .collect(),
            license_id: self.license_id.clone(),
            extras: self.extras.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn input(value: Value) -> PackageInput {
        PackageInput::parse(value.as_object().unwrap()).unwrap()
    }

    fn now() -> DateTime<Utc> {
        parse_timestamp("2026-11-26T10:00:00").unwrap()
    }

    fn counter() -> impl FnMut() -> String {
        let mut n = 0;
        move || {
            n += 1;
            format!("id-{n}")
        }
    }

    #[test]
    fn every_problem_of_a_request_is_named_at_once() {
        let errors = PackageInput::parse(
            json!({"name": "Bad Name", "license_id": "GPL", "groups": [{"name": "weather"}],
                   "private": "maybe", "tags": [{"name": ""}]})
            .as_object()
            .unwrap(),
        )
        .unwrap_err();
        let fields: Vec<&str> = errors.keys().map(String::as_str).collect();
        assert_eq!(fields, ["groups", "license_id", "name", "private", "tags"]);
        assert!(errors["name"][0].contains("lowercase alphanumeric"));
    }

    #[test]
    fn an_update_keeps_resources_it_does_not_mention_and_what_renkei_knows_of_them() {
        let mut package = Package::create(
            input(json!({"name": "pk", "resources": [{"url": "https://x.jp/a.csv"}]})),
            "222127".into(),
            None,
            now(),
            counter(),
        );
        assert_eq!(package.resources[0].format, "CSV");
        package.resources[0].datastore_active = true;
        package.apply(input(json!({"name": "pk", "title": "T"})), now(), counter());
        assert_eq!(package.resources.len(), 1, "no resources key: kept");
        let id = package.resources[0].id.clone();
        package.apply(
            input(json!({"name": "pk", "resources": [{"id": id, "url": "https://x.jp/b.xlsx"}, {"url": "u"}]})),
            now(),
            counter(),
        );
        assert_eq!(package.resources.len(), 2);
        assert!(package.resources[0].datastore_active, "kept by id");
        assert_eq!(package.resources[0].format, "XLSX");
        package.apply(
            input(json!({"name": "pk", "resources": []})),
            now(),
            counter(),
        );
        assert!(package.resources.is_empty(), "an empty list removes them");
    }

    #[test]
    fn formats_are_guessed_from_urls() {
        assert_eq!(
            guess_format("https://a.jp/x/shelters.CSV?dl=1").as_deref(),
            Some("CSV")
        );
        assert_eq!(guess_format("https://a.jp/x/"), None);
        assert_eq!(guess_format("https://a.jp/x/file"), None);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(|n| json!(n)),
            ".{0,12}".prop_map(Value::String),
        ];
        leaf.prop_recursive(3, 24, 4, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
                prop::collection::btree_map(
                    prop_oneof![
                        Just("name".to_owned()),
                        Just("tags".to_owned()),
                        Just("groups".to_owned()),
                        Just("extras".to_owned()),
                        Just("resources".to_owned()),
                        Just("size".to_owned()),
                        Just("private".to_owned()),
                        ".{0,6}"
                    ],
                    inner,
                    0..5
                )
                .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest! {
        /// Whatever a client sends, reading it gives a package input or named
        /// errors, never a panic; and an accepted input always builds a package.
        #[test]
        fn any_request_is_read_or_refused_with_named_fields(
            fields in prop::collection::btree_map(
                prop_oneof![
                    Just("name".to_owned()), Just("title".to_owned()), Just("tags".to_owned()),
                    Just("groups".to_owned()), Just("extras".to_owned()),
                    Just("resources".to_owned()), Just("license_id".to_owned()),
                    Just("private".to_owned()), Just("state".to_owned()), ".{0,8}"
                ],
                json_value(),
                0..8,
            )
        ) {
            let map: Map<String, Value> = fields.into_iter().collect();
            match PackageInput::parse(&map) {
                Ok(parsed) => {
                    let package = Package::create(parsed, "222127".into(), None, now(), counter());
                    prop_assert!(check_name(&package.name).is_ok());
                    prop_assert!(!package.title.is_empty());
                }
                Err(errors) => prop_assert!(errors.values().all(|m| !m.is_empty())),
            }
        }
    }
}
