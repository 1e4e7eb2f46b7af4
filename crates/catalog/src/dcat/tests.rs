//! Unit tests of the DCAT graphs and their three serialisations.

use chrono::{TimeZone, Utc};
use serde_json::{Map, Value};

use super::graph::{dcat, dct, hydra, rdf, xsd};
use super::*;
use crate::package::{Package, Resource, State};

fn at(day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 4, day, 9, 30, 0).unwrap()
}

fn info() -> CatalogInfo {
    CatalogInfo {
        base_url: Iri::parse("https://opendata.pref.shizuoka.example/").unwrap(),
        title_ja: "静岡県オープンデータカタログ".into(),
        title_en: "Shizuoka Open Data Catalogue".into(),
        description_ja: "県と市町のオープンデータ".into(),
        description_en: "Open data of the prefecture and its municipalities".into(),
        publisher: org("220001", "静岡県"),
        modified: at(20),
    }
}

fn org(code: &str, title: &str) -> Organization {
    Organization {
        code: code.into(),
        title: title.into(),
        created: at(1),
    }
}

fn resource(id: &str, url: &str, format: &str) -> Resource {
    Resource {
        id: id.into(),
        url: url.into(),
        name: Some(format!("{format} file")),
        description: None,
        format: format.into(),
        mimetype: None,
        size: Some(2048),
        hash: None,
        url_type: None,
        created: at(2),
        last_modified: None,
        metadata_modified: at(3),
        datastore_active: false,
        validation: None,
        extras: Map::new(),
    }
}

fn package(id: &str, title: &str) -> Package {
    Package {
        id: id.into(),
        name: format!("name-{id}"),
        title: title.into(),
        notes: Some("説明".into()),
        url: None,
        version: None,
        author: None,
        author_email: None,
        maintainer: Some("危機管理課".into()),
        maintainer_email: Some("kiki@city.yaizu.example".into()),
        license_id: Some("CC-BY-4.0".into()),
        owner_org: "222127".into(),
        private: false,
        state: State::Active,
        tags: vec!["避難所".into()],
        groups: vec!["land-weather".into()],
        extras: Vec::new(),
        resources: vec![resource(
            "r1",
            "https://example.jp/files/shelters.csv",
            "CSV",
        )],
        metadata_created: at(2),
        metadata_modified: at(5),
        creator_user_id: None,
    }
}

fn page(number: u64, total: u64) -> Page {
    Page {
        number,
        size: 10,
        total,
        modified_since: None,
        format: Format::Turtle,
    }
}

const TRICKY: &str = "He said \"hi\" \\ back\nslash\r<tag> & 'x' 焼津市\u{1}end";

#[test]
fn strings_are_escaped_in_turtle() {
    let mut p = package("p1", TRICKY);
    p.notes = Some("line one\nline two\t\"end\"".into());
    let ttl = dataset_graph(&info(), &p, &org("222127", "焼津市"))
        .unwrap()
        .to_turtle();
    assert!(
        ttl.contains(
            r#"dct:title "He said \"hi\" \\ back\nslash\r<tag> & 'x' 焼津市\u0001end"@ja"#
        ),
        "{ttl}"
    );
    assert!(ttl.contains(r#""line one\nline two\t\"end\""@ja"#), "{ttl}");
    // No literal spans lines: every line is a prefix, a blank or a statement part.
    assert!(!ttl.contains("back\nslash"));
}

#[test]
fn strings_are_escaped_in_rdfxml() {
    let xml = dataset_graph(&info(), &package("p1", TRICKY), &org("222127", "焼津市"))
        .unwrap()
        .to_rdfxml();
    assert!(
        xml.contains(
            "<dct:title xml:lang=\"ja\">He said \"hi\" \\ back\nslash&#13;&lt;tag&gt; &amp; 'x' 焼津市\u{FFFD}end</dct:title>"
        ),
        "{xml}"
    );
    assert!(!xml.contains("<tag>"));
    assert!(xml.starts_with("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<rdf:RDF"));
    assert!(xml.contains(
        "<dcat:Dataset rdf:about=\"https://opendata.pref.shizuoka.example/dataset/p1\">"
    ));
    assert!(xml.contains("<dcat:contactPoint rdf:nodeID=\"b1\"/>"));
    assert!(xml.contains("<vcard:Kind rdf:nodeID=\"b1\">"));
    assert!(xml.contains(
        "<dcat:byteSize rdf:datatype=\"http://www.w3.org/2001/XMLSchema#nonNegativeInteger\">2048</dcat:byteSize>"
    ));
}

#[test]
fn strings_survive_jsonld() {
    let json = dataset_graph(&info(), &package("p1", TRICKY), &org("222127", "焼津市"))
        .unwrap()
        .serialize(Format::JsonLd);
    let value: Value = serde_json::from_str(&json).unwrap();
    let dataset = value["@graph"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["@type"] == "dcat:Dataset")
        .unwrap();
    assert_eq!(dataset["dct:title"]["@value"], TRICKY);
    assert_eq!(dataset["dct:title"]["@language"], "ja");
    assert_eq!(value["@context"]["dct"], "http://purl.org/dc/terms/");
    assert_eq!(dataset["dct:issued"]["@type"], "xsd:dateTime");
    assert_eq!(dataset["dct:issued"]["@value"], "2024-04-02T09:30:00Z");
}

#[test]
fn urls_with_forbidden_characters_are_percent_encoded() {
    let mut p = package("p1", "t");
    p.resources = vec![resource(
        "r/1?x",
        "https://example.jp/避難所 一覧\"<>.csv",
        "CSV",
    )];
    let g = dataset_graph(&info(), &p, &org("222127", "焼津市")).unwrap();
    let ttl = g.to_turtle();
    assert!(
        ttl.contains("<https://example.jp/避難所%20一覧%22%3C%3E.csv>"),
        "{ttl}"
    );
    assert!(ttl.contains("<https://opendata.pref.shizuoka.example/dataset/p1/resource/r%2F1%3Fx>"));
    assert!(Iri::parse("javascript:alert(1)").is_err());
    assert!(Iri::parse("/relative/path.csv").is_err());
    assert!(Iri::parse("https://").is_err());
    assert!(Iri::parse("dct:title").is_err());
}

#[test]
fn private_and_unpublished_datasets_never_appear() {
    let mut private = package("secret-private", "非公開データ");
    private.private = true;
    let mut draft = package("secret-draft", "下書き");
    draft.state = State::Draft;
    let mut deleted = package("secret-deleted", "削除済み");
    deleted.state = State::Deleted;
    let open = package("open-one", "公開データ");
    let yaizu = org("222127", "焼津市");
    let datasets: Vec<(Package, Organization)> = [private.clone(), draft, deleted, open]
        .into_iter()
        .map(|p| (p, yaizu.clone()))
        .collect();
    let g = catalog_graph(&info(), &datasets, &page(1, 1));
    assert_eq!(g.subjects_of_type(dcat::DATASET).len(), 1);
    for text in [g.to_turtle(), g.to_rdfxml(), g.serialize(Format::JsonLd)] {
        assert!(text.contains("open-one"));
        assert!(!text.contains("secret"), "{text}");
        assert!(!text.contains("非公開") && !text.contains("下書き"));
    }
    assert_eq!(
        dataset_graph(&info(), &private, &yaizu).unwrap_err(),
        DcatError::NotOpen {
            id: "secret-private".into()
        }
    );
}

fn link(g: &Graph, this: &Node, property: Name) -> Option<String> {
    let mut objects = g.objects(this, property);
    let found = objects.next().map(|t| match t {
        Term::Node(Node::Iri(iri)) => iri.as_str().to_owned(),
        other => panic!("{other:?} is not a link"),
    });
    assert!(objects.next().is_none(), "{property:?} appears twice");
    found
}

#[test]
fn a_middle_page_links_to_its_neighbours_and_both_ends() {
    let mut p = page(2, 25);
    p.modified_since = Some(at(1));
    let g = catalog_graph(&info(), &[], &p);
    let pages = g.subjects_of_type(hydra::PAGED_COLLECTION);
    assert_eq!(pages.len(), 1);
    let this = pages[0].clone();
    let base = "https://opendata.pref.shizuoka.example/catalog.ttl?page=";
    let since = "&modified_since=2024-04-01T09:30:00Z";
    assert_eq!(
        this,
        Node::Iri(Iri::parse(&format!("{base}2{since}")).unwrap())
    );
    for (current, deprecated, expected) in [
        (hydra::FIRST, hydra::FIRST_PAGE, 1),
        (hydra::LAST, hydra::LAST_PAGE, 3),
        (hydra::NEXT, hydra::NEXT_PAGE, 3),
        (hydra::PREVIOUS, hydra::PREVIOUS_PAGE, 1),
    ] {
        let expected = format!("{base}{expected}{since}");
        assert_eq!(link(&g, &this, current).as_deref(), Some(expected.as_str()));
        assert_eq!(
            link(&g, &this, deprecated).as_deref(),
            Some(expected.as_str())
        );
    }
    let total = Term::Literal(Literal::typed("25", xsd::NON_NEGATIVE_INTEGER));
    assert!(g.contains(&this, hydra::TOTAL_ITEMS, &total));
    assert!(g.contains(&this, rdf::TYPE, &hydra::PARTIAL_COLLECTION_VIEW.into()));
}

#[test]
fn the_first_and_last_pages_have_no_link_beyond_them() {
    let first = catalog_graph(&info(), &[], &page(1, 25));
    let this = first.subjects_of_type(hydra::PAGED_COLLECTION)[0].clone();
    assert!(link(&first, &this, hydra::PREVIOUS).is_none());
    assert!(link(&first, &this, hydra::NEXT)
        .unwrap()
        .ends_with("page=2"));

    let last = catalog_graph(&info(), &[], &page(3, 25));
    let this = last.subjects_of_type(hydra::PAGED_COLLECTION)[0].clone();
    assert!(link(&last, &this, hydra::NEXT).is_none());
    assert!(link(&last, &this, hydra::PREVIOUS)
        .unwrap()
        .ends_with("page=2"));

    let empty = page(1, 0);
    assert_eq!(empty.last(), 1);
    let g = catalog_graph(&info(), &[], &empty);
    let this = g.subjects_of_type(hydra::PAGED_COLLECTION)[0].clone();
    assert!(link(&g, &this, hydra::NEXT).is_none());
    assert!(link(&g, &this, hydra::LAST).unwrap().ends_with("page=1"));
}

#[test]
fn a_distribution_carries_format_media_type_size_and_licence_as_nodes() {
    let g = dataset_graph(&info(), &package("p1", "t"), &org("222127", "焼津市")).unwrap();
    let ttl = g.to_turtle();
    for expected in [
        "dct:format <http://publications.europa.eu/resource/authority/file-type/CSV>",
        "<http://publications.europa.eu/resource/authority/file-type/CSV> a dct:MediaTypeOrExtent",
        "dcat:mediaType <https://www.iana.org/assignments/media-types/text/csv>",
        "dcat:byteSize \"2048\"^^xsd:nonNegativeInteger",
        "dct:license <https://creativecommons.org/licenses/by/4.0/>",
        "<https://creativecommons.org/licenses/by/4.0/> a dct:LicenseDocument",
        "dcat:downloadURL <https://example.jp/files/shelters.csv>",
        "dct:spatial <http://data.e-stat.go.jp/lod/sac/C22212>",
        "dcat:theme <https://opendata.pref.shizuoka.example/group/land-weather>",
        "skos:prefLabel \"国土・気象\"@ja, \"Land and weather\"@en",
        "dct:publisher <https://opendata.pref.shizuoka.example/organization/222127>",
        "foaf:name \"焼津市\"@ja",
        "vcard:hasEmail <mailto:kiki@city.yaizu.example>",
    ] {
        assert!(ttl.contains(expected), "missing {expected} in\n{ttl}");
    }
    let dataset = Node::Iri(info().base_url.join(&["dataset", "p1"]));
    assert_eq!(g.objects(&dataset, dct::DESCRIPTION).count(), 1);
}

#[test]
fn local_government_codes_name_e_stat_areas() {
    assert_eq!(
        spatial_iri("222127").unwrap().as_str(),
        "http://data.e-stat.go.jp/lod/sac/C22212"
    );
    assert_eq!(
        spatial_iri("22000").unwrap().as_str(),
        "http://data.e-stat.go.jp/lod/sac/C22000"
    );
    assert!(spatial_iri("2221").is_none());
    assert!(spatial_iri("22212x").is_none());
}

#[test]
fn formats_come_from_extensions_with_their_content_types() {
    assert_eq!(Format::from_extension("jsonld"), Some(Format::JsonLd));
    assert_eq!(Format::from_extension("TTL"), Some(Format::Turtle));
    assert_eq!(Format::from_extension("rdf"), Some(Format::RdfXml));
    assert_eq!(Format::from_extension("xml"), Some(Format::RdfXml));
    assert_eq!(Format::from_extension("json"), None);
    assert_eq!(Format::RdfXml.content_type(), "application/rdf+xml");
    assert_eq!(Format::Turtle.content_type(), "text/turtle");
    assert_eq!(Format::JsonLd.content_type(), "application/ld+json");
}

#[test]
fn page_links_point_to_the_serialisation_being_served() {
    for (format, document) in [
        (Format::JsonLd, "catalog.jsonld"),
        (Format::RdfXml, "catalog.xml"),
    ] {
        let mut p = page(1, 15);
        p.format = format;
        let g = catalog_graph(&info(), &[], &p);
        let this = g.subjects_of_type(hydra::PAGED_COLLECTION)[0].clone();
        let expected = format!("https://opendata.pref.shizuoka.example/{document}?page=2");
        assert_eq!(link(&g, &this, hydra::NEXT), Some(expected));
    }
}

#[test]
fn a_prefix_is_declared_for_every_prefixed_name_written() {
    // A link that happens to lie in a vocabulary the dataset graph does not
    // otherwise use is written as a prefixed name, so its prefix must be declared.
    let mut p = package("p1", "t");
    p.url = Some("http://www.w3.org/ns/hydra/core#Collection".into());
    let g = dataset_graph(&info(), &p, &org("222127", "焼津市")).unwrap();
    let ttl = g.to_turtle();
    assert!(ttl.contains("foaf:page hydra:Collection"), "{ttl}");
    assert!(ttl.contains("@prefix hydra: <http://www.w3.org/ns/hydra/core#> ."));
    assert!(g
        .to_rdfxml()
        .contains("xmlns:hydra=\"http://www.w3.org/ns/hydra/core#\""));
    assert_eq!(
        g.to_jsonld()["@context"]["hydra"],
        "http://www.w3.org/ns/hydra/core#"
    );
}
