//! The in-memory search index a node keeps of the whole catalog: every package,
//! its folded search document, and posting lists from n-gram terms to packages.
//! It is a cache: the store is the truth, and [`crate::service`] brings the index
//! up to date from the store's change numbers before each search, so every node
//! answers alike and a restart only costs a reload.
//!
//! A search intersects the postings of the query's candidate terms (the contract
//! of [`super::candidate_terms`] makes that lose no true match), confirms and
//! scores each candidate with [`super::score_with`], applies `fq` filters and
//! visibility, counts facets over the matches and sorts them.

use std::collections::HashMap;
use std::sync::Arc;

use super::{
    free_words, matches_filters, score_with, Document, Facets, Filter, FoldedDocument, SearchQuery,
};
use crate::package::Package;

/// One indexed package.
#[derive(Debug, Clone)]
struct Entry {
    package: Arc<Package>,
    document: Document,
    folded: FoldedDocument,
    terms: Vec<String>,
}

/// The sort orders `package_search` accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortKey {
    Score,
    Name,
    Title,
    MetadataModified,
    MetadataCreated,
}

/// A parsed `sort`: keys with `true` for descending.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sort(pub Vec<(SortKey, bool)>);

impl Default for Sort {
    /// CKAN's default: relevance, then the most recently modified.
    fn default() -> Self {
        Sort(vec![
            (SortKey::Score, true),
            (SortKey::MetadataModified, true),
        ])
    }
}

impl Sort {
    /// Parses `score desc, metadata_modified desc`, `title_string asc`, … An
    /// unknown field is an error naming it.
    pub fn parse(text: &str) -> Result<Sort, String> {
        let mut keys = Vec::new();
        for clause in text.split(',').map(str::trim).filter(|c| !c.is_empty()) {
            let mut words = clause.split_whitespace();
            let field = words.next().unwrap_or_default();
            let descending = match words.next().map(str::to_ascii_lowercase).as_deref() {
                None | Some("asc") => false,
                Some("desc") => true,
                Some(other) => return Err(format!("sort direction {other:?} is not asc or desc")),
            };
            let key = match field {
                "score" => SortKey::Score,
                "name" => SortKey::Name,
                "title" | "title_string" => SortKey::Title,
                "metadata_modified" => SortKey::MetadataModified,
                "metadata_created" => SortKey::MetadataCreated,
                other => return Err(format!("cannot sort by {other:?}")),
            };
            keys.push((key, descending));
        }
        Ok(if keys.is_empty() {
            Sort::default()
        } else {
            Sort(keys)
        })
    }
}

/// What to search for.
#[derive(Debug, Clone, Default)]
pub struct SearchRequest {
    pub query: SearchQuery,
    pub filters: Vec<Filter>,
    pub sort: Sort,
    pub start: usize,
    pub rows: usize,
    pub facet_fields: Vec<String>,
    pub facet_limit: Option<usize>,
    pub facet_mincount: usize,
}

/// What a search found: the total, one page of packages, and facets.
#[derive(Debug, Clone)]
pub struct SearchResult {
    pub count: usize,
    pub packages: Vec<Arc<Package>>,
    pub facets: Facets,
}

/// The index itself.
#[derive(Debug, Default)]
pub struct SearchIndex {
    entries: Vec<Option<Entry>>,
    slot_of: HashMap<String, u32>,
    free: Vec<u32>,
    postings: HashMap<String, Vec<u32>>,
}

impl SearchIndex {
    pub fn len(&self) -> usize {
        self.slot_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slot_of.is_empty()
    }

    /// Adds a package or replaces its indexed version.
    pub fn put(&mut self, package: Package) {
        self.remove(&package.id);
        let document = package.search_document();
        let folded = document.folded();
        let terms = document.index_terms();
        let slot = self.free.pop().unwrap_or_else(|| {
            self.entries.push(None);
            (self.entries.len() - 1) as u32
        });
        for term in &terms {
            let list = self.postings.entry(term.clone()).or_default();
            if let Err(at) = list.binary_search(&slot) {
                list.insert(at, slot);
            }
        }
        self.slot_of.insert(package.id.clone(), slot);
        self.entries[slot as usize] = Some(Entry {
            package: Arc::new(package),
            document,
            folded,
            terms,
        });
    }

    pub fn remove(&mut self, id: &str) {
        let Some(slot) = self.slot_of.remove(id) else {
            return;
        };
        if let Some(entry) = self.entries[slot as usize].take() {
            for term in &entry.terms {
                if let Some(list) = self.postings.get_mut(term) {
                    if let Ok(at) = list.binary_search(&slot) {
                        list.remove(at);
                    }
                    if list.is_empty() {
                        self.postings.remove(term);
                    }
                }
            }
        }
        self.free.push(slot);
    }

    pub fn get(&self, id: &str) -> Option<&Arc<Package>> {
        let slot = *self.slot_of.get(id)?;
        self.entries[slot as usize].as_ref().map(|e| &e.package)
    }

    /// Every indexed package, in no particular order.
    pub fn packages(&self) -> impl Iterator<Item = &Arc<Package>> {
        self.entries.iter().flatten().map(|e| &e.package)
    }

    /// Searches the packages `visible` lets through.
    pub fn search(
        &self,
        request: &SearchRequest,
        visible: impl Fn(&Package) -> bool,
    ) -> SearchResult {
        let free = free_words(&request.query);
        let mut hits: Vec<(f64, &Entry)> = self
            .candidates(&request.query)
            .filter_map(|slot| self.entries[slot as usize].as_ref())
            .filter(|e| visible(&e.package))
            .filter(|e| matches_filters(&request.filters, &e.document))
            .filter_map(|e| score_with(&request.query, free.as_deref(), &e.folded).map(|s| (s, e)))
            .collect();
        let fields: Vec<&str> = request.facet_fields.iter().map(String::as_str).collect();
        let facets = Facets::count(
            hits.iter().map(|(_, e)| &e.document),
            &fields,
            request.facet_limit,
            request.facet_mincount,
        );
        let count = hits.len();
        // Only the page asked for is ordered: pick the first `start + rows` (the order
        // is total, names break ties, so they are the same as a full sort's), then
        // sort just those.
        let wanted = request.start.saturating_add(request.rows).min(count);
        if wanted < count {
            if wanted == 0 {
                hits.clear();
            } else {
                hits.select_nth_unstable_by(wanted - 1, |a, b| compare(&request.sort, a, b));
                hits.truncate(wanted);
            }
        }
        hits.sort_by(|a, b| compare(&request.sort, a, b));
        SearchResult {
            count,
            packages: hits
                .into_iter()
                .skip(request.start)
                .take(request.rows)
                .map(|(_, e)| e.package.clone())
                .collect(),
            facets,
        }
    }

    /// The slots holding every candidate term (all slots for a query without terms).
    fn candidates(&self, query: &SearchQuery) -> Box<dyn Iterator<Item = u32> + '_> {
        let terms = query.candidate_terms();
        if terms.is_empty() {
            return Box::new(self.slot_of.values().copied());
        }
        let mut lists: Vec<&[u32]> = Vec::with_capacity(terms.len());
        for term in &terms {
            match self.postings.get(term) {
                Some(list) => lists.push(list),
                None => return Box::new(std::iter::empty()),
            }
        }
        lists.sort_by_key(|l| l.len());
        let (shortest, rest) = lists.split_first().expect("at least one term");
        let rest: Vec<&[u32]> = rest.to_vec();
        Box::new(
            shortest
                .iter()
                .copied()
                .filter(move |slot| rest.iter().all(|l| l.binary_search(slot).is_ok())),
        )
    }
}

fn compare(sort: &Sort, a: &(f64, &Entry), b: &(f64, &Entry)) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    for &(key, descending) in &sort.0 {
        let (pa, pb) = (&a.1.package, &b.1.package);
        let order = match key {
            SortKey::Score => a.0.total_cmp(&b.0),
            SortKey::Name => pa.name.cmp(&pb.name),
            SortKey::Title => pa.title.cmp(&pb.title),
            SortKey::MetadataModified => pa.metadata_modified.cmp(&pb.metadata_modified),
            SortKey::MetadataCreated => pa.metadata_created.cmp(&pb.metadata_created),
        };
        let order = if descending { order.reverse() } else { order };
        if order != Ordering::Equal {
            return order;
        }
    }
    a.1.package.name.cmp(&b.1.package.name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::package::{PackageInput, State};
    use serde_json::json;

    fn package(id: &str, name: &str, title: &str) -> Package {
        let input = PackageInput::parse(
            json!({"id": id, "name": name, "title": title})
                .as_object()
                .unwrap(),
        )
        .unwrap();
        Package::create(input, "222127".into(), None, chrono::Utc::now(), || {
            "r".to_owned()
        })
    }

    fn names(index: &SearchIndex, q: &str) -> Vec<String> {
        let request = SearchRequest {
            query: SearchQuery::parse(q),
            rows: 10,
            ..Default::default()
        };
        index
            .search(&request, |p| p.state == State::Active)
            .packages
            .iter()
            .map(|p| p.name.clone())
            .collect()
    }

    #[test]
    fn replacing_and_removing_packages_keeps_the_postings_exact() {
        let mut index = SearchIndex::default();
        index.put(package("1", "hinan", "指定緊急避難場所一覧"));
        index.put(package("2", "toilet", "公衆トイレ一覧"));
        assert_eq!(names(&index, "避難"), ["hinan"]);
        assert_eq!(names(&index, "一覧").len(), 2);

        index.put(package("1", "hinan", "給水所"));
        assert!(names(&index, "避難").is_empty(), "old terms are gone");
        assert_eq!(names(&index, "給水"), ["hinan"]);

        index.remove("2");
        assert!(names(&index, "トイレ").is_empty());
        assert_eq!(index.len(), 1);
        index.put(package("3", "aed", "AED設置箇所一覧"));
        assert_eq!(
            names(&index, "一覧"),
            ["aed"],
            "a freed slot is reused cleanly"
        );
        assert_eq!(names(&index, ""), ["aed", "hinan"]);
    }

    proptest::proptest! {
        /// Ordering only the page asked for gives exactly that page of a full sort,
        /// whatever the sort, the page and ties in score or title.
        #[test]
        fn a_page_is_the_same_slice_of_the_whole_order(
            titles in proptest::collection::vec("(避難|一覧|トイレ|給水){1,3}", 1..40),
            start in 0usize..45,
            rows in 0usize..12,
            sort in proptest::sample::select(vec!["", "title_string asc", "name desc", "score desc, title_string desc"]),
        ) {
            let mut index = SearchIndex::default();
            for (i, title) in titles.iter().enumerate() {
                index.put(package(&i.to_string(), &format!("p{i:03}"), title));
            }
            let search = |start: usize, rows: usize| {
                let request = SearchRequest {
                    query: SearchQuery::parse("一覧"),
                    sort: Sort::parse(sort).unwrap(),
                    start,
                    rows,
                    ..Default::default()
                };
                let result = index.search(&request, |_| true);
                let names: Vec<String> = result.packages.iter().map(|p| p.name.clone()).collect();
                (result.count, names)
            };
            let (count, everything) = search(0, usize::MAX);
            let (page_count, page) = search(start, rows);
            proptest::prop_assert_eq!(page_count, count);
            let expected: Vec<String> = everything.into_iter().skip(start).take(rows).collect();
            proptest::prop_assert_eq!(page, expected);
        }
    }

    #[test]
    fn sorts_parse_as_ckan_writes_them() {
        assert_eq!(Sort::parse("").unwrap(), Sort::default());
        assert_eq!(
            Sort::parse("title_string asc, metadata_modified desc").unwrap(),
            Sort(vec![
                (SortKey::Title, false),
                (SortKey::MetadataModified, true)
            ])
        );
        assert!(Sort::parse("views desc").is_err());
        assert!(Sort::parse("name sideways").is_err());
    }
}
