//! Dates in the Japanese era calendar (和暦) and the Western forms that
//! Japanese files mix with it. Municipal data writes 令和5年4月1日, R5.4.1,
//! H31.4.30 or 2023/4/1 in the same column; [`parse_date`] reads all of these
//! into a [`NaiveDate`] and refuses a date that its era never had (平成31年
//! 5月1日 is a common mistake: 平成 ended on 30 April 2019). Dates before
//! 明治6年 (1873) are refused too, because until then Japan used a
//! lunisolar calendar and the month and day do not map onto Gregorian ones.

use chrono::{Datelike, NaiveDate};

use crate::width;

/// Builds a constant date; an impossible one fails the build, not a run.
const fn ymd(year: i32, month: u32, day: u32) -> NaiveDate {
    match NaiveDate::from_ymd_opt(year, month, day) {
        Some(date) => date,
        None => panic!("invalid constant date"),
    }
}

/// The Gregorian calendar took effect on 明治6年1月1日.
const GREGORIAN_ADOPTED: NaiveDate = ymd(1873, 1, 1);

struct Era {
    name: &'static str,
    english: &'static str,
    letter: char,
    /// The Gregorian year that is this era's 元年.
    first_year: i32,
    start: NaiveDate,
    /// Last day, for every era but the current one.
    end: Option<NaiveDate>,
}

/// Newest first, which is the order [`format_wareki`] needs.
const ERAS: [Era; 5] = [
    Era {
        name: "令和",
        english: "Reiwa",
        letter: 'R',
        first_year: 2019,
        start: ymd(2019, 5, 1),
        end: None,
    },
    Era {
        name: "平成",
        english: "Heisei",
        letter: 'H',
        first_year: 1989,
        start: ymd(1989, 1, 8),
        end: Some(ymd(2019, 4, 30)),
    },
    Era {
        name: "昭和",
        english: "Showa",
        letter: 'S',
        first_year: 1926,
        start: ymd(1926, 12, 25),
        end: Some(ymd(1989, 1, 7)),
    },
    Era {
        name: "大正",
        english: "Taisho",
        letter: 'T',
        first_year: 1912,
        start: ymd(1912, 7, 30),
        end: Some(ymd(1926, 12, 24)),
    },
    Era {
        name: "明治",
        english: "Meiji",
        letter: 'M',
        first_year: 1868,
        start: ymd(1868, 10, 23),
        end: Some(ymd(1912, 7, 29)),
    },
];

/// Why a date was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    #[error("日付が空です / date is empty")]
    Empty,
    #[error(
        "「{input}」は日付として読めません (例: 令和5年4月1日, R5.4.1, 2023/4/1, 2023-04-01, 20230401) / \
         {input:?} is not a date in a known format (e.g. 令和5年4月1日, R5.4.1, 2023/4/1, 2023-04-01, 20230401)"
    )]
    UnknownFormat { input: String },
    #[error(
        "「{input}」は存在しない日付です ({year}年{month}月{day}日) / \
         {input:?} is not a real date ({year:04}-{month:02}-{day:02} does not exist)"
    )]
    InvalidDate {
        input: String,
        year: i32,
        month: u32,
        day: u32,
    },
    #[error(
        "「{input}」は{era}の始まり ({}) より前です / {input:?} is before {era} ({english}) began on {start}",
        japanese(*start)
    )]
    BeforeEra {
        input: String,
        era: &'static str,
        english: &'static str,
        start: NaiveDate,
    },
    #[error(
        "「{input}」は{era}の終わり ({}) より後です / {input:?} is after {era} ({english}) ended on {end}",
        japanese(*end)
    )]
    AfterEra {
        input: String,
        era: &'static str,
        english: &'static str,
        end: NaiveDate,
    },
    #[error(
        "「{input}」は明治6年より前の旧暦の日付で、西暦に換算できません / \
         {input:?} is before 1873, when Japan still used the lunisolar calendar; it cannot be converted"
    )]
    BeforeGregorian { input: String },
}

fn japanese(date: NaiveDate) -> String {
    format!("{}年{}月{}日", date.year(), date.month(), date.day())
}

/// Formats a date in the era calendar, `令和5年4月1日`, writing 元年 for an
/// era's first year. Dates before 1873 have no faithful era form (see the
/// module note) and are written in the Western calendar, `1850年1月1日`.
pub fn format_wareki(date: NaiveDate) -> String {
    let era = ERAS.iter().find(|era| date >= era.start);
    match era {
        Some(era) if date >= GREGORIAN_ADOPTED => {
            let year = date.year() - era.first_year + 1;
            let year = if year == 1 {
                "元".to_string()
            } else {
                year.to_string()
            };
            format!("{}{}年{}月{}日", era.name, year, date.month(), date.day())
        }
        _ => japanese(date),
    }
}

/// Parses a date written in the era calendar or the Western calendar; see
/// the module note for the forms. Full-width characters, the era ligatures
/// (㋿ ㍻ …) and white space are accepted anywhere.
pub fn parse_date(input: &str) -> Result<NaiveDate, DateError> {
    let text: String = width::normalize(input)
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect();
    if text.is_empty() {
        return Err(DateError::Empty);
    }
    let unknown = || DateError::UnknownFormat {
        input: input.to_string(),
    };

    let (era, rest) = match split_era(&text) {
        Some((era, rest)) => (Some(era), rest),
        None => (None, text.as_str()),
    };
    let parts = parse_parts(rest, era.is_some()).ok_or_else(unknown)?;
    let year = match era {
        Some(era) => {
            if !(1..=3).contains(&parts.year_digits) {
                return Err(unknown());
            }
            era.first_year + parts.year - 1
        }
        None if parts.year_digits == 4 => parts.year,
        None => return Err(unknown()),
    };
    let date = NaiveDate::from_ymd_opt(year, parts.month, parts.day).ok_or_else(|| {
        DateError::InvalidDate {
            input: input.to_string(),
            year,
            month: parts.month,
            day: parts.day,
        }
    })?;
    if let Some(era) = era {
        if date < era.start {
            return Err(DateError::BeforeEra {
                input: input.to_string(),
                era: era.name,
                english: era.english,
                start: era.start,
            });
        }
        if let Some(end) = era.end.filter(|&end| date > end) {
            return Err(DateError::AfterEra {
                input: input.to_string(),
                era: era.name,
                english: era.english,
                end,
            });
        }
        if date < GREGORIAN_ADOPTED {
            return Err(DateError::BeforeGregorian {
                input: input.to_string(),
            });
        }
    }
    Ok(date)
}

/// Recognises an era written in full (令和), by its first character (令),
/// or by its letter in either case (R, r).
fn split_era(text: &str) -> Option<(&'static Era, &str)> {
    ERAS.iter().find_map(|era| {
        if let Some(rest) = text.strip_prefix(era.name) {
            return Some((era, rest));
        }
        let mut chars = text.chars();
        let first = chars.next()?;
        let short = era.name.starts_with(first);
        let letter = first.to_ascii_uppercase() == era.letter;
        let rest = chars.as_str();
        // An abbreviation must be followed by the year, so that words that
        // merely start with 大 or 明 are not taken for dates.
        let starts_year = rest.starts_with(|c: char| c.is_ascii_digit()) || rest.starts_with('元');
        ((short || letter) && starts_year).then_some((era, rest))
    })
}

struct Parts {
    year: i32,
    year_digits: usize,
    month: u32,
    day: u32,
}

/// Reads `Y年M月D日` (the 日 optional), `Y/M/D`, `Y-M-D` or `Y.M.D` (one
/// separator throughout), or eight digits `YYYYMMDD` without an era. 元 is
/// read as year 1 only after an era.
fn parse_parts(text: &str, has_era: bool) -> Option<Parts> {
    if !has_era && text.len() == 8 && text.bytes().all(|b| b.is_ascii_digit()) {
        let (y, md) = text.split_at(4);
        let (m, d) = md.split_at(2);
        return Some(Parts {
            year: y.parse().ok()?,
            year_digits: 4,
            month: m.parse().ok()?,
            day: d.parse().ok()?,
        });
    }
    let (year, year_digits, rest) = match text.strip_prefix('元') {
        Some(rest) if has_era => (1, 1, rest),
        Some(_) => return None,
        None => {
            let (digits, rest) = leading_digits(text);
            (digits.parse().ok()?, digits.len(), rest)
        }
    };
    let (month, day, rest) = if let Some(rest) = rest.strip_prefix('年') {
        let (month, rest) = number(rest, 2)?;
        let rest = rest.strip_prefix('月')?;
        let (day, rest) = number(rest, 2)?;
        (month, day, rest.strip_prefix('日').unwrap_or(rest))
    } else {
        let sep = rest
            .chars()
            .next()
            .filter(|c| matches!(c, '/' | '-' | '.'))?;
        let (month, rest) = number(rest.strip_prefix(sep)?, 2)?;
        let (day, rest) = number(rest.strip_prefix(sep)?, 2)?;
        (month, day, rest)
    };
    rest.is_empty().then_some(Parts {
        year,
        year_digits,
        month,
        day,
    })
}

fn leading_digits(text: &str) -> (&str, &str) {
    let end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    text.split_at(end)
}

/// A number of 1 to `max` ASCII digits at the start of `text`.
fn number(text: &str, max: usize) -> Option<(u32, &str)> {
    let (digits, rest) = leading_digits(text);
    if digits.is_empty() || digits.len() > max {
        return None;
    }
    Some((digits.parse().ok()?, rest))
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn date(input: &str) -> NaiveDate {
        parse_date(input).unwrap_or_else(|e| panic!("{input}: {e}"))
    }

    #[test]
    fn era_forms() {
        let april_first = ymd(2023, 4, 1);
        for input in [
            "令和5年4月1日",
            "令和5年4月1",
            "R5.4.1",
            "r5.4.1",
            "R05/04/01",
            "R5-4-1",
            "令5.4.1",
            "令和５年４月１日",
            "Ｒ５．４．１",
            "令和 5 年 4 月 1 日",
            "㋿5年4月1日",
        ] {
            assert_eq!(date(input), april_first, "{input}");
        }
        assert_eq!(date("令和元年5月1日"), ymd(2019, 5, 1));
        assert_eq!(date("H31.4.30"), ymd(2019, 4, 30));
        assert_eq!(date("平成31年4月30日"), ymd(2019, 4, 30));
        assert_eq!(date("平成元年1月8日"), ymd(1989, 1, 8));
        assert_eq!(date("S64.1.7"), ymd(1989, 1, 7));
        assert_eq!(date("昭和39年10月10日"), ymd(1964, 10, 10));
        assert_eq!(date("大正12年9月1日"), ymd(1923, 9, 1));
        assert_eq!(date("T15.12.24"), ymd(1926, 12, 24));
        assert_eq!(date("明治45年7月29日"), ymd(1912, 7, 29));
        assert_eq!(date("M6.1.1"), ymd(1873, 1, 1));
    }

    #[test]
    fn western_forms() {
        let april_first = ymd(2023, 4, 1);
        for input in [
            "2023/4/1",
            "2023-04-01",
            "2023.4.1",
            "2023年4月1日",
            "20230401",
            "２０２３／０４／０１",
            " 2023-04-01 ",
        ] {
            assert_eq!(date(input), april_first, "{input}");
        }
    }

    #[test]
    fn dates_outside_their_era_are_refused() {
        let err = parse_date("平成31年5月1日").unwrap_err();
        assert!(
            matches!(err, DateError::AfterEra { era: "平成", .. }),
            "{err:?}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("2019年4月30日") && msg.contains("ended on 2019-04-30"),
            "{msg}"
        );

        let err = parse_date("令和1年4月30日").unwrap_err();
        assert!(
            matches!(err, DateError::BeforeEra { era: "令和", .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("began on 2019-05-01"), "{err}");

        assert!(matches!(
            parse_date("S64.1.8"),
            Err(DateError::AfterEra { .. })
        ));
        assert!(matches!(
            parse_date("H1.1.7"),
            Err(DateError::BeforeEra { .. })
        ));
        assert!(matches!(
            parse_date("令和0年5月1日"),
            Err(DateError::BeforeEra { .. })
        ));
        assert!(matches!(
            parse_date("平成100年1月1日"),
            Err(DateError::AfterEra { .. })
        ));
        assert!(matches!(
            parse_date("明治5年12月2日"),
            Err(DateError::BeforeGregorian { .. })
        ));
    }

    #[test]
    fn impossible_dates_are_refused() {
        let err = parse_date("2023年2月30日").unwrap_err();
        assert_eq!(
            err,
            DateError::InvalidDate {
                input: "2023年2月30日".into(),
                year: 2023,
                month: 2,
                day: 30
            }
        );
        assert!(
            err.to_string().contains("2023-02-30 does not exist"),
            "{err}"
        );
        assert!(matches!(
            parse_date("令和5年2月29日"),
            Err(DateError::InvalidDate { .. })
        ));
        assert_eq!(date("令和6年2月29日"), ymd(2024, 2, 29));
        assert!(matches!(
            parse_date("2023/13/1"),
            Err(DateError::InvalidDate { .. })
        ));
    }

    #[test]
    fn unknown_formats_are_refused() {
        assert_eq!(parse_date("\u{3000}"), Err(DateError::Empty));
        for input in [
            "2023/4",
            "23/4/1",
            "2023/4-1",
            "2023/4/1 10:00",
            "令和5年",
            "元年5月1日",
            "R",
            "大阪",
            "20231",
            "R5.004.1",
            "April 1, 2023",
        ] {
            assert!(
                matches!(parse_date(input), Err(DateError::UnknownFormat { .. })),
                "{input}: {:?}",
                parse_date(input)
            );
        }
        let msg = parse_date("tomorrow").unwrap_err().to_string();
        assert!(
            msg.contains("日付として読めません") && msg.contains("not a date"),
            "{msg}"
        );
    }

    #[test]
    fn formats_in_the_era_calendar() {
        assert_eq!(format_wareki(ymd(2023, 4, 1)), "令和5年4月1日");
        assert_eq!(format_wareki(ymd(2019, 5, 1)), "令和元年5月1日");
        assert_eq!(format_wareki(ymd(2019, 4, 30)), "平成31年4月30日");
        assert_eq!(format_wareki(ymd(1989, 1, 8)), "平成元年1月8日");
        assert_eq!(format_wareki(ymd(1989, 1, 7)), "昭和64年1月7日");
        assert_eq!(format_wareki(ymd(1926, 12, 25)), "昭和元年12月25日");
        assert_eq!(format_wareki(ymd(1912, 7, 30)), "大正元年7月30日");
        assert_eq!(format_wareki(ymd(1873, 1, 1)), "明治6年1月1日");
        assert_eq!(format_wareki(ymd(1850, 1, 1)), "1850年1月1日");
    }

    proptest! {
        #[test]
        fn never_panics(s in any::<String>()) {
            if let Err(e) = parse_date(&s) {
                prop_assert!(!e.to_string().is_empty());
            }
        }

        #[test]
        fn never_panics_on_date_like_text(s in "[RHSTM令平昭大明和成正治元年月日0-9/.-]{0,14}") {
            let _ = parse_date(&s);
        }

        #[test]
        fn wareki_round_trips(days in 0i64..(365 * 250)) {
            let d = GREGORIAN_ADOPTED + chrono::Duration::days(days);
            prop_assert_eq!(parse_date(&format_wareki(d)), Ok(d));
            prop_assert_eq!(parse_date(&d.format("%Y-%m-%d").to_string()), Ok(d));
            prop_assert_eq!(parse_date(&d.format("%Y%m%d").to_string()), Ok(d));
        }
    }
}
