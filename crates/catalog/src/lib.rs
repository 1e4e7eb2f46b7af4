//! The open data catalog's domain, free of HTTP and SQL: Japan's standard dataset
//! schemas (自治体標準オープンデータセット and the v1 推奨データセット) and the validation
//! of the files municipalities really publish against them (`standard`, `validate`),
//! and Japanese search that needs no search server (`search`). The CKAN Action API,
//! storage and DCAT build on these.

pub mod search;
pub mod standard;
pub mod validate;
