//! Builds the DCAT graph of a catalog page or of one dataset from the catalog's
//! packages, resources, organisations and vocabularies.

use chrono::{DateTime, SecondsFormat, Utc};

use super::formats;
use super::graph::{dcat, dct, foaf, hydra, rdf, rdfs, skos, vcard, xsd, Graph, Iri, Literal};
use super::{CatalogInfo, DcatError, Page};
use crate::ckan::Organization;
use crate::package::{guess_format, Package, Resource};
use crate::vocabulary;

/// The national statistics LOD's IRI for standard area codes.
const STANDARD_AREA_CODE_BASE: &str = "http://data.e-stat.go.jp/lod/sac/C";
/// The EU language authority table, for the languages of the catalog's own text.
const LANGUAGE_BASE: &str = "http://publications.europa.eu/resource/authority/language/";

/// One page of the catalog: the `dcat:Catalog`, the page node with its links, and
/// the page's datasets. Packages that are not open are left out whatever the caller
/// passed; the caller pages over open packages only, so that `page.total` is right.
pub fn catalog_graph(
    info: &CatalogInfo,
    datasets: &[(Package, Organization)],
    page: &Page,
) -> Graph {
    let mut g = Graph::new();
    let catalog = info.base_url.join(&["catalog"]);
    g.add(&catalog, rdf::TYPE, dcat::CATALOG);
    g.add(&catalog, dct::TITLE, Literal::lang(&info.title_ja, "ja"));
    g.add(&catalog, dct::TITLE, Literal::lang(&info.title_en, "en"));
    g.add(
        &catalog,
        dct::DESCRIPTION,
        Literal::lang(&info.description_ja, "ja"),
    );
    g.add(
        &catalog,
        dct::DESCRIPTION,
        Literal::lang(&info.description_en, "en"),
    );
    let publisher = describe_organization(&mut g, info, &info.publisher);
    g.add(&catalog, dct::PUBLISHER, publisher);
    let homepage = info.base_url.join(&[""]);
    g.add(&catalog, foaf::HOMEPAGE, &homepage);
    g.add(&homepage, rdf::TYPE, foaf::DOCUMENT);
    g.add(&catalog, dct::MODIFIED, date_time(&info.modified));
    for code in ["JPN", "ENG"] {
        let language = Iri::constant(LANGUAGE_BASE).join(&[code]);
        g.add(&catalog, dct::LANGUAGE, &language);
        g.add(&language, rdf::TYPE, dct::LINGUISTIC_SYSTEM);
    }
    if let Some(location) = describe_location(&mut g, &info.publisher) {
        g.add(&catalog, dct::SPATIAL, location);
    }
    let scheme = describe_category_scheme(&mut g, info);
    g.add(&catalog, dcat::THEME_TAXONOMY, scheme);
    describe_paging(&mut g, info, page);
    for (package, organization) in datasets.iter().filter(|(p, _)| p.is_open()) {
        let dataset = describe_dataset(&mut g, info, package, organization);
        g.add(&catalog, dcat::DATASET_PROPERTY, dataset);
    }
    g
}

/// One dataset with its distributions, publisher, categories and place.
pub fn dataset_graph(
    info: &CatalogInfo,
    package: &Package,
    organization: &Organization,
) -> Result<Graph, DcatError> {
    if !package.is_open() {
        return Err(DcatError::NotOpen {
            id: package.id.clone(),
        });
    }
    let mut g = Graph::new();
    describe_dataset(&mut g, info, package, organization);
    Ok(g)
}

/// The e-Stat LOD IRI of a local government (`222127` → `…/sac/C22212`), when the
/// code is a 全国地方公共団体コード (six digits) or a standard area code (five).
pub fn spatial_iri(code: &str) -> Option<Iri> {
    let digits = code.trim();
    if !(digits.len() == 5 || digits.len() == 6) || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Iri::parse(&format!("{STANDARD_AREA_CODE_BASE}{}", &digits[..5])).ok()
}

fn date_time(t: &DateTime<Utc>) -> Literal {
    Literal::typed(
        t.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        xsd::DATE_TIME,
    )
}

fn count(n: u64) -> Literal {
    Literal::typed(n.to_string(), xsd::NON_NEGATIVE_INTEGER)
}

fn describe_paging(g: &mut Graph, info: &CatalogInfo, page: &Page) {
    let document = info
        .base_url
        .join(&[&format!("catalog.{}", page.format.extension())]);
    let since = page
        .modified_since
        .map(|t| t.to_rfc3339_opts(SecondsFormat::AutoSi, true));
    let page_iri = |number: u64| {
        let number = number.to_string();
        let mut query = vec![("page", number.as_str())];
        if let Some(since) = &since {
            query.push(("modified_since", since.as_str()));
        }
        document.with_query(&query)
    };
    let last = page.last();
    let this = page_iri(page.number);
    g.add(&this, rdf::TYPE, hydra::PAGED_COLLECTION);
    g.add(&this, rdf::TYPE, hydra::PARTIAL_COLLECTION_VIEW);
    g.add(&this, hydra::TOTAL_ITEMS, count(page.total));
    g.add(&this, hydra::ITEMS_PER_PAGE, count(page.size));
    let mut links = vec![
        (hydra::FIRST, hydra::FIRST_PAGE, 1),
        (hydra::LAST, hydra::LAST_PAGE, last),
    ];
    if page.number < last {
        links.push((hydra::NEXT, hydra::NEXT_PAGE, page.number + 1));
    }
    if page.number > 1 {
        // A page past the end points back to the last one.
        links.push((
            hydra::PREVIOUS,
            hydra::PREVIOUS_PAGE,
            (page.number - 1).min(last),
        ));
    }
    for (current, deprecated, number) in links {
        g.add(&this, current, page_iri(number));
        g.add(&this, deprecated, page_iri(number));
    }
}

fn describe_organization(g: &mut Graph, info: &CatalogInfo, org: &Organization) -> Iri {
    let iri = info.base_url.join(&["organization", &org.code]);
    g.add(&iri, rdf::TYPE, foaf::AGENT);
    g.add(&iri, rdf::TYPE, foaf::ORGANIZATION);
    g.add(&iri, foaf::NAME, Literal::lang(&org.title, "ja"));
    g.add(&iri, dct::IDENTIFIER, Literal::plain(&org.code));
    iri
}

fn describe_location(g: &mut Graph, org: &Organization) -> Option<Iri> {
    let iri = spatial_iri(&org.code)?;
    g.add(&iri, rdf::TYPE, dct::LOCATION);
    g.add(&iri, dct::IDENTIFIER, Literal::plain(&org.code.trim()[..5]));
    g.add(&iri, skos::PREF_LABEL, Literal::lang(&org.title, "ja"));
    Some(iri)
}

fn describe_category_scheme(g: &mut Graph, info: &CatalogInfo) -> Iri {
    let scheme = info.base_url.join(&["group"]);
    g.add(&scheme, rdf::TYPE, skos::CONCEPT_SCHEME);
    g.add(&scheme, dct::TITLE, Literal::lang("分類", "ja"));
    g.add(&scheme, dct::TITLE, Literal::lang("Categories", "en"));
    scheme
}

fn describe_category(g: &mut Graph, info: &CatalogInfo, category: &vocabulary::Category) -> Iri {
    let iri = info.base_url.join(&["group", category.name]);
    let scheme = describe_category_scheme(g, info);
    g.add(&iri, rdf::TYPE, skos::CONCEPT);
    g.add(
        &iri,
        skos::PREF_LABEL,
        Literal::lang(category.title_ja, "ja"),
    );
    g.add(
        &iri,
        skos::PREF_LABEL,
        Literal::lang(category.title_en, "en"),
    );
    g.add(&iri, skos::IN_SCHEME, scheme);
    iri
}

fn mailbox(email: Option<&str>) -> Option<Iri> {
    let email = email?.trim();
    if !email.contains('@') || email.contains(char::is_whitespace) {
        return None;
    }
    Iri::parse(&format!("mailto:{email}")).ok()
}

fn non_empty(text: Option<&str>) -> Option<&str> {
    text.map(str::trim).filter(|t| !t.is_empty())
}

fn describe_dataset(
    g: &mut Graph,
    info: &CatalogInfo,
    package: &Package,
    organization: &Organization,
) -> Iri {
    let dataset = info.base_url.join(&["dataset", &package.id]);
    g.add(&dataset, rdf::TYPE, dcat::DATASET);
    g.add(&dataset, dct::IDENTIFIER, Literal::plain(&package.id));
    g.add(&dataset, dct::TITLE, Literal::lang(&package.title, "ja"));
    // DCAT-AP requires a description; a dataset published without one is described
    // by its title, the only account of it there is.
    let description = non_empty(package.notes.as_deref()).unwrap_or(&package.title);
    g.add(&dataset, dct::DESCRIPTION, Literal::lang(description, "ja"));
    for tag in &package.tags {
        g.add(&dataset, dcat::KEYWORD, Literal::lang(tag, "ja"));
    }
    for category in package
        .groups
        .iter()
        .filter_map(|c| vocabulary::category(c))
    {
        let theme = describe_category(g, info, category);
        g.add(&dataset, dcat::THEME, theme);
    }
    let publisher = describe_organization(g, info, organization);
    g.add(&dataset, dct::PUBLISHER, publisher);
    if let Some(location) = describe_location(g, organization) {
        g.add(&dataset, dct::SPATIAL, location);
    }
    g.add(&dataset, dct::ISSUED, date_time(&package.metadata_created));
    g.add(
        &dataset,
        dct::MODIFIED,
        date_time(&package.metadata_modified),
    );
    let landing_page = info.base_url.join(&["dataset", &package.name]);
    g.add(&dataset, dcat::LANDING_PAGE, &landing_page);
    g.add(&landing_page, rdf::TYPE, foaf::DOCUMENT);
    if let Some(page) = non_empty(package.url.as_deref()).and_then(|u| Iri::parse(u).ok()) {
        g.add(&dataset, foaf::PAGE, &page);
        g.add(&page, rdf::TYPE, foaf::DOCUMENT);
    }
    if let Some(version) = non_empty(package.version.as_deref()) {
        g.add(&dataset, dcat::VERSION, Literal::plain(version));
    }
    let maintainer = non_empty(package.maintainer.as_deref());
    let maintainer_email = mailbox(package.maintainer_email.as_deref());
    if maintainer.is_some() || maintainer_email.is_some() {
        let contact = g.blank_node();
        g.add(&dataset, dcat::CONTACT_POINT, contact.clone());
        g.add(contact.clone(), rdf::TYPE, vcard::KIND);
        let name = maintainer.unwrap_or(&organization.title);
        g.add(contact.clone(), vcard::FN, Literal::plain(name));
        if let Some(email) = maintainer_email {
            g.add(contact, vcard::HAS_EMAIL, email);
        }
    }
    if let Some(author) = non_empty(package.author.as_deref()) {
        let creator = g.blank_node();
        g.add(&dataset, dct::CREATOR, creator.clone());
        g.add(creator.clone(), rdf::TYPE, foaf::AGENT);
        g.add(creator.clone(), foaf::NAME, Literal::plain(author));
        if let Some(email) = mailbox(package.author_email.as_deref()) {
            g.add(creator, foaf::MBOX, email);
        }
    }
    for resource in &package.resources {
        let distribution = describe_distribution(g, info, package, resource);
        g.add(&dataset, dcat::DISTRIBUTION_PROPERTY, distribution);
    }
    dataset
}

fn describe_distribution(
    g: &mut Graph,
    info: &CatalogInfo,
    package: &Package,
    resource: &Resource,
) -> Iri {
    let distribution = info
        .base_url
        .join(&["dataset", &package.id, "resource", &resource.id]);
    g.add(&distribution, rdf::TYPE, dcat::DISTRIBUTION);
    if let Some(title) = non_empty(resource.name.as_deref()) {
        g.add(&distribution, dct::TITLE, Literal::lang(title, "ja"));
    }
    if let Some(description) = non_empty(resource.description.as_deref()) {
        g.add(
            &distribution,
            dct::DESCRIPTION,
            Literal::lang(description, "ja"),
        );
    }
    let url = Iri::parse(&resource.url).ok();
    // DCAT-AP requires an access URL; a resource without a usable URL is reached
    // through its page in the catalog.
    let access_url = url.clone().unwrap_or_else(|| distribution.clone());
    g.add(&distribution, dcat::ACCESS_URL, access_url);
    let is_file =
        resource.url_type.as_deref() == Some("upload") || guess_format(&resource.url).is_some();
    if let Some(url) = url.filter(|_| is_file) {
        g.add(&distribution, dcat::DOWNLOAD_URL, url);
    }
    let known = formats::lookup(&resource.format);
    if let Some((code, _)) = known {
        let format = Iri::constant(formats::FILE_TYPE_BASE).join(&[code]);
        g.add(&distribution, dct::FORMAT, &format);
        g.add(&format, rdf::TYPE, dct::MEDIA_TYPE_OR_EXTENT);
    } else if !resource.format.trim().is_empty() {
        // A format the EU table does not know is kept as a described blank node:
        // DCAT-AP wants a node here, not a bare string.
        let format = g.blank_node();
        g.add(&distribution, dct::FORMAT, format.clone());
        g.add(format.clone(), rdf::TYPE, dct::MEDIA_TYPE_OR_EXTENT);
        g.add(format, rdfs::LABEL, Literal::plain(resource.format.trim()));
    }
    let media_type = resource
        .mimetype
        .as_deref()
        .and_then(formats::clean_media_type)
        .or_else(|| known.and_then(|(_, m)| m).map(str::to_owned));
    if let Some(media_type) = media_type {
        let segments: Vec<&str> = media_type.split('/').collect();
        let iri = Iri::constant(formats::MEDIA_TYPE_BASE).join(&segments);
        g.add(&distribution, dcat::MEDIA_TYPE, &iri);
        g.add(&iri, rdf::TYPE, dct::MEDIA_TYPE);
    }
    if let Some(size) = resource.size.and_then(|s| u64::try_from(s).ok()) {
        g.add(&distribution, dcat::BYTE_SIZE, count(size));
    }
    let license = package
        .license()
        .and_then(|l| Iri::parse(l.url).ok().map(|iri| (l, iri)));
    if let Some((license, iri)) = license {
        g.add(&distribution, dct::LICENSE, &iri);
        g.add(&iri, rdf::TYPE, dct::LICENSE_DOCUMENT);
        g.add(&iri, dct::IDENTIFIER, Literal::plain(license.id));
        g.add(&iri, dct::TITLE, Literal::plain(license.title));
    }
    g.add(&distribution, dct::ISSUED, date_time(&resource.created));
    let modified = resource.last_modified.unwrap_or(resource.metadata_modified);
    g.add(&distribution, dct::MODIFIED, date_time(&modified));
    distribution
}
