//! Matching and relevance of one candidate document. A required word matches
//! when its folded form is a substring of a folded field value, which is what
//! makes 避難 find 指定緊急避難場所一覧 and ﾄｲﾚ find トイレ; its score is the sum of
//! the [`Field::weight`]s of the fields it occurs in, so title matches come
//! first. A query that equals the whole title, or starts it, earns a bonus.

use super::document::{Document, Field, FoldedDocument};
use super::query::{SearchQuery, Term};

/// Bonus when the query's words, joined by a space, are the whole title.
pub const EXACT_TITLE_BONUS: f64 = 50.0;
/// Bonus when the title starts with the query's words.
pub const TITLE_PREFIX_BONUS: f64 = 5.0;

/// The relevance of `doc` for `query`, or `None` when it does not match
/// (a required word is missing or an excluded one is present). A match-all
/// query gives every document `Some(0.0)`.
pub fn score(query: &SearchQuery, doc: &Document) -> Option<f64> {
    score_folded(query, &doc.folded())
}

/// [`score`] against a document folded beforehand.
pub fn score_folded(query: &SearchQuery, doc: &FoldedDocument) -> Option<f64> {
    score_with(query, free_words(query).as_deref(), doc)
}

/// The query's words that are not bound to a field, joined by a space (what the
/// title bonuses compare with), or `None` when there are none. A search computes it
/// once and scores every candidate with [`score_with`].
pub fn free_words(query: &SearchQuery) -> Option<String> {
    let free: Vec<&str> = query
        .required()
        .filter(|t| t.field.is_none())
        .map(|t| t.folded.as_str())
        .collect();
    (!free.is_empty()).then(|| free.join(" "))
}

/// [`score_folded`] with the query's [`free_words`] given.
pub fn score_with(
    query: &SearchQuery,
    free_words: Option<&str>,
    doc: &FoldedDocument,
) -> Option<f64> {
    if query.excluded().any(|t| term_score(t, doc) > 0.0) {
        return None;
    }
    let mut total = 0.0;
    for term in query.required() {
        let s = term_score(term, doc);
        if s <= 0.0 {
            return None;
        }
        total += s;
    }
    if let Some(joined) = free_words {
        let title = doc.title();
        if title == joined {
            total += EXACT_TITLE_BONUS;
        } else if title.starts_with(joined) {
            total += TITLE_PREFIX_BONUS;
        }
    }
    Some(total)
}

/// Sum of the weights of the fields (in the term's scope) containing it.
fn term_score(term: &Term, doc: &FoldedDocument) -> f64 {
    let fields: &[Field] = match &term.field {
        Some(f) => std::slice::from_ref(f),
        None => &Field::ALL,
    };
    fields
        .iter()
        .filter(|&&f| doc.contains(f, &term.folded))
        .map(|f| f.weight())
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn doc(title: &str, notes: &str, tags: &[&str]) -> Document {
        Document {
            title: title.into(),
            notes: notes.into(),
            tags: tags.iter().map(|t| t.to_string()).collect(),
            ..Document::default()
        }
    }

    fn q(s: &str) -> SearchQuery {
        SearchQuery::parse(s)
    }

    #[test]
    fn partial_japanese_words_match() {
        let d = doc("指定緊急避難場所一覧", "", &[]);
        assert!(score(&q("避難"), &d).is_some());
        assert!(score(&q("緊急 一覧"), &d).is_some());
        assert!(score(&q("避難所"), &d).is_none());
        assert!(score(&q("避難 図書館"), &d).is_none());
    }

    #[test]
    fn width_kana_and_case_variants_match() {
        let d = doc("公衆トイレ一覧", "", &[]);
        assert!(score(&q("ﾄｲﾚ"), &d).is_some());
        assert!(score(&q("といれ"), &d).is_some());
        let aed = doc("ＡＥＤ設置箇所", "", &[]);
        assert!(score(&q("aed"), &aed).is_some());
        assert!(score(&q("AED"), &aed).is_some());
        assert!(score(&q("ａｅｄ"), &doc("AED設置箇所", "", &[])).is_some());
    }

    #[test]
    fn title_matches_rank_first() {
        let in_title = doc("避難所一覧", "", &[]);
        let in_tags = doc("防災データ", "避難所の情報", &["避難所"]);
        let in_notes = doc("公共施設一覧", "避難所を含む", &[]);
        let (t, g, n) = (
            score(&q("避難所"), &in_title),
            score(&q("避難所"), &in_tags),
            score(&q("避難所"), &in_notes),
        );
        assert!(t > g && g > n && n.is_some(), "{t:?} {g:?} {n:?}");
        let exact = doc("避難所", "", &[]);
        assert!(score(&q("避難所"), &exact) > t);
    }

    #[test]
    fn exclusions_and_fields() {
        let d = doc("避難所一覧（廃止）", "旧データ", &["防災"]);
        assert!(score(&q("避難所 -廃止"), &d).is_none());
        assert!(score(&q("避難所 -新規"), &d).is_some());
        assert!(score(&q("title:防災"), &d).is_none());
        assert!(score(&q("tags:防災"), &d).is_some());
        assert!(score(&q("notes:旧"), &d).is_some());
        assert!(score(&q("-tags:防災"), &d).is_none());
        assert_eq!(score(&q("*:*"), &d), Some(0.0));
    }

    proptest! {
        #[test]
        fn parser_and_scoring_never_panic(s in any::<String>(), t in any::<String>()) {
            let _ = score(&q(&s), &doc(&t, &s, &[&t]));
        }

        /// A query cut from a title always finds the document. The alphabet
        /// avoids query syntax (`"`, `-`, `+`, `:`, the operator words) and
        /// half-width voiced marks, whose NFKC joins them to the previous
        /// character, so a cut through ｶﾞ could not be in the folded title.
        #[test]
        fn substring_of_title_matches(
            title in "[避難場所指定緊急一覧公園トイレとイﾄｲﾚｶﾀABCEFGabcﾛＡＢＣａｂ0-9０-９ 　・()（）_./]{1,30}",
            a in 0usize..30, len in 1usize..10,
        ) {
            let chars: Vec<char> = title.chars().collect();
            let start = a.min(chars.len() - 1);
            let end = (start + len).min(chars.len());
            let cut: String = chars[start..end].iter().collect();
            let d = doc(&title, "", &[]);
            let s = score(&q(&cut), &d);
            prop_assert!(s.is_some(), "{:?} does not find {:?}", cut, title);
            // ...and the index would have offered it as a candidate.
            let index = d.index_terms();
            for term in q(&cut).candidate_terms() {
                prop_assert!(index.binary_search(&term).is_ok(), "{:?} not indexed", term);
            }
        }
    }
}
