//! The Japanese field types, fed what residents really type.

use chrono::NaiveDate;
use procedures::form::{my_number_check_digit, normalize_kana, FormatError, RenkeiType};
use proptest::prelude::*;

fn today() -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 6, 1).expect("valid date")
}

fn norm(kind: RenkeiType, input: &str) -> Result<String, FormatError> {
    kind.normalize(input, today())
}

#[test]
fn kana_accepts_hiragana_half_width_and_katakana() {
    assert_eq!(
        normalize_kana("やまだ　たろう").as_deref(),
        Some("ヤマダ\u{3000}タロウ")
    );
    assert_eq!(
        normalize_kana("ﾔﾏﾀﾞ ﾀﾛｳ").as_deref(),
        Some("ヤマダ\u{3000}タロウ")
    );
    assert_eq!(
        normalize_kana("ヤマダ  タロウ").as_deref(),
        Some("ヤマダ\u{3000}タロウ")
    );
    assert_eq!(
        normalize_kana(" すずき　はなこ ").as_deref(),
        Some("スズキ\u{3000}ハナコ")
    );
    assert_eq!(normalize_kana("ゔぃーなす").as_deref(), Some("ヴィーナス"));
    assert_eq!(
        normalize_kana("ｼﾞｮｰｼﾞ・ｽﾐｽ").as_deref(),
        Some("ジョージ・スミス")
    );
}

#[test]
fn kana_refuses_kanji_and_latin() {
    assert_eq!(normalize_kana("山田太郎"), None);
    assert_eq!(normalize_kana("Yamada"), None);
    assert_eq!(normalize_kana("ヤマダ1"), None);
    assert_eq!(normalize_kana("　"), None);
    assert_eq!(norm(RenkeiType::Kana, "山田"), Err(FormatError::Kana));
}

#[test]
fn postal_code_forms() {
    for input in [
        "〒１２３－４５６７",
        "1234567",
        "123-4567",
        "１２３ー４５６７",
        "〒 123‐4567",
    ] {
        assert_eq!(
            norm(RenkeiType::PostalCode, input).as_deref(),
            Ok("123-4567"),
            "{input}"
        );
    }
    for input in ["123-456", "12345678", "〒abc-defg", "1234-567"] {
        assert_eq!(
            norm(RenkeiType::PostalCode, input),
            Err(FormatError::PostalCode),
            "{input}"
        );
    }
}

#[test]
fn phone_forms() {
    assert_eq!(
        norm(RenkeiType::Phone, "０５４－６２６－１１３９").as_deref(),
        Ok("054-626-1139")
    );
    assert_eq!(
        norm(RenkeiType::Phone, "(054)626-1139").as_deref(),
        Ok("054-626-1139")
    );
    assert_eq!(
        norm(RenkeiType::Phone, "09012345678").as_deref(),
        Ok("090-1234-5678")
    );
    assert_eq!(
        norm(RenkeiType::Phone, "+81 90 1234 5678").as_deref(),
        Ok("090-1234-5678")
    );
    assert_eq!(
        norm(RenkeiType::Phone, "090-1234-567"),
        Err(FormatError::Phone)
    );
    assert_eq!(norm(RenkeiType::Phone, "でんわ"), Err(FormatError::Phone));
}

#[test]
fn dates_in_wareki_and_western_forms() {
    for input in [
        "令和5年4月1日",
        "R5.4.1",
        "Ｒ５．４．１",
        "2023/4/1",
        "2023-04-01",
        "令和５年４月１日",
    ] {
        assert_eq!(
            norm(RenkeiType::Date, input).as_deref(),
            Ok("2023-04-01"),
            "{input}"
        );
    }
    assert_eq!(
        norm(RenkeiType::Date, "平成元年1月8日").as_deref(),
        Ok("1989-01-08")
    );
    assert_eq!(
        norm(RenkeiType::Date, "昭和60年12月31日").as_deref(),
        Ok("1985-12-31")
    );
    assert_eq!(
        norm(RenkeiType::Date, "平成31年5月1日"),
        Err(FormatError::Date)
    );
    assert_eq!(norm(RenkeiType::Date, "2023-02-30"), Err(FormatError::Date));
    assert_eq!(norm(RenkeiType::Date, "きのう"), Err(FormatError::Date));
}

#[test]
fn birth_date_is_not_in_the_future() {
    assert_eq!(
        norm(RenkeiType::BirthDate, "令和6年6月1日").as_deref(),
        Ok("2024-06-01")
    );
    assert_eq!(
        norm(RenkeiType::BirthDate, "令和6年6月2日"),
        Err(FormatError::FutureDate)
    );
    assert_eq!(
        norm(RenkeiType::BirthDate, "2030-01-01"),
        Err(FormatError::FutureDate)
    );
    assert_eq!(
        norm(RenkeiType::BirthDate, "S50.3.3").as_deref(),
        Ok("1975-03-03")
    );
}

#[test]
fn my_number_check_digit_matches_the_worked_example() {
    // Worked by hand from the weights in 施行令第8条: body 12345678901 sums to 212,
    // 212 mod 11 = 3, check digit 11 - 3 = 8.
    assert_eq!(my_number_check_digit("12345678901"), Some(8));
    assert_eq!(my_number_check_digit("1234567890"), None);
    assert_eq!(my_number_check_digit("1234567890a"), None);
    assert_eq!(
        norm(RenkeiType::MyNumber, "123456789018").as_deref(),
        Ok("123456789018")
    );
    assert_eq!(
        norm(RenkeiType::MyNumber, "１２３４ ５６７８ ９０１８").as_deref(),
        Ok("123456789018")
    );
    assert_eq!(
        norm(RenkeiType::MyNumber, "1234-5678-9018").as_deref(),
        Ok("123456789018")
    );
    assert_eq!(
        norm(RenkeiType::MyNumber, "123456789017"),
        Err(FormatError::MyNumberCheckDigit)
    );
    assert_eq!(
        norm(RenkeiType::MyNumber, "12345678901"),
        Err(FormatError::MyNumberFormat)
    );
    assert_eq!(
        norm(RenkeiType::MyNumber, "12345678901x"),
        Err(FormatError::MyNumberFormat)
    );
}

#[test]
fn email_accepts_full_width_and_lowercases_the_domain() {
    assert_eq!(
        norm(RenkeiType::Email, "ｔａｒｏ＠Example.JP").as_deref(),
        Ok("taro@example.jp")
    );
    assert_eq!(
        norm(RenkeiType::Email, "taro.yamada+form@city.yaizu.lg.jp").as_deref(),
        Ok("taro.yamada+form@city.yaizu.lg.jp")
    );
    for bad in [
        "taro",
        "taro@localhost",
        "@example.jp",
        "taro@@example.jp",
        "ta ro@example.jp",
        "taro@exa_mple.jp",
    ] {
        assert_eq!(
            norm(RenkeiType::Email, bad),
            Err(FormatError::Email),
            "{bad}"
        );
    }
}

/// Single check digits computed from the definition, independently of the crate: every
/// 11-digit body completed with its digit is accepted, and with any other digit refused.
fn reference_check_digit(body: &[u32; 11]) -> u32 {
    let mut sum = 0;
    for n in 1..=11usize {
        let p = body[11 - n];
        let q = if n <= 6 { n as u32 + 1 } else { n as u32 - 5 };
        sum += p * q;
    }
    match sum % 11 {
        0 | 1 => 0,
        r => 11 - r,
    }
}

proptest! {
    #[test]
    fn my_number_check_digit_agrees_with_the_definition(body in proptest::array::uniform11(0u32..10), wrong in 1u32..10) {
        let text: String = body.iter().map(|d| char::from_digit(*d, 10).unwrap_or('0')).collect();
        let check = reference_check_digit(&body);
        prop_assert_eq!(my_number_check_digit(&text), Some(check));
        let good = format!("{text}{check}");
        prop_assert_eq!(norm(RenkeiType::MyNumber, &good), Ok(good.clone()));
        let bad = format!("{text}{}", (check + wrong) % 10);
        prop_assert_eq!(norm(RenkeiType::MyNumber, &bad), Err(FormatError::MyNumberCheckDigit));
    }

    #[test]
    fn every_type_is_idempotent_and_never_panics(input in "\\PC{0,24}", which in 0usize..7) {
        let kind = RenkeiType::ALL[which];
        if let Ok(once) = norm(kind, &input) {
            prop_assert_eq!(norm(kind, &once), Ok(once.clone()));
        }
    }

    #[test]
    fn kana_from_hiragana_is_idempotent(input in "[ぁ-ゖァ-ヺｦ-ﾟー 　]{1,20}") {
        if let Some(once) = normalize_kana(&input) {
            prop_assert_eq!(normalize_kana(&once), Some(once.clone()));
            let katakana = once.chars().all(|c| ('\u{30A1}'..='\u{30FE}').contains(&c) || c == '\u{3000}');
            prop_assert!(katakana);
        }
    }
}

#[test]
fn postal_lookup_normalises_what_was_typed() {
    use procedures::form::{lookup_address, PostalAddress, StaticPostalDirectory};
    let mut dir = StaticPostalDirectory::new();
    let yaizu = PostalAddress {
        prefecture: "静岡県".into(),
        city: "焼津市".into(),
        town: "本町".into(),
    };
    dir.insert("4250022", yaizu.clone()).expect("valid code");
    assert_eq!(lookup_address(&dir, "〒４２５－００２２"), Ok(vec![yaizu]));
    assert_eq!(lookup_address(&dir, "425-0023"), Ok(vec![]));
    assert!(lookup_address(&dir, "42500").is_err());
    assert!(dir
        .insert(
            "abc",
            PostalAddress {
                prefecture: String::new(),
                city: String::new(),
                town: String::new()
            }
        )
        .is_err());
}
