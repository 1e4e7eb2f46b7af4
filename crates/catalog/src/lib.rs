//! The open data catalog's domain, free of HTTP and SQL: Japan's standard dataset
//! schemas (自治体標準オープンデータセット and the v1 推奨データセット) and the validation
//! of the files municipalities really publish against them (`standard`, `validate`),
//! and Japanese search that needs no search server (`search`). The CKAN Action API,
//! storage and DCAT build on these.

pub mod ckan;
pub mod datastore;
pub mod dcat;
pub mod harvest;
pub mod ingest;
pub mod package;
pub mod publish;
pub mod search;
pub mod service;
pub mod standard;
pub mod validate;
pub mod vocabulary;
