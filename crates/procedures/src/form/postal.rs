//! 郵便番号 → 住所. renkei ships no postal dataset (Japan Post's KEN_ALL is not in the
//! project's shared data), so lookup is a trait the server backs with whatever it has: a
//! table it imports, or a tenant's own list. [`StaticPostalDirectory`] is the in-memory one.

use std::collections::BTreeMap;

use jp::postal::{PostalCode, PostalError};
use serde::{Deserialize, Serialize};

/// An address a postal code stands for; the applicant adds 番地 and building themselves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PostalAddress {
    /// 都道府県, e.g. 静岡県.
    pub prefecture: String,
    /// 市区町村, e.g. 焼津市.
    pub city: String,
    /// 町域, e.g. 本町; empty where the code covers a whole municipality.
    pub town: String,
}

/// A source of postal-code addresses. One code can cover several towns, hence a list.
pub trait PostalDirectory {
    fn lookup(&self, code: &PostalCode) -> Vec<PostalAddress>;
}

/// Addresses held in memory, keyed by normalised postal code.
#[derive(Debug, Clone, Default)]
pub struct StaticPostalDirectory {
    entries: BTreeMap<String, Vec<PostalAddress>>,
}

impl StaticPostalDirectory {
    pub fn new() -> StaticPostalDirectory {
        StaticPostalDirectory::default()
    }

    /// Adds an address under a code written in any form [`jp::postal::normalize`] accepts.
    pub fn insert(&mut self, code: &str, address: PostalAddress) -> Result<(), PostalError> {
        let code = jp::postal::normalize(code)?;
        self.entries
            .entry(code.as_str().to_string())
            .or_default()
            .push(address);
        Ok(())
    }
}

impl PostalDirectory for StaticPostalDirectory {
    fn lookup(&self, code: &PostalCode) -> Vec<PostalAddress> {
        self.entries.get(code.as_str()).cloned().unwrap_or_default()
    }
}

/// Normalises what the applicant typed (〒１２３－４５６７) and looks it up.
pub fn lookup_address(
    directory: &dyn PostalDirectory,
    input: &str,
) -> Result<Vec<PostalAddress>, PostalError> {
    let code = jp::postal::normalize(input)?;
    Ok(directory.lookup(&code))
}
