//! ISO 8601 durations as `aggrPeriodDuration` uses them (`P1D`, `PT1H`, `P1M`,
//! `P1Y2M3DT4H5M6.5S`, `P2W`): years and months are calendar units, added to a
//! date-time with the calendar (31 January + P1M is the last day of February), while
//! weeks, days and the time part are fixed lengths (NGSI-LD times are UTC, so a day is
//! always 24 hours).

use chrono::{DateTime, Duration, Months, Utc};
use std::fmt;

/// A positive ISO 8601 duration, split into its calendar part (months) and its
/// fixed part (days and an exact time span).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IsoDuration {
    /// Years × 12 + months.
    pub months: u32,
    /// Weeks × 7 + days.
    pub days: u32,
    /// Hours, minutes and seconds, in milliseconds.
    pub millis: u64,
}

/// Why a text is not a usable duration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{text}' is not an ISO 8601 duration such as P1D, PT1H or P1M: {why}")]
pub struct DurationError {
    pub text: String,
    pub why: &'static str,
}

impl IsoDuration {
    /// Parses `PnYnMnWnDTnHnMnS` (every part optional, at least one present, only the
    /// seconds may have a fraction). A zero duration is refused: it cannot divide time.
    pub fn parse(text: &str) -> Result<IsoDuration, DurationError> {
        let fail = |why| DurationError {
            text: text.to_owned(),
            why,
        };
        let rest = text
            .strip_prefix('P')
            .ok_or_else(|| fail("it must start with P"))?;
        let (date_part, time_part) = match rest.split_once('T') {
            Some((_, "")) => return Err(fail("T must be followed by hours, minutes or seconds")),
            Some((date, time)) => (date, Some(time)),
            None => (rest, None),
        };
        let mut duration = IsoDuration {
            months: 0,
            days: 0,
            millis: 0,
        };
        let mut any = false;
        for (number, unit) in components(date_part, "YMWD").map_err(fail)? {
            any = true;
            let whole =
                whole_number(number).ok_or_else(|| fail("only seconds may have a fraction"))?;
            let added = match unit {
                'Y' => whole
                    .checked_mul(12)
                    .and_then(|m| duration.months.checked_add(m)),
                'M' => duration.months.checked_add(whole),
                'W' => whole
                    .checked_mul(7)
                    .and_then(|d| duration.days.checked_add(d)),
                'D' => duration.days.checked_add(whole),
                _ => return Err(fail("the date part takes Y, M, W and D")),
            };
            let total = added.ok_or_else(|| fail("it is too long"))?;
            match unit {
                'Y' | 'M' => duration.months = total,
                _ => duration.days = total,
            }
        }
        for (number, unit) in components(time_part.unwrap_or(""), "HMS").map_err(fail)? {
            any = true;
            let unit_millis: f64 = match unit {
                'H' => 3_600_000.0,
                'M' => 60_000.0,
                'S' => 1_000.0,
                _ => return Err(fail("the time part takes H, M and S")),
            };
            if unit != 'S' && whole_number(number).is_none() {
                return Err(fail("only seconds may have a fraction"));
            }
            let value: f64 = number
                .replace(',', ".")
                .parse()
                .map_err(|_| fail("a number is not valid"))?;
            let millis = (value * unit_millis).round();
            if !millis.is_finite() || millis > 1e15 {
                return Err(fail("it is too long"));
            }
            duration.millis += millis as u64;
        }
        if !any {
            return Err(fail(
                "it names no years, months, weeks, days, hours, minutes or seconds",
            ));
        }
        if duration.months == 0 && duration.days == 0 && duration.millis == 0 {
            return Err(fail("it must be longer than zero"));
        }
        Ok(duration)
    }

    /// `start` plus `times` of this duration, the calendar part added in one step so
    /// that P1M from 31 January lands on the last day of each later month without
    /// drifting. `None` past the range chrono can represent.
    pub fn add_times(&self, start: DateTime<Utc>, times: u32) -> Option<DateTime<Utc>> {
        let months = self.months.checked_mul(times)?;
        let days = i64::from(self.days).checked_mul(i64::from(times))?;
        let millis = i64::try_from(self.millis)
            .ok()?
            .checked_mul(i64::from(times))?;
        start
            .checked_add_months(Months::new(months))?
            .checked_add_signed(Duration::try_days(days)?)?
            .checked_add_signed(Duration::try_milliseconds(millis)?)
    }

    /// The length in whole hours, when the duration has no calendar part and is a
    /// whole number of hours (PT1H, PT6H, P1D, P1W).
    pub fn whole_hours(&self) -> Option<u64> {
        const HOUR_MILLIS: u64 = 3_600_000;
        let millis = u64::from(self.days) * 24 * HOUR_MILLIS + self.millis;
        (self.months == 0 && millis.is_multiple_of(HOUR_MILLIS)).then_some(millis / HOUR_MILLIS)
    }

    /// An approximate length in milliseconds (a month as 30.436875 days), used only to
    /// guess which period a time falls in before checking it exactly.
    pub(crate) fn nominal_millis(&self) -> f64 {
        const MONTH_MILLIS: f64 = 30.436_875 * 86_400_000.0;
        f64::from(self.months) * MONTH_MILLIS
            + f64::from(self.days) * 86_400_000.0
            + self.millis as f64
    }
}

impl fmt::Display for IsoDuration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "P")?;
        if self.months > 0 {
            write!(f, "{}M", self.months)?;
        }
        if self.days > 0 {
            write!(f, "{}D", self.days)?;
        }
        if self.millis > 0 {
            let seconds = self.millis / 1000;
            let fraction = self.millis % 1000;
            if fraction == 0 {
                write!(f, "T{seconds}S")?;
            } else {
                write!(f, "T{seconds}.{fraction:03}S")?;
            }
        }
        Ok(())
    }
}

/// Splits `1Y2M3D` into `[("1", 'Y'), ("2", 'M'), ("3", 'D')]`, the designators in
/// the order `order` gives (an unknown one is left to the caller's unit check).
fn components<'a>(text: &'a str, order: &str) -> Result<Vec<(&'a str, char)>, &'static str> {
    let mut out: Vec<(&str, char)> = Vec::new();
    let mut start = 0;
    let mut last_rank = None;
    for (at, c) in text.char_indices() {
        if c.is_ascii_digit() || c == '.' || c == ',' {
            continue;
        }
        let number = &text[start..at];
        if number.is_empty() {
            return Err("every designator needs a number before it");
        }
        if let Some(rank) = order.find(c) {
            if last_rank.is_some_and(|last| rank <= last) {
                return Err("designators must appear once each, in the order YMWD and HMS");
            }
            last_rank = Some(rank);
        }
        out.push((number, c));
        start = at + c.len_utf8();
    }
    if start != text.len() {
        return Err("a number has no designator after it");
    }
    Ok(out)
}

fn whole_number(number: &str) -> Option<u32> {
    if number.bytes().all(|b| b.is_ascii_digit()) {
        number.parse().ok()
    } else {
        None
    }
}
