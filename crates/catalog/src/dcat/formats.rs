//! What a resource's format name (`CSV`, `XLSX`, …) means in DCAT-AP terms: the EU
//! Publications Office file-type authority table for `dct:format`, which DCAT-AP
//! names as the vocabulary to use, and the IANA media type for `dcat:mediaType`.

/// The EU file-type authority table's base IRI.
pub const FILE_TYPE_BASE: &str = "http://publications.europa.eu/resource/authority/file-type/";
/// The IANA media type registry's base IRI, as DCAT-AP writes media types.
pub const MEDIA_TYPE_BASE: &str = "https://www.iana.org/assignments/media-types/";

/// (format names as publishers write them, file-type code, IANA media type).
const FORMATS: &[(&[&str], &str, Option<&str>)] = &[
    (&["CSV"], "CSV", Some("text/csv")),
    (
        &["XLSX"],
        "XLSX",
        Some("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
    ),
    (&["XLS"], "XLS", Some("application/vnd.ms-excel")),
    (
        &["ODS"],
        "ODS",
        Some("application/vnd.oasis.opendocument.spreadsheet"),
    ),
    (&["PDF"], "PDF", Some("application/pdf")),
    (&["JSON"], "JSON", Some("application/json")),
    (
        &["JSON-LD", "JSONLD", "JSON_LD"],
        "JSON_LD",
        Some("application/ld+json"),
    ),
    (&["GEOJSON"], "GEOJSON", Some("application/geo+json")),
    (&["XML"], "XML", Some("application/xml")),
    (
        &["RDF", "RDF/XML", "RDF_XML"],
        "RDF_XML",
        Some("application/rdf+xml"),
    ),
    (
        &["TTL", "TURTLE", "RDF_TURTLE"],
        "RDF_TURTLE",
        Some("text/turtle"),
    ),
    (&["ZIP"], "ZIP", Some("application/zip")),
    (
        &["KML"],
        "KML",
        Some("application/vnd.google-earth.kml+xml"),
    ),
    (&["KMZ"], "KMZ", Some("application/vnd.google-earth.kmz")),
    (&["GML"], "GML", Some("application/gml+xml")),
    // Shapefiles have no IANA media type.
    (&["SHP", "SHAPEFILE"], "SHP", None),
    (&["HTML", "HTM"], "HTML", Some("text/html")),
    (&["TXT", "TEXT"], "TXT", Some("text/plain")),
    (
        &["DOCX"],
        "DOCX",
        Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document"),
    ),
    (&["DOC"], "DOC", Some("application/msword")),
    (
        &["ODT"],
        "ODT",
        Some("application/vnd.oasis.opendocument.text"),
    ),
    (
        &["PPTX"],
        "PPTX",
        Some("application/vnd.openxmlformats-officedocument.presentationml.presentation"),
    ),
    (&["PPT"], "PPT", Some("application/vnd.ms-powerpoint")),
    (&["JPEG", "JPG"], "JPEG", Some("image/jpeg")),
    (&["PNG"], "PNG", Some("image/png")),
    (&["GIF"], "GIF", Some("image/gif")),
    (&["TIFF", "TIF"], "TIFF", Some("image/tiff")),
];

/// The file-type code and media type of a format name, when the name is known.
pub fn lookup(format: &str) -> Option<(&'static str, Option<&'static str>)> {
    let format = format.trim().trim_start_matches('.').to_ascii_uppercase();
    FORMATS
        .iter()
        .find(|(names, _, _)| names.contains(&format.as_str()))
        .map(|(_, code, media_type)| (*code, *media_type))
}

/// A media type as a resource's `mimetype` gives it (`text/csv; charset=utf-8`),
/// reduced to `type/subtype` when it looks like one.
pub fn clean_media_type(text: &str) -> Option<String> {
    let essence = text.split(';').next()?.trim().to_ascii_lowercase();
    let (kind, subtype) = essence.split_once('/')?;
    let token = |s: &str| {
        !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || "!#$&-^_.+".contains(c))
    };
    (token(kind) && token(subtype)).then_some(essence)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_map_to_file_types_and_media_types() {
        assert_eq!(lookup("csv"), Some(("CSV", Some("text/csv"))));
        assert_eq!(lookup(".jpg"), Some(("JPEG", Some("image/jpeg"))));
        assert_eq!(lookup("SHP"), Some(("SHP", None)));
        assert_eq!(lookup("WHATEVER"), None);
        assert_eq!(
            clean_media_type("Text/CSV; charset=Shift_JIS").as_deref(),
            Some("text/csv")
        );
        assert_eq!(clean_media_type("csv"), None);
        assert_eq!(clean_media_type("text/<script>"), None);
    }
}
