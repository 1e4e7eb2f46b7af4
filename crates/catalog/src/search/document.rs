//! What search sees of a dataset: the CKAN fields that free text, `fq` filters
//! and facets look at, and the folded copy of them that matching compares.

use serde::{Deserialize, Serialize};

use super::tokenize::{fold, index_terms};

/// A searchable CKAN dataset field, by its CKAN (Solr) name.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Field {
    Title,
    Name,
    Notes,
    Tags,
    Organization,
    Groups,
    ResFormat,
    LicenseId,
    /// The values of the dataset's extras (`key=value` pairs).
    Extras,
}

impl Field {
    /// Every field, in relevance order.
    pub const ALL: [Field; 9] = [
        Field::Title,
        Field::Tags,
        Field::Name,
        Field::Organization,
        Field::Groups,
        Field::Notes,
        Field::ResFormat,
        Field::LicenseId,
        Field::Extras,
    ];

    /// The field of a CKAN name such as `res_format`; `None` for others.
    pub fn parse(name: &str) -> Option<Field> {
        Some(match name {
            "title" => Field::Title,
            "name" => Field::Name,
            "notes" => Field::Notes,
            "tags" => Field::Tags,
            "organization" => Field::Organization,
            "groups" => Field::Groups,
            "res_format" => Field::ResFormat,
            "license_id" => Field::LicenseId,
            "extras" => Field::Extras,
            _ => return None,
        })
    }

    /// The CKAN name of the field.
    pub fn as_str(self) -> &'static str {
        match self {
            Field::Title => "title",
            Field::Name => "name",
            Field::Notes => "notes",
            Field::Tags => "tags",
            Field::Organization => "organization",
            Field::Groups => "groups",
            Field::ResFormat => "res_format",
            Field::LicenseId => "license_id",
            Field::Extras => "extras",
        }
    }

    /// Relevance weight of a query word found in this field. The weights of
    /// all fields but the title add up to less than the title's, so a word
    /// found in the title always outweighs the same word found anywhere else.
    pub fn weight(self) -> f64 {
        match self {
            Field::Title => 20.0,
            Field::Tags => 5.0,
            Field::Name => 3.0,
            Field::Organization | Field::Groups => 2.0,
            Field::Notes | Field::ResFormat | Field::LicenseId | Field::Extras => 1.0,
        }
    }
}

/// The part of a CKAN dataset that search looks at. Organization and groups
/// are by name (the URL slug), as in CKAN's `organization`/`groups` fields.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Document {
    pub title: String,
    pub name: String,
    pub notes: String,
    pub tags: Vec<String>,
    pub organization: Option<String>,
    pub groups: Vec<String>,
    /// The formats of the dataset's resources (`CSV`, `PDF`, …), repeats allowed.
    pub res_formats: Vec<String>,
    pub license_id: Option<String>,
    pub extras: Vec<(String, String)>,
}

impl Document {
    /// The raw values of one field (several for tags, groups, formats, extras).
    pub fn values(&self, field: Field) -> Vec<&str> {
        match field {
            Field::Title => vec![self.title.as_str()],
            Field::Name => vec![self.name.as_str()],
            Field::Notes => vec![self.notes.as_str()],
            Field::Tags => self.tags.iter().map(String::as_str).collect(),
            Field::Organization => self.organization.iter().map(String::as_str).collect(),
            Field::Groups => self.groups.iter().map(String::as_str).collect(),
            Field::ResFormat => self.res_formats.iter().map(String::as_str).collect(),
            Field::LicenseId => self.license_id.iter().map(String::as_str).collect(),
            Field::Extras => self.extras.iter().map(|(_, v)| v.as_str()).collect(),
        }
    }

    /// The n-gram index terms of the whole document: the union of
    /// [`index_terms`] of each field value, taken separately so that no
    /// bigram spans two values. A store writes these rows for the dataset.
    pub fn index_terms(&self) -> Vec<String> {
        let mut terms: Vec<String> = Field::ALL
            .iter()
            .flat_map(|&f| self.values(f))
            .flat_map(index_terms)
            .collect();
        terms.sort_unstable();
        terms.dedup();
        terms
    }

    /// The folded copy matching compares against; build it once per document
    /// when scoring many queries or storing it next to the index.
    pub fn folded(&self) -> FoldedDocument {
        FoldedDocument {
            fields: Field::ALL
                .iter()
                .map(|&f| (f, self.values(f).into_iter().map(fold).collect()))
                .collect(),
        }
    }
}

/// A [`Document`] with every field value folded by [`fold`].
#[derive(Debug, Clone, PartialEq)]
pub struct FoldedDocument {
    fields: Vec<(Field, Vec<String>)>,
}

impl FoldedDocument {
    /// The folded values of one field.
    pub fn values(&self, field: Field) -> &[String] {
        self.fields
            .iter()
            .find(|(f, _)| *f == field)
            .map(|(_, v)| v.as_slice())
            .unwrap_or(&[])
    }

    /// The folded title (empty when there is none).
    pub fn title(&self) -> &str {
        self.values(Field::Title)
            .first()
            .map(String::as_str)
            .unwrap_or("")
    }

    /// Whether a folded word occurs in one of the field's values.
    pub fn contains(&self, field: Field, folded_word: &str) -> bool {
        self.values(field).iter().any(|v| v.contains(folded_word))
    }
}
