//! Tests of the datastore module, one file per submodule.

mod fields;
mod query;
mod records;
mod render;
mod sql;
