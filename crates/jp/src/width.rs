//! Full-width / half-width normalisation (全角・半角の正規化). Japanese files
//! write the same text in several ways: full-width digits (２階), half-width
//! katakana from old systems (ﾄｲﾚ), full-width Latin letters, and a zoo of
//! dash-like characters where a minus or hyphen was meant. Validators want
//! ASCII digits; search wants ﾄｲﾚ, トイレ and といれ to be the same word. This
//! module gives three levels: [`normalize_digits`] touches only numbers,
//! [`normalize`] applies Unicode NFKC, and [`fold_for_search`] further folds
//! katakana to hiragana and case.

use unicode_normalization::UnicodeNormalization;

/// Characters that people (and input methods) type where a hyphen or minus
/// sign was meant, in telephone numbers, postal codes and addresses.
const DASHES: &[char] = &[
    '\u{2010}', // ‐ hyphen
    '\u{2011}', // ‑ non-breaking hyphen
    '\u{2012}', // ‒ figure dash
    '\u{2013}', // – en dash
    '\u{2014}', // — em dash
    '\u{2015}', // ― horizontal bar
    '\u{2212}', // − minus sign
    '\u{FE63}', // ﹣ small hyphen-minus
    '\u{FF0D}', // － full-width hyphen-minus
    '\u{30FC}', // ー katakana prolonged sound mark
    '\u{FF70}', // ｰ half-width prolonged sound mark
];

fn full_width_digit(c: char) -> Option<char> {
    match c {
        '０'..='９' => char::from_u32(c as u32 - '０' as u32 + '0' as u32),
        _ => None,
    }
}

fn is_ascii_or_wide_digit(c: char) -> bool {
    c.is_ascii_digit() || full_width_digit(c).is_some()
}

fn is_kana(c: char) -> bool {
    matches!(c, '\u{3041}'..='\u{309F}' | '\u{30A0}'..='\u{30FF}' | '\u{FF66}'..='\u{FF9F}')
}

/// Converts full-width digits to ASCII everywhere, and number punctuation
/// (full-width `．－＋，` and the dash look-alikes such as `ー` and `−`) to
/// ASCII when it is followed by a digit, so that `０５４ー６２５ー０１２８`
/// becomes `054-625-0128` while the `ー` of a katakana word such as `センター`
/// stays. A prolonged sound mark right after kana is always left alone, since
/// there it is part of the word (`データー1` keeps its `ー`).
pub fn normalize_digits(input: &str) -> String {
    // Everything rewritten below is non-ASCII, so ASCII text (most
    // numbers, codes and phone numbers in real files) comes back as it is.
    if input.is_ascii() {
        return input.to_owned();
    }
    rewrite_digits(input)
}

/// [`normalize_digits`] without its shortcut for ASCII.
fn rewrite_digits(input: &str) -> String {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len());
    for (i, &c) in chars.iter().enumerate() {
        if let Some(d) = full_width_digit(c) {
            out.push(d);
            continue;
        }
        let next_is_digit = chars.get(i + 1).is_some_and(|&n| is_ascii_or_wide_digit(n));
        let prev = i.checked_sub(1).and_then(|p| chars.get(p)).copied();
        let replacement = match c {
            '．' => Some('.'),
            '，' => Some(','),
            '＋' => Some('+'),
            '\u{30FC}' | '\u{FF70}' if prev.is_some_and(is_kana) => None,
            _ if DASHES.contains(&c) => Some('-'),
            _ => None,
        };
        match replacement {
            Some(r) if next_is_digit => out.push(r),
            _ => out.push(c),
        }
    }
    out
}

/// Applies Unicode NFKC and trims white space (including the ideographic
/// space U+3000) at both ends. NFKC is the standard way to merge width
/// variants: half-width katakana become full-width with their voiced marks
/// combined (`ｶﾞｽ` → `ガス`), full-width ASCII becomes ASCII (`ＡＢＣ１` →
/// `ABC1`), and the ideographic space becomes an ordinary space.
pub fn normalize(input: &str) -> String {
    let nfkc: String = input.trim().nfkc().collect();
    nfkc.trim().to_string()
}

/// Folds text for search matching: [`normalize`], then katakana to hiragana
/// and lower case, so that `ﾄｲﾚ`, `トイレ` and `といれ` give the same key.
/// The result is for comparison only, never for display.
pub fn fold_for_search(input: &str) -> String {
    normalize(input)
        .chars()
        .map(katakana_to_hiragana)
        .flat_map(char::to_lowercase)
        .collect()
}

/// The katakana block ァ..ヶ and the iteration marks ヽヾ sit exactly 0x60
/// above their hiragana counterparts; ヷ..ヺ and ー have none and stay.
fn katakana_to_hiragana(c: char) -> char {
    match c {
        '\u{30A1}'..='\u{30F6}' | '\u{30FD}' | '\u{30FE}' => {
            char::from_u32(c as u32 - 0x60).unwrap_or(c)
        }
        _ => c,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn digits_and_number_punctuation_become_ascii() {
        assert_eq!(normalize_digits("０５４ー６２５ー０１２８"), "054-625-0128");
        assert_eq!(normalize_digits("２階"), "2階");
        assert_eq!(normalize_digits("＋８１"), "+81");
        assert_eq!(normalize_digits("１，０００．５"), "1,000.5");
        assert_eq!(normalize_digits("−５"), "-5");
        assert_eq!(normalize_digits("425－0028"), "425-0028");
    }

    #[test]
    fn dashes_not_before_digits_are_kept() {
        assert_eq!(normalize_digits("センター"), "センター");
        assert_eq!(normalize_digits("データー1"), "データー1");
        assert_eq!(normalize_digits("都道府県コ―ド"), "都道府県コ―ド");
        assert_eq!(normalize_digits("A－B"), "A－B");
        assert_eq!(normalize_digits("5ー"), "5ー");
    }

    #[test]
    fn nfkc_merges_width_variants() {
        assert_eq!(normalize("ﾄｲﾚ"), "トイレ");
        assert_eq!(normalize("ｶﾞｽ"), "ガス");
        assert_eq!(normalize("ﾊﾟﾝ"), "パン");
        assert_eq!(normalize("ＡＢＣ１２３"), "ABC123");
        assert_eq!(normalize("\u{3000}焼津市\u{3000}"), "焼津市");
        assert_eq!(normalize("  焼津\u{3000}市 "), "焼津 市");
    }

    #[test]
    fn search_folding_matches_all_kana_spellings() {
        let key = fold_for_search("トイレ");
        assert_eq!(key, "といれ");
        assert_eq!(fold_for_search("ﾄｲﾚ"), key);
        assert_eq!(fold_for_search("といれ"), key);
        assert_eq!(fold_for_search("ＡＥＤ"), "aed");
        assert_eq!(fold_for_search("ヴァイオリン"), "ゔぁいおりん");
        assert_ne!(fold_for_search("トイレ"), fold_for_search("トイラ"));
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            let _ = normalize_digits(&s);
            let _ = fold_for_search(&s);
            let n = normalize(&s);
            // Trimming happens after NFKC, so there is nothing left to trim.
            prop_assert_eq!(n.trim(), n.as_str());
        }

        #[test]
        fn ascii_digits_unchanged(s in "[0-9.,+-]{0,20}") {
            prop_assert_eq!(normalize_digits(&s), s);
        }

        /// The ASCII shortcut gives what the full rewrite gives.
        #[test]
        fn ascii_shortcut_agrees_with_the_rewrite(s in "[\\x00-\\x7F]{0,40}") {
            prop_assert_eq!(normalize_digits(&s), rewrite_digits(&s));
            prop_assert_eq!(rewrite_digits(&s), s);
        }

        #[test]
        fn the_shortcut_only_takes_ascii(s in any::<String>()) {
            prop_assert_eq!(normalize_digits(&s), rewrite_digits(&s));
        }
    }
}
