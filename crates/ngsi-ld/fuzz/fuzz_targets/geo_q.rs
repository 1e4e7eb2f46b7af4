//! Fuzzes the `geoQ` parser. An input is `georel`, `geometry` and `coordinates`
//! on three lines (anything after a third newline belongs to the coordinates); the
//! parser must never panic on any of them.
#![no_main]
use libfuzzer_sys::fuzz_target;
use ngsi_ld::query::geo;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut parts = text.splitn(3, '\n');
    let (Some(georel), Some(geometry), Some(coordinates)) = (parts.next(), parts.next(), parts.next())
    else {
        return;
    };
    let _ = geo::parse_geo_query(georel, geometry, coordinates, None);
});
