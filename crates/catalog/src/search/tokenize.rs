//! Terms for an n-gram index. Japanese has no spaces between words, so a
//! word index cannot find 避難 inside 指定緊急避難場所一覧; an index of every
//! character bigram (and unigram) of the folded text can, on any SQL store,
//! with a plain `(term, dataset)` table. The index only narrows the
//! candidates: the store then confirms each candidate with the substring check
//! of [`super::score()`]. The one contract between the two halves is
//! [`candidate_terms`] ⊆ [`index_terms`] whenever the folded word occurs in the
//! folded text, which the property tests below check.

use jp::width::fold_for_search;

/// Folds text the way every part of search compares it: NFKC, katakana to
/// hiragana, lower case (see [`jp::width::fold_for_search`]).
pub fn fold(text: &str) -> String {
    fold_for_search(text)
}

/// The index terms of one field value: every character (unigram) and every
/// pair of adjacent characters (bigram) of each white-space separated run of
/// the folded text, plus each whole lower-cased ASCII word (`aed`, `csv`),
/// sorted and without duplicates.
///
/// Unigrams are indexed for every character, not only for one-character runs,
/// because one-character query words (市, 駅, 川) are common in Japanese and
/// must still be able to use the index; a document's unigrams are few, as
/// characters repeat. Bigrams never span white space, which a query word (as
/// opposed to a phrase) never contains.
pub fn index_terms(text: &str) -> Vec<String> {
    let folded = fold(text);
    let mut terms = Vec::new();
    for run in folded.split_whitespace() {
        push_grams(run, true, &mut terms);
        for word in run.split(|c: char| !c.is_ascii_alphanumeric()) {
            if word.len() > 2 {
                terms.push(word.to_string());
            }
        }
    }
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// The index terms a store must require (all of them) of a document that can
/// contain `word` as a folded substring: the bigrams of each white-space run
/// of the folded word, or the unigram of a one-character run. An empty result
/// (a word that folds to nothing) means the index cannot narrow the search.
///
/// Contract: if `fold(word)` is a substring of `fold(text)`, then every term
/// returned here is in `index_terms(text)`. The converse does not hold (the
/// bigrams may sit in different places), which is why candidates are checked.
pub fn candidate_terms(word: &str) -> Vec<String> {
    let folded = fold(word);
    let mut terms = Vec::new();
    for run in folded.split_whitespace() {
        push_grams(run, false, &mut terms);
    }
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// Pushes the bigrams of `run`, and its unigrams when `all_unigrams` is set or
/// the run is a single character (which has no bigram).
fn push_grams(run: &str, all_unigrams: bool, out: &mut Vec<String>) {
    let chars: Vec<char> = run.chars().collect();
    if all_unigrams || chars.len() == 1 {
        out.extend(chars.iter().map(|c| c.to_string()));
    }
    out.extend(chars.windows(2).map(|w| w.iter().collect::<String>()));
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn has(terms: &[String], t: &str) -> bool {
        terms.iter().any(|x| x == t)
    }

    #[test]
    fn japanese_title_gets_bigrams_and_unigrams() {
        let terms = index_terms("指定緊急避難場所一覧");
        for t in ["避難", "指定", "一覧", "避", "覧"] {
            assert!(has(&terms, t), "{t} missing from {terms:?}");
        }
        assert!(!has(&terms, "避難場"));
        assert_eq!(candidate_terms("避難"), vec!["避難".to_string()]);
        assert_eq!(candidate_terms("避難場所"), vec!["場所", "避難", "難場"]);
    }

    #[test]
    fn width_and_kana_variants_index_alike() {
        assert_eq!(index_terms("ﾄｲﾚ"), index_terms("トイレ"));
        assert_eq!(candidate_terms("ﾄｲﾚ"), vec!["いれ", "とい"]);
        assert!(has(&index_terms("ＡＥＤ設置場所"), "aed"));
        assert_eq!(candidate_terms("ＡＥＤ"), candidate_terms("aed"));
    }

    #[test]
    fn single_characters_and_blank_words() {
        assert_eq!(candidate_terms("市"), vec!["市".to_string()]);
        assert!(has(&index_terms("焼津市 公園"), "市"));
        // No bigram spans the space between runs.
        assert!(!has(&index_terms("焼津市 公園"), "市 "));
        assert!(!has(&index_terms("焼津市 公園"), "市公"));
        assert!(candidate_terms(" \u{3000} ").is_empty());
        assert!(index_terms("").is_empty());
        assert_eq!(candidate_terms("避難 所"), vec!["所", "避難"]);
    }

    proptest! {
        #[test]
        fn tokenisers_never_panic(s in any::<String>()) {
            let _ = index_terms(&s);
            let _ = candidate_terms(&s);
        }

        /// The index contract, for any text and any piece of its folded form.
        #[test]
        fn candidate_terms_are_indexed(text in any::<String>(), a in 0usize..64, len in 0usize..12) {
            let folded: Vec<char> = fold(&text).chars().collect();
            let start = a.min(folded.len());
            let end = (start + len).min(folded.len());
            let word: String = folded[start..end].iter().collect();
            prop_assume!(fold(&text).contains(&fold(&word)));
            let index = index_terms(&text);
            for term in candidate_terms(&word) {
                prop_assert!(index.binary_search(&term).is_ok(), "{:?} not indexed", term);
            }
        }

        /// The same contract on realistic Japanese text with width variants,
        /// where the word is cut from the raw (unfolded) text.
        #[test]
        fn candidate_terms_are_indexed_japanese(
            text in "[避難場所指定緊急一覧トイレﾄｲﾚAEDＡＥＤaed0-9０-９ 　・（）]{0,30}",
            a in 0usize..30, len in 0usize..8,
        ) {
            let chars: Vec<char> = text.chars().collect();
            let start = a.min(chars.len());
            let end = (start + len).min(chars.len());
            let word: String = chars[start..end].iter().collect();
            prop_assert!(fold(&text).contains(&fold(&word)));
            let index = index_terms(&text);
            for term in candidate_terms(&word) {
                prop_assert!(index.binary_search(&term).is_ok(), "{:?} not indexed", term);
            }
        }
    }
}
