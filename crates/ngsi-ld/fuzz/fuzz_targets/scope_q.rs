//! Fuzzes the `scopeQ` parser: it must never panic, and whatever it accepts must
//! print back (via `Display`) to text that parses to the same tree.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ngsi_ld::query::scope;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(tree) = scope::parse(text) {
        let printed = tree.to_string();
        assert_eq!(scope::parse(&printed), Ok(tree), "{text:?} printed as {printed:?}");
    }
});
