//! Facet counts in the shape CKAN's `package_search` answers them:
//! `search_facets: {field: {title, items: [{name, display_name, count}]}}`,
//! items ordered by count (descending), then name. A dataset counts once per
//! value even when several of its resources share a format, because CKAN
//! counts datasets. Values are grouped exactly as stored, which is also how
//! [`super::matches_filters`] compares them, so clicking a facet item yields
//! exactly `count` datasets.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::{Map, Value};

use super::document::{Document, Field};

/// One value of a facet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacetItem {
    pub name: String,
    pub display_name: String,
    pub count: usize,
}

/// One facet field: CKAN's `title` is the field name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FacetField {
    pub title: String,
    pub items: Vec<FacetItem>,
}

/// CKAN's `search_facets`, keyed by field name in request order.
/// Serializes as a JSON object (see the `Serialize` impl below).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Facets {
    pub fields: Vec<(String, FacetField)>,
}

impl Serialize for Facets {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (name, facet) in &self.fields {
            map.serialize_entry(name, facet)?;
        }
        map.end()
    }
}

impl Facets {
    /// Counts `fields` (CKAN names such as `organization`, `res_format`) over
    /// the matching documents, keeping at most `limit` items per field
    /// (`None`: all, like CKAN's `facet.limit=-1`) with at least `mincount`
    /// datasets each. An unknown field gets an empty item list.
    pub fn count<'a, I>(
        documents: I,
        fields: &[&str],
        limit: Option<usize>,
        mincount: usize,
    ) -> Facets
    where
        I: IntoIterator<Item = &'a Document>,
    {
        let known: Vec<(String, Option<Field>)> = fields
            .iter()
            .map(|&f| (f.to_string(), Field::parse(f)))
            .collect();
        let mut counts: Vec<BTreeMap<&'a str, usize>> = vec![BTreeMap::new(); known.len()];
        for doc in documents {
            for ((_, field), counter) in known.iter().zip(counts.iter_mut()) {
                let Some(field) = field else { continue };
                let mut values = doc.values(*field);
                values.sort_unstable();
                values.dedup();
                for v in values.into_iter().filter(|v| !v.is_empty()) {
                    *counter.entry(v).or_default() += 1;
                }
            }
        }
        let fields = known
            .into_iter()
            .zip(counts)
            .map(|((name, _), counter)| {
                let mut items: Vec<FacetItem> = counter
                    .into_iter()
                    .filter(|&(_, c)| c >= mincount)
                    .map(|(v, count)| FacetItem {
                        name: v.into(),
                        display_name: v.into(),
                        count,
                    })
                    .collect();
                // The map gave name order; a stable sort by count keeps it for ties.
                items.sort_by_key(|i| std::cmp::Reverse(i.count));
                if let Some(limit) = limit {
                    items.truncate(limit);
                }
                (name.clone(), FacetField { title: name, items })
            })
            .collect();
        Facets { fields }
    }

    /// One field's facet, if it was requested.
    pub fn get(&self, field: &str) -> Option<&FacetField> {
        self.fields.iter().find(|(f, _)| f == field).map(|(_, v)| v)
    }

    /// Replaces display names of a field's items (an organization's title
    /// instead of its slug); `None` from `label` keeps the name.
    pub fn set_display_names(&mut self, field: &str, label: impl Fn(&str) -> Option<String>) {
        for (_, facet) in self.fields.iter_mut().filter(|(f, _)| f == field) {
            for item in &mut facet.items {
                if let Some(l) = label(&item.name) {
                    item.display_name = l;
                }
            }
        }
    }

    /// CKAN's `search_facets` as JSON (the same as serializing `self`).
    pub fn to_search_facets(&self) -> Value {
        let mut out = Map::new();
        for (name, facet) in &self.fields {
            out.insert(
                name.clone(),
                serde_json::to_value(facet).unwrap_or(Value::Null),
            );
        }
        Value::Object(out)
    }

    /// CKAN's older `facets` member: `{field: {name: count}}`.
    pub fn to_legacy_facets(&self) -> Value {
        let mut out = Map::new();
        for (name, facet) in &self.fields {
            let items: Map<String, Value> = facet
                .items
                .iter()
                .map(|i| (i.name.clone(), Value::from(i.count)))
                .collect();
            out.insert(name.clone(), Value::Object(items));
        }
        Value::Object(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn doc(org: &str, formats: &[&str], tags: &[&str]) -> Document {
        Document {
            organization: Some(org.into()),
            res_formats: formats.iter().map(|s| s.to_string()).collect(),
            tags: tags.iter().map(|s| s.to_string()).collect(),
            ..Document::default()
        }
    }

    fn docs() -> Vec<Document> {
        vec![
            doc("222127", &["CSV", "CSV", "PDF"], &["防災", "避難所"]),
            doc("222127", &["CSV"], &["防災"]),
            doc("221309", &["XLSX"], &["観光"]),
            doc("221309", &["PDF"], &[]),
            doc("222038", &["CSV"], &["防災"]),
        ]
    }

    #[test]
    fn counts_datasets_ordered_by_count_then_name() {
        let f = Facets::count(&docs(), &["organization", "res_format", "tags"], None, 1);
        let names = |field: &str| -> Vec<(String, usize)> {
            f.get(field)
                .map(|x| x.items.iter().map(|i| (i.name.clone(), i.count)).collect())
                .unwrap_or_default()
        };
        assert_eq!(
            names("organization"),
            vec![
                ("221309".into(), 2),
                ("222127".into(), 2),
                ("222038".into(), 1)
            ]
        );
        // The dataset with two CSV resources counts once.
        assert_eq!(
            names("res_format"),
            vec![("CSV".into(), 3), ("PDF".into(), 2), ("XLSX".into(), 1)]
        );
        assert_eq!(
            names("tags"),
            vec![("防災".into(), 3), ("観光".into(), 1), ("避難所".into(), 1)]
        );
    }

    #[test]
    fn limit_mincount_and_ckan_shape() {
        let mut f = Facets::count(&docs(), &["res_format", "nonsense"], Some(2), 2);
        f.set_display_names("res_format", |n| {
            (n == "CSV").then(|| "CSV形式".to_string())
        });
        let expected = json!({
            "res_format": {"title": "res_format", "items": [
                {"name": "CSV", "display_name": "CSV形式", "count": 3},
                {"name": "PDF", "display_name": "PDF", "count": 2},
            ]},
            "nonsense": {"title": "nonsense", "items": []},
        });
        assert_eq!(f.to_search_facets(), expected);
        assert_eq!(serde_json::to_value(&f).ok(), Some(expected));
        assert_eq!(
            f.to_legacy_facets(),
            json!({"res_format": {"CSV": 3, "PDF": 2}, "nonsense": {}})
        );
        let none = Facets::count(&docs(), &["res_format"], Some(0), 1);
        assert_eq!(none.get("res_format").map(|x| x.items.len()), Some(0));
    }
}
