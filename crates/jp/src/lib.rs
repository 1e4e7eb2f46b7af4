//! Japanese data handling for renkei: the pieces every importer of Japanese
//! public data needs before it can trust a single field. Municipal files come
//! in Shift_JIS as often as UTF-8, mix full-width and half-width characters,
//! write dates in the imperial era calendar (和暦), and identify
//! municipalities by 全国地方公共団体コード with a check digit. Each module
//! turns one of those into a typed, validated value, with errors that say in
//! Japanese and English what was wrong and where, and none of them panics on
//! any input.

pub mod encoding;
pub mod localgov;
pub mod phone;
pub mod postal;
pub mod shift_jis;
pub mod wareki;
pub mod width;
