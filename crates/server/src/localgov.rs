//! The list of Japan's local governments shipped with renkei (reference-data/localgov,
//! from ../shared/data with its attribution), loaded once: tenant names come from it.

use jp::localgov::Registry;
use std::sync::OnceLock;

pub const MUNICIPALITIES_CSV: &str =
    include_str!("../../../reference-data/localgov/municipalities.csv");
pub const PREFECTURES_CSV: &str = include_str!("../../../reference-data/localgov/prefectures.csv");

/// All 1,916 prefectures and municipalities, by code.
pub fn registry() -> &'static Registry {
    static REGISTRY: OnceLock<Registry> = OnceLock::new();
    REGISTRY.get_or_init(|| {
        // The files are part of the binary and checked by a test; failing to read
        // them is a build defect, not a run-time condition.
        Registry::from_csv(PREFECTURES_CSV, MUNICIPALITIES_CSV)
            .unwrap_or_else(|e| panic!("the shipped local government list is invalid: {e}"))
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_shipped_list_loads_with_every_local_government() {
        let registry = super::registry();
        // 1,916 municipalities and 47 prefectures.
        assert_eq!(registry.len(), 1916 + 47);
        let yaizu = jp::localgov::LocalGovCode::parse("222127").unwrap();
        assert_eq!(registry.name(&yaizu), Some("焼津市"));
    }
}
