//! Japanese search for the CKAN-compatible catalog without a search server,
//! the same on SQLite and PostgreSQL. This module is the pure core the stores
//! build on; it knows no SQL.
//!
//! How a store answers `package_search`:
//! 1. On write, store [`Document::index_terms`] as `(term, dataset)` rows:
//!    the unigrams and bigrams of every folded field value (see [`tokenize`]).
//! 2. On search, parse `q` with [`SearchQuery::parse`] and `fq` with
//!    [`parse_fq`]; the candidates are the datasets having *all* of
//!    [`SearchQuery::candidate_terms`] (no terms: every dataset).
//! 3. Confirm each candidate with [`score()`] (`None` drops it: the bigrams of a
//!    word may all be present without the word) and [`matches_filters`], sort
//!    by score, and count [`Facets`] over the confirmed matches.
//!
//! The contract that makes step 2 safe: whenever the folded word is a
//! substring of the folded text, [`candidate_terms`]`(word)` ⊆
//! [`index_terms`]`(text)`, so the index never loses a true match.

pub mod document;
pub mod facets;
pub mod filter;
pub mod index;
pub mod query;
pub mod score;
pub mod tokenize;

pub use document::{Document, Field, FoldedDocument};
pub use facets::{FacetField, FacetItem, Facets};
pub use filter::{matches_filters, parse_fq, Filter, FqError};
pub use index::{SearchIndex, SearchRequest, SearchResult, Sort, SortKey};
pub use query::{SearchQuery, Term};
pub use score::{
    free_words, score, score_folded, score_with, EXACT_TITLE_BONUS, TITLE_PREFIX_BONUS,
};
pub use tokenize::{candidate_terms, fold, index_terms};

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// The whole pipeline of the module docs over a small in-memory "store".
    fn search(docs: &[Document], q: &str, fq: &str) -> Vec<String> {
        let query = SearchQuery::parse(q);
        let filters = parse_fq(fq).unwrap_or_default();
        let need = query.candidate_terms();
        let mut hits: Vec<(f64, &Document)> = docs
            .iter()
            .filter(|d| {
                let index = d.index_terms();
                need.iter().all(|t| index.binary_search(t).is_ok())
            })
            .filter(|d| matches_filters(&filters, d))
            .filter_map(|d| score(&query, d).map(|s| (s, d)))
            .collect();
        hits.sort_by(|a, b| b.0.total_cmp(&a.0).then_with(|| a.1.name.cmp(&b.1.name)));
        hits.into_iter().map(|(_, d)| d.name.clone()).collect()
    }

    fn ds(name: &str, title: &str, notes: &str, org: &str, formats: &[&str]) -> Document {
        Document {
            name: name.into(),
            title: title.into(),
            notes: notes.into(),
            organization: Some(org.into()),
            res_formats: formats.iter().map(|s| s.to_string()).collect(),
            ..Document::default()
        }
    }

    fn catalog() -> Vec<Document> {
        vec![
            ds("hinan", "指定緊急避難場所一覧", "", "222127", &["CSV"]),
            ds(
                "toilet",
                "公衆トイレ一覧",
                "多目的ﾄｲﾚを含む",
                "222127",
                &["CSV", "PDF"],
            ),
            ds("aed", "ＡＥＤ設置箇所一覧", "", "221309", &["XLSX"]),
            ds(
                "bousai",
                "防災施設",
                "避難所を兼ねる施設",
                "221309",
                &["CSV"],
            ),
        ]
    }

    #[test]
    fn the_issue_examples_end_to_end() {
        let c = catalog();
        assert_eq!(search(&c, "避難", ""), vec!["hinan", "bousai"]);
        assert_eq!(search(&c, "ﾄｲﾚ", ""), vec!["toilet"]);
        assert_eq!(search(&c, "aed", ""), vec!["aed"]);
        assert_eq!(search(&c, "一覧 -避難", ""), vec!["aed", "toilet"]);
        assert_eq!(search(&c, "避難", "organization:221309"), vec!["bousai"]);
        assert_eq!(
            search(&c, "", "res_format:CSV"),
            vec!["bousai", "hinan", "toilet"]
        );
        let facets = Facets::count(&c, &["organization"], None, 1);
        let items = facets
            .get("organization")
            .map(|f| f.items.clone())
            .unwrap_or_default();
        assert_eq!(
            items
                .iter()
                .map(|i| (i.name.as_str(), i.count))
                .collect::<Vec<_>>(),
            vec![("221309", 2), ("222127", 2)]
        );
    }

    proptest! {
        /// Clicking a facet item (an fq on its value) gives exactly its count.
        #[test]
        fn facet_counts_agree_with_filters(
            picks in proptest::collection::vec((0usize..4, proptest::collection::vec(0usize..4, 0..4)), 0..20)
        ) {
            let orgs = ["222127", "221309", "避難 所", "a\"b"];
            let formats = ["CSV", "csv", "PDF", "ＣＳＶ"];
            let docs: Vec<Document> = picks
                .iter()
                .map(|(o, fs)| ds("", "", "", orgs[*o], &fs.iter().map(|&i| formats[i]).collect::<Vec<_>>()))
                .collect();
            let facets = Facets::count(&docs, &["organization", "res_format"], None, 1);
            for (field, facet) in &facets.fields {
                for item in &facet.items {
                    let escaped = item.name.replace('\\', "\\\\").replace('"', "\\\"");
                    let filters = parse_fq(&format!("{field}:\"{escaped}\""));
                    prop_assert!(filters.is_ok());
                    let filters = filters.unwrap_or_default();
                    let n = docs.iter().filter(|d| matches_filters(&filters, d)).count();
                    prop_assert_eq!(n, item.count);
                }
            }
        }
    }
}
