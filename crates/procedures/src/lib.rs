//! Online applications (行政手続のオンライン化): the domain logic behind `/api/v1/procedures`.
//!
//! A tenant defines procedures (手続) with a form, a fee and a review chain; residents make
//! applications under one version of a procedure; staff review them and decide through an
//! approval chain (電子決裁); fees move through a payment state machine; receipts and notices
//! of decision are PDF documents anyone can verify by code. Everything here is pure logic over
//! plain data: storage lives in the `store` crates and HTTP in `server`, so every rule can be
//! tested, and property-tested, without either.

use chrono::{DateTime, FixedOffset, Utc};

pub mod application;
pub mod approval;
pub mod document;
pub mod fee;
pub mod form;
pub mod payment;
pub mod procedure;
pub mod service;

/// A moment in Japan Standard Time, where reception numbers' years, statistics' months,
/// documents' dates and "today" for birth dates are counted. Japan has no daylight
/// saving, so a fixed offset is exact.
pub fn in_japan(at: DateTime<Utc>) -> DateTime<FixedOffset> {
    match FixedOffset::east_opt(9 * 3600) {
        Some(offset) => at.with_timezone(&offset),
        None => at.fixed_offset(),
    }
}
