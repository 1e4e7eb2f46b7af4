//! The catalog's DCAT documents checked by the tools the rest of the world uses:
//! a realistic catalog page and dataset are written in all three serialisations and
//! `scripts/check-dcat` must parse each with rdflib, find no sh:Violation against the
//! DCAT-AP 3.0.0 SHACL shapes, and find the three serialisations to be the same
//! graph. The Python tools are installed on first use by
//! `scripts/ensure-python-tools`; when they cannot be had the test fails.

use std::path::{Path, PathBuf};
use std::process::Command;

use catalog::ckan::Organization;
use catalog::dcat::{catalog_graph, dataset_graph, CatalogInfo, Format, Iri, Page};
use catalog::package::{Package, Resource, State};
use chrono::{DateTime, TimeZone, Utc};
use serde_json::Map;

fn at(month: u32, day: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, month, day, 0, 30, 0).unwrap()
}

fn org(code: &str, title: &str) -> Organization {
    Organization {
        code: code.into(),
        title: title.into(),
        created: at(1, 4),
    }
}

fn info() -> CatalogInfo {
    CatalogInfo {
        base_url: Iri::parse("https://opendata.pref.shizuoka.example").unwrap(),
        title_ja: "ふじのくにオープンデータカタログ".into(),
        title_en: "Shizuoka Prefecture Open Data Catalogue".into(),
        description_ja: "静岡県と県内市町が公開する \"オープンデータ\" の一覧です。\n利用は各データのライセンスに従ってください。".into(),
        description_en: "Open data of Shizuoka Prefecture & its municipalities <all 35>.".into(),
        publisher: org("220001", "静岡県"),
        modified: at(6, 1),
    }
}

#[allow(clippy::too_many_arguments)]
fn resource(
    id: &str,
    name: &str,
    url: &str,
    format: &str,
    mimetype: Option<&str>,
    size: Option<i64>,
    url_type: Option<&str>,
) -> Resource {
    Resource {
        id: id.into(),
        url: url.into(),
        name: Some(name.into()),
        description: Some(format!("{name}（{format}形式）")),
        format: format.into(),
        mimetype: mimetype.map(Into::into),
        size,
        hash: None,
        url_type: url_type.map(Into::into),
        created: at(4, 1),
        last_modified: Some(at(5, 10)),
        metadata_modified: at(5, 11),
        datastore_active: format == "CSV",
        validation: None,
        extras: Map::new(),
    }
}

fn yaizu_shelters() -> Package {
    Package {
        id: "5f0e2c1a-8a47-4c55-9d0e-222127000001".into(),
        name: "222127-evacuation-space".into(),
        title: "焼津市 指定緊急避難場所一覧".into(),
        notes: Some(
            "焼津市が指定する指定緊急避難場所の一覧です。\n\
             「洪水」「津波」など災害種別ごとの可否を示します。\n\
             列の意味は \"自治体標準オープンデータセット\" に従います (a < b & c > d)。\n\
             原本: \\\\fileserver\\防災\\避難場所.xlsx\t(庁内)"
                .into(),
        ),
        url: Some("https://www.city.yaizu.lg.jp/opendata/evacuation.html".into()),
        version: Some("2024年4月1日版".into()),
        author: Some("焼津市 防災課".into()),
        author_email: Some("bousai@city.yaizu.example".into()),
        maintainer: Some("焼津市 危機管理部 地域防災課".into()),
        maintainer_email: Some("chiikibousai@city.yaizu.example".into()),
        license_id: Some("CC-BY-4.0".into()),
        owner_org: "222127".into(),
        private: false,
        state: State::Active,
        tags: vec!["防災".into(), "避難場所".into(), "津波".into()],
        groups: vec!["land-weather".into(), "justice-safety-environment".into()],
        extras: vec![("spatial".into(), "焼津市".into())],
        resources: vec![
            resource(
                "9a1d7a2e-0001",
                "指定緊急避難場所一覧 CSV",
                "https://opendata.pref.shizuoka.example/dataset/222127-evacuation-space/resource/9a1d7a2e-0001/download/222127_evacuation_space.csv",
                "CSV",
                Some("text/csv; charset=utf-8"),
                Some(18_432),
                Some("upload"),
            ),
            resource(
                "9a1d7a2e-0002",
                "避難場所マップ (PDF)",
                "https://www.city.yaizu.lg.jp/material/files/group/5/hinan map.pdf",
                "PDF",
                None,
                Some(3_145_728),
                None,
            ),
        ],
        metadata_created: at(4, 1),
        metadata_modified: at(5, 11),
        creator_user_id: Some("user-1".into()),
    }
}

fn prefecture_aed() -> Package {
    Package {
        id: "b7c3e9d4-aed0-4c55-9d0e-220001000002".into(),
        name: "220001-aed".into(),
        title: "静岡県 AED設置箇所一覧".into(),
        notes: None,
        url: None,
        version: None,
        author: None,
        author_email: None,
        maintainer: None,
        maintainer_email: None,
        license_id: Some("PDL-1.0".into()),
        owner_org: "220001".into(),
        private: false,
        state: State::Active,
        tags: vec!["AED".into()],
        groups: vec!["social-security-health".into()],
        extras: Vec::new(),
        resources: vec![
            resource(
                "c1",
                "AED設置箇所 (Excel)",
                "https://www.pref.shizuoka.example/files/aed.xlsx",
                "XLSX",
                None,
                None,
                None,
            ),
            // An API endpoint in a format the EU table does not know, and a
            // resource whose URL is not a link at all.
            resource(
                "c2",
                "AED API",
                "https://api.pref.shizuoka.example/aed",
                "GTFS-RT",
                None,
                None,
                None,
            ),
            resource("c3", "窓口で配布", "", "", None, None, None),
        ],
        metadata_created: at(3, 1),
        metadata_modified: at(3, 2),
        creator_user_id: None,
    }
}

fn private_draft() -> Package {
    let mut p = yaizu_shelters();
    p.id = "private-0000-hidden".into();
    p.name = "hidden-plan".into();
    p.title = "非公開 避難計画 (内部)".into();
    p.private = true;
    p
}

fn repository_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("renkei-dcat-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs scripts/check-dcat; returns whether it passed and what it printed.
fn check_dcat(args: &[&Path]) -> (bool, String) {
    let output = Command::new(repository_root().join("scripts/check-dcat"))
        .args(args)
        .output()
        .expect("scripts/check-dcat must be runnable");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

fn write_all(dir: &Path, stem: &str, graph: impl Fn(Format) -> String) -> Vec<PathBuf> {
    [Format::JsonLd, Format::Turtle, Format::RdfXml]
        .into_iter()
        .map(|format| {
            let path = dir.join(format!("{stem}.{}", format.extension()));
            std::fs::write(&path, graph(format)).unwrap();
            path
        })
        .collect()
}

fn serialised(graph: &catalog::dcat::Graph) -> impl Fn(Format) -> String + '_ {
    move |format| graph.serialize(format)
}

#[test]
fn a_catalog_page_validates_against_dcat_ap_3_in_every_serialisation() {
    let yaizu = org("222127", "焼津市");
    let shizuoka = org("220001", "静岡県");
    let datasets = vec![
        (yaizu_shelters(), yaizu.clone()),
        (private_draft(), yaizu),
        (prefecture_aed(), shizuoka),
    ];
    let page = Page {
        number: 1,
        size: 2,
        total: 3,
        modified_since: Some(at(1, 1)),
        format: Format::Turtle,
    };
    let graph = catalog_graph(&info(), &datasets, &page);
    let dir = scratch_dir("catalog");
    let files = write_all(&dir, "catalog", serialised(&graph));
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        assert!(
            !text.contains("private-0000-hidden") && !text.contains("非公開"),
            "{}",
            file.display()
        );
        assert!(
            text.contains("222127-evacuation-space"),
            "{}",
            file.display()
        );
    }
    let mut args: Vec<&Path> = vec![Path::new("--isomorphic")];
    args.extend(files.iter().map(PathBuf::as_path));
    let (passed, report) = check_dcat(&args);
    assert!(passed, "check-dcat failed:\n{report}");
    assert_eq!(
        report.matches("conforms to DCAT-AP 3").count(),
        3,
        "{report}"
    );
    assert_eq!(
        report.matches("holds the same graph").count(),
        2,
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_dataset_validates_against_dcat_ap_3_in_every_serialisation() {
    let graph = dataset_graph(&info(), &yaizu_shelters(), &org("222127", "焼津市")).unwrap();
    let dir = scratch_dir("dataset");
    let files = write_all(&dir, "dataset", serialised(&graph));
    let mut args: Vec<&Path> = vec![Path::new("--isomorphic")];
    args.extend(files.iter().map(PathBuf::as_path));
    let (passed, report) = check_dcat(&args);
    assert!(passed, "check-dcat failed:\n{report}");
    assert_eq!(
        report.matches("conforms to DCAT-AP 3").count(),
        3,
        "{report}"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

/// The checker itself must be able to say no: a dataset without the description
/// DCAT-AP requires, a publisher that is not said to be an agent, a distribution
/// without an access URL, and a file that does not parse.
#[test]
fn check_dcat_rejects_documents_that_break_the_shapes() {
    let dir = scratch_dir("broken");
    let broken = dir.join("broken.ttl");
    std::fs::write(
        &broken,
        "@prefix dcat: <http://www.w3.org/ns/dcat#> .\n\
         @prefix dct: <http://purl.org/dc/terms/> .\n\
         <https://example.jp/dataset/1> a dcat:Dataset ;\n\
             dct:title \"題名\"@ja ;\n\
             dct:publisher <https://example.jp/organization/222127> ;\n\
             dcat:distribution <https://example.jp/dataset/1/resource/1> .\n\
         <https://example.jp/dataset/1/resource/1> a dcat:Distribution .\n",
    )
    .unwrap();
    let (passed, report) = check_dcat(&[&broken]);
    assert!(!passed, "{report}");
    assert!(report.contains("FAIL"), "{report}");
    for path in ["description", "publisher", "accessURL"] {
        assert!(report.contains(path), "no violation on {path}:\n{report}");
    }

    let unparsable = dir.join("unparsable.xml");
    std::fs::write(&unparsable, "<rdf:RDF><dcat:Dataset></rdf:RDF>").unwrap();
    let (passed, report) = check_dcat(&[&unparsable]);
    assert!(!passed, "{report}");
    assert!(report.contains("does not parse"), "{report}");
    let _ = std::fs::remove_dir_all(&dir);
}
