//! Timestamps written as RFC 3339 in UTC (`2026-11-28T20:45:00.123456Z`), exactly as
//! chrono's `to_rfc3339_opts(format, true)` writes them, with the digits put down
//! directly. Every stored attribute carries two or three stamps, so one entity write
//! formats about twenty; chrono's general formatting machinery and a heap string for
//! each were an eighth of what building a new entity's stored rows cost.
//! Years outside 0–9999 and leap seconds, which chrono writes in forms of their own,
//! are left to chrono.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use std::cell::Cell;

/// `time` in RFC 3339, UTC with `Z`, and the fraction of a second `format` asks for
/// (truncated, as chrono truncates; `AutoSi` writes as few groups of three digits as
/// keep it exact).
pub fn rfc3339_utc(time: &DateTime<Utc>, format: SecondsFormat) -> String {
    Rfc3339::new(time, format).as_str().to_owned()
}

/// A timestamp written as [`rfc3339_utc`] writes it, held where it is made rather than
/// on the heap: a stored document or row is written straight from it.
#[derive(Clone, Copy)]
pub struct Rfc3339 {
    bytes: [u8; Rfc3339::CAPACITY],
    len: u8,
}

impl Rfc3339 {
    /// The longest stamp chrono writes: a six-digit signed year, a leap second and
    /// nanoseconds (`+262142-12-31T23:59:60.999999999Z`).
    const CAPACITY: usize = 40;

    /// `time` with the fraction of a second `format` asks for, as [`rfc3339_utc`].
    pub fn new(time: &DateTime<Utc>, format: SecondsFormat) -> Rfc3339 {
        let mut stamp = Rfc3339 {
            bytes: [0; Rfc3339::CAPACITY],
            len: 0,
        };
        let naive = time.naive_utc();
        let nanos = naive.nanosecond();
        let digits = match format {
            SecondsFormat::Secs => Some(0),
            SecondsFormat::Millis => Some(3),
            SecondsFormat::Micros => Some(6),
            SecondsFormat::Nanos => Some(9),
            SecondsFormat::AutoSi if nanos == 0 => Some(0),
            SecondsFormat::AutoSi if nanos.is_multiple_of(1_000_000) => Some(3),
            SecondsFormat::AutoSi if nanos.is_multiple_of(1_000) => Some(6),
            SecondsFormat::AutoSi => Some(9),
            _ => None,
        };
        let year = u32::try_from(naive.year())
            .ok()
            .filter(|year| *year <= 9999);
        let (Some(digits), Some(year), true) = (digits, year, nanos < 1_000_000_000) else {
            let text = time.to_rfc3339_opts(format, true);
            let len = text.len().min(Rfc3339::CAPACITY);
            stamp.bytes[..len].copy_from_slice(&text.as_bytes()[..len]);
            stamp.len = len as u8;
            return stamp;
        };
        let out = &mut stamp.bytes;
        put_digits(&mut out[0..4], year);
        out[4] = b'-';
        put_digits(&mut out[5..7], naive.month());
        out[7] = b'-';
        put_digits(&mut out[8..10], naive.day());
        out[10] = b'T';
        put_digits(&mut out[11..13], naive.hour());
        out[13] = b':';
        put_digits(&mut out[14..16], naive.minute());
        out[16] = b':';
        put_digits(&mut out[17..19], naive.second());
        let mut len = 19;
        if digits > 0 {
            out[19] = b'.';
            len = 20 + digits as usize;
            put_digits(&mut out[20..len], nanos / 10u32.pow(9 - digits));
        }
        out[len] = b'Z';
        stamp.len = len as u8 + 1;
        stamp
    }

    /// The stamp with microseconds, the fixed width stored stamps have. An entity's
    /// stamps are mostly one instant (the write's), so the last one written on this
    /// thread is kept and handed out again.
    pub fn micros(time: &DateTime<Utc>) -> Rfc3339 {
        thread_local! {
            static LAST: Cell<Option<(DateTime<Utc>, Rfc3339)>> = const { Cell::new(None) };
        }
        LAST.with(|last| match last.get() {
            Some((at, stamp)) if at == *time => stamp,
            _ => {
                let stamp = Rfc3339::new(time, SecondsFormat::Micros);
                last.set(Some((*time, stamp)));
                stamp
            }
        })
    }

    /// The stamp's text.
    pub fn as_str(&self) -> &str {
        // Only ASCII was written (digits and separators, or chrono's own text).
        std::str::from_utf8(&self.bytes[..usize::from(self.len)]).unwrap_or_default()
    }
}

impl std::fmt::Display for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::fmt::Debug for Rfc3339 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        std::fmt::Debug::fmt(self.as_str(), f)
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// Writes the last `slot.len()` decimal digits of `n` into `slot`, zero-padded.
fn put_digits(slot: &mut [u8], mut n: u32) {
    for byte in slot.iter_mut().rev() {
        *byte = b'0' + (n % 10) as u8;
        n /= 10;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    const FORMATS: [SecondsFormat; 5] = [
        SecondsFormat::Secs,
        SecondsFormat::Millis,
        SecondsFormat::Micros,
        SecondsFormat::Nanos,
        SecondsFormat::AutoSi,
    ];

    /// Nanoseconds of each shape `AutoSi` tells apart, and leap seconds.
    fn nanos() -> impl Strategy<Value = u32> {
        prop_oneof![
            Just(0u32),
            (0u32..1_000).prop_map(|n| n * 1_000_000),
            (0u32..1_000_000).prop_map(|n| n * 1_000),
            0u32..1_000_000_000,
            1_000_000_000u32..2_000_000_000,
        ]
    }

    proptest! {
        #[test]
        fn writes_what_chrono_writes(
            seconds in -70_000_000_000i64..300_000_000_000,
            nanos in nanos(),
        ) {
            let Some(time) = Utc.timestamp_opt(seconds, nanos).single() else {
                return Ok(());
            };
            for format in FORMATS {
                prop_assert_eq!(rfc3339_utc(&time, format), time.to_rfc3339_opts(format, true));
            }
        }

        /// The kept stamp is handed out for its own instant only, however close the
        /// next one is.
        #[test]
        fn micros_writes_each_instant_of_a_sequence(
            start in 0i64..300_000_000_000,
            steps in proptest::collection::vec(prop_oneof![Just(0i64), -2i64..2, 0i64..2_000_000], 1..12),
        ) {
            let mut nanos = start.saturating_mul(1_000);
            for step in steps {
                nanos += step;
                let time = DateTime::from_timestamp_nanos(nanos);
                let expected = time.to_rfc3339_opts(SecondsFormat::Micros, true);
                let stamp = Rfc3339::micros(&time);
                prop_assert_eq!(stamp.as_str(), expected.as_str());
            }
        }
    }

    #[test]
    fn a_stamp_reads_as_expected() {
        let time = Utc.with_ymd_and_hms(2026, 11, 28, 20, 45, 7).unwrap()
            + chrono::TimeDelta::microseconds(123_456);
        assert_eq!(
            rfc3339_utc(&time, SecondsFormat::Micros),
            "2026-11-28T20:45:07.123456Z"
        );
        assert_eq!(
            rfc3339_utc(&time, SecondsFormat::AutoSi),
            "2026-11-28T20:45:07.123456Z"
        );
        let leap_second = chrono::NaiveDate::from_ymd_opt(2016, 12, 31)
            .and_then(|day| day.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
            .unwrap()
            .and_utc();
        assert_eq!(
            rfc3339_utc(&leap_second, SecondsFormat::Millis),
            "2016-12-31T23:59:60.500Z"
        );
        for extreme in [
            DateTime::<Utc>::MIN_UTC,
            DateTime::<Utc>::MAX_UTC,
            leap_second,
        ] {
            for format in FORMATS {
                assert_eq!(
                    rfc3339_utc(&extreme, format),
                    extreme.to_rfc3339_opts(format, true)
                );
            }
        }
        let whole = Utc.with_ymd_and_hms(99, 1, 2, 3, 4, 5).unwrap();
        assert_eq!(
            rfc3339_utc(&whole, SecondsFormat::AutoSi),
            "0099-01-02T03:04:05Z"
        );
    }
}
