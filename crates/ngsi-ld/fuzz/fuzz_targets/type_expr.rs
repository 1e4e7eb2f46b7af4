//! Fuzzes the entity type expression parser: it must never panic, and whatever it
//! accepts must print back (via `Display`) to text that parses to the same tree.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ngsi_ld::query::types;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tree) = types::parse(text) {
        let printed = tree.to_string();
        assert_eq!(types::parse(&printed), Ok(tree), "{text:?} printed as {printed:?}");
    }
});
