//! Publication of a standard dataset's rows into the context broker: the pure
//! mapping from a datastore table of a recognised standard dataset with
//! coordinates (shelters, toilets, AEDs, …) to NGSI-LD entities, and the renkei
//! JSON-LD context those entities are written in. No HTTP and no SQL: the server
//! reads the rows, calls [`Publication::entity`] for each and writes the entities
//! into the tenant of the resource's organisation.
//!
//! # Entity types
//!
//! Every standard schema with 緯度/経度 columns publishes one type. The names are
//! terms of the renkei context ([`context_document`]):
//!
//! | standard schemas | NGSI-LD type |
//! | --- | --- |
//! | `current-03-emergency-evacuation-sites`, `v1-10-emergency-evacuation-sites`, `gsi-emergency-evacuation-sites` (指定緊急避難場所) | `EvacuationSpace` |
//! | `gsi-designated-shelters` (指定避難所) | `EvacuationShelter` |
//! | `current-08-aed`, `v1-01-aed` (AED設置箇所) | `AED` |
//! | `current-13-public-toilets`, `v1-08-public-toilets` (公衆トイレ) | `PublicToilet` |
//! | `v1-07-public-wireless-lan` (公衆無線LAN) | `PublicWiFi` |
//! | `current-14-fire-water-supplies`, `v1-09-fire-water-supplies` (消防水利施設) | `FireWaterSupply` |
//! | `current-15-food-business-permits` (食品等営業許可・届出) | `FoodBusinessPermit` |
//! | `v1-02-care-service-providers` (介護サービス事業所) | `CareServiceProvider` |
//! | `v1-03-medical-institutions` (医療機関) | `MedicalInstitution` |
//! | `v1-04-cultural-properties` (文化財) | `CulturalProperty` |
//! | `v1-05-tourist-facilities` (観光施設) | `TouristFacility` |
//! | `v1-06-events` (イベント) | `Event` |
//! | `v1-12-public-facilities` (公共施設) | `PublicFacility` |
//! | `v1-13-childcare-facilities` (子育て施設) | `ChildcareFacility` |
//!
//! `EvacuationSpace` and the attribute names `name`, `nameKana`, `address`,
//! `telephone`, `hazardTypes` (with members `flood`, `landslide`, `stormSurge`,
//! `earthquake`, `tsunami`, `largeFire`, `inlandFlooding`, `volcano`) and
//! `localGovernmentCode` are those the demo loader (`server::demo`) chose, so that a
//! shelter finder reads both alike once both use this context.
//!
//! # Attributes
//!
//! Each standard column becomes one attribute named in English camelCase
//! ([`attribute_for_column`] holds the table): 緯度 and 経度 together become the
//! GeoProperty `location` (a GeoJSON Point, longitude first); the hazard flag columns
//! (災害種別_*) together become `hazardTypes`; other flags (1 or empty) and 有/無
//! columns become booleans (an empty flag is `false`, an empty 有/無 is left out:
//! the standard defines an empty flag as "no" but says nothing of an empty 有/無);
//! counts and measures are numbers; dates are `{"@type": "Date", "@value": …}` as
//! NGSI-LD writes them; everything else is text as loaded (already normalised by the
//! ingest). Empty cells give no attribute. Two attributes are added to every entity:
//! `localGovernmentCode` (the row's 全国地方公共団体コード or
//! 都道府県コード又は市区町村コード when it has one, else the tenant's code; a v1
//! 市区町村コード column is kept as `municipalityCode`) and `source`, a Property whose value is the catalog resource id,
//! so that `q=source=="<resource id>"` finds every entity one resource published.
//!
//! # The context
//!
//! One built-in document, served by renkei at [`CONTEXT_PATH`] and preloaded into the
//! broker so that it resolves without the network. Terms whose meaning schema.org
//! defines map there (`name`, `address`, `telephone`, `url`, `email`, `faxNumber`,
//! `postalCode`, `image`, `alternateName`, `identifier`); every other term, and every
//! type, maps into the fixed renkei vocabulary [`VOCABULARY`] (`urn:renkei:opendata:`),
//! a URN so that the IRIs never depend on where a deployment runs nor pretend to be a
//! resolvable web address. `location` and `description` are the core context's.
//!
//! # Entity ids
//!
//! `urn:ngsi-ld:<Type>:<tenant code>:<resource id>:<row key>`, where the row key is
//! the row's `ID` (current layouts) or `NO` (v1 and 国土地理院 layouts) as written,
//! or, when the file lacks that column altogether, the row's number in the table
//! (`_id`, 1 for the first data row). The resource id is there in full: the same
//! tenant often publishes one list twice (a CSV and an Excel resource of one
//! dataset) or the same type from two datasets, and a shortened id could make one
//! resource silently overwrite another's entities. Ids are therefore stable across
//! uploads of the same resource, which is what keeping the broker in step needs.
//! Characters outside `A–Z a–z 0–9 - . _ ~` in either part are percent-encoded.
//!
//! # Rows that are not published
//!
//! A row without usable coordinates (empty, not a number, outside ±90/±180, or the
//! 0,0 a spreadsheet leaves for "unknown"), without a value in its ID/NO column, or
//! repeating an earlier row's ID/NO gives a [`Skip`] naming the reason; [`Tally`]
//! counts published and skipped rows so that the caller can report every one.

use std::collections::HashSet;
use std::sync::OnceLock;

use serde_json::{json, Map, Value};
use store::datastore::{Cell, Field};

use crate::standard::{self, ColumnType};

/// The renkei vocabulary: the IRI prefix of every type and of every attribute
/// that schema.org does not define.
pub const VOCABULARY: &str = "urn:renkei:opendata:";

/// Where renkei serves [`context_document`], below its public URL.
pub const CONTEXT_PATH: &str = "/contexts/opendata.jsonld";

/// The name of the attribute that holds the catalog resource id.
pub const SOURCE_ATTRIBUTE: &str = "source";

const SCHEMA_ORG: &str = "https://schema.org/";

/// The URL of the renkei context on a deployment whose public URL is `public_url`.
pub fn context_url(public_url: &str) -> String {
    format!("{}{CONTEXT_PATH}", public_url.trim_end_matches('/'))
}

/// Standard schema id → NGSI-LD type (the table of the module docs).
const TYPES: &[(&str, &str)] = &[
    ("current-03-emergency-evacuation-sites", "EvacuationSpace"),
    ("v1-10-emergency-evacuation-sites", "EvacuationSpace"),
    ("gsi-emergency-evacuation-sites", "EvacuationSpace"),
    ("gsi-designated-shelters", "EvacuationShelter"),
    ("current-08-aed", "AED"),
    ("v1-01-aed", "AED"),
    ("current-13-public-toilets", "PublicToilet"),
    ("v1-08-public-toilets", "PublicToilet"),
    ("v1-07-public-wireless-lan", "PublicWiFi"),
    ("current-14-fire-water-supplies", "FireWaterSupply"),
    ("v1-09-fire-water-supplies", "FireWaterSupply"),
    ("current-15-food-business-permits", "FoodBusinessPermit"),
    ("v1-02-care-service-providers", "CareServiceProvider"),
    ("v1-03-medical-institutions", "MedicalInstitution"),
    ("v1-04-cultural-properties", "CulturalProperty"),
    ("v1-05-tourist-facilities", "TouristFacility"),
    ("v1-06-events", "Event"),
    ("v1-12-public-facilities", "PublicFacility"),
    ("v1-13-childcare-facilities", "ChildcareFacility"),
];

/// The NGSI-LD type a standard schema publishes as, if it has coordinates.
pub fn entity_type_for(schema_id: &str) -> Option<&'static str> {
    TYPES
        .iter()
        .find(|(id, _)| *id == schema_id)
        .map(|(_, t)| *t)
}

/// Every type of the table, once each.
pub fn entity_types() -> Vec<&'static str> {
    let mut types: Vec<&'static str> = TYPES.iter().map(|(_, t)| *t).collect();
    types.sort_unstable();
    types.dedup();
    types
}

/// Hazard columns (災害種別_X in the municipal layouts, X alone in 国土地理院's) and
/// the `hazardTypes` member each stands for, as the demo loader names them.
const HAZARDS: &[(&str, &str)] = &[
    ("洪水", "flood"),
    ("崖崩れ、土石流及び地滑り", "landslide"),
    ("高潮", "stormSurge"),
    ("地震", "earthquake"),
    ("津波", "tsunami"),
    ("大規模な火事", "largeFire"),
    ("内水氾濫", "inlandFlooding"),
    ("火山現象", "volcano"),
];

/// The attribute holding the hazards an evacuation site is designated for.
const HAZARD_TYPES: &str = "hazardTypes";
const LOCAL_GOVERNMENT_CODE: &str = "localGovernmentCode";

/// Standard column name (as the definitions spell it) → attribute name. 緯度/経度,
/// the hazard flags and the ID/NO key are handled apart ([`Role`]).
const ATTRIBUTES: &[(&str, &str)] = &[
    ("全国地方公共団体コード", LOCAL_GOVERNMENT_CODE),
    ("都道府県コード又は市区町村コード", LOCAL_GOVERNMENT_CODE),
    ("市区町村コード", "municipalityCode"),
    ("地方公共団体名", "localGovernmentName"),
    ("都道府県名及び市町村名", "localGovernmentName"),
    ("都道府県名", "prefectureName"),
    ("市区町村名", "municipalityName"),
    ("共通ID", "commonId"),
    ("名称", "name"),
    ("施設名称", "name"),
    ("介護サービス事業所名称", "name"),
    ("イベント名", "name"),
    ("施設・場所名", "name"),
    ("名称_カナ", "nameKana"),
    ("施設名称_カナ", "nameKana"),
    ("介護サービス事業所名称_カナ", "nameKana"),
    ("イベント名_カナ", "nameKana"),
    ("名称_英字", "nameEnglish"),
    ("名称_英語", "nameEnglish"),
    ("施設名称_英字", "nameEnglish"),
    ("イベント名_英語", "nameEnglish"),
    ("名称_通称", "alternateName"),
    (
        "所在地_全国地方公共団体コード",
        "addressLocalGovernmentCode",
    ),
    ("町字ID", "townId"),
    ("所在地_連結表記", "address"),
    ("住所", "address"),
    ("所在地_都道府県", "addressPrefecture"),
    ("施設所在地_都道府県", "addressPrefecture"),
    ("所在地_市区町村", "addressMunicipality"),
    ("施設所在地_市区町村", "addressMunicipality"),
    ("所在地_町字", "addressTown"),
    ("施設所在地_町字", "addressTown"),
    ("所在地_番地以下", "addressBlock"),
    ("施設所在地_番地以下", "addressBlock"),
    ("建物名等(方書)", "addressBuilding"),
    ("方書", "addressBuilding"),
    ("施設方書", "addressBuilding"),
    ("郵便番号", "postalCode"),
    ("標高", "elevation"),
    ("高度の種別", "altitudeType"),
    ("高度の値", "altitude"),
    ("設置位置", "installationPosition"),
    ("電話番号", "telephone"),
    ("施設電話番号", "telephone"),
    ("内線番号", "telephoneExtension"),
    ("FAX番号", "faxNumber"),
    ("連絡先メールアドレス", "email"),
    ("連絡先FormURL", "contactFormUrl"),
    ("連絡先備考（その他、SNSなど）", "contactNote"),
    ("連絡先備考", "contactNote"),
    ("連絡先名称", "contactName"),
    ("連絡先電話番号", "contactTelephone"),
    ("連絡先内線番号", "contactTelephoneExtension"),
    ("URL", "url"),
    ("画像", "image"),
    ("画像1", "image"),
    ("画像_ライセンス", "imageLicense"),
    ("画像1_ライセンス", "imageLicense"),
    ("画像2", "secondImage"),
    ("画像2_ライセンス", "secondImageLicense"),
    ("備考", "remarks"),
    ("指定避難所との重複", "alsoDesignatedShelter"),
    ("指定避難所との住所同一", "sameAddressAsDesignatedShelter"),
    (
        "指定緊急避難場所との住所同一",
        "sameAddressAsEvacuationSpace",
    ),
    ("想定収容人数", "capacity"),
    ("定員", "capacity"),
    ("収容定員", "capacity"),
    ("対象となる町会・自治会", "neighbourhoodAssociations"),
    ("その他市町村長が必要と認める事項", "otherMatters"),
    ("受入対象者", "acceptedPersons"),
    ("男性トイレ総数", "maleToilets"),
    ("男性トイレ数（小便器）", "maleUrinals"),
    ("男性トイレ数（和式）", "maleJapaneseStyleToilets"),
    ("男性トイレ数（洋式）", "maleWesternStyleToilets"),
    ("女性トイレ総数", "femaleToilets"),
    ("女性トイレ数（和式）", "femaleJapaneseStyleToilets"),
    ("女性トイレ数（洋式）", "femaleWesternStyleToilets"),
    ("男女共用トイレ総数", "unisexToilets"),
    ("男女共用トイレ数（和式）", "unisexJapaneseStyleToilets"),
    ("男女共用トイレ数（洋式）", "unisexWesternStyleToilets"),
    ("バリアフリートイレ数", "barrierFreeToilets"),
    ("多機能トイレ数", "multipurposeToilets"),
    ("車椅子使用者用トイレ有無", "wheelchairToilet"),
    ("乳幼児用設備設置トイレ有無", "babyCareToilet"),
    ("オストメイト設置トイレ有無", "ostomateToilet"),
    ("利用開始時間", "openingTime"),
    ("利用終了時間", "closingTime"),
    ("利用可能時間特記事項", "openingHoursNote"),
    ("利用可能日時特記事項", "openingHoursNote"),
    ("利用可能曜日", "availableDays"),
    ("利用可能曜日特記事項", "availableDaysNote"),
    ("開始時間", "startTime"),
    ("終了時間", "endTime"),
    ("種別", "category"),
    ("口径", "diameter"),
    ("営業の種類", "businessType"),
    ("業態", "businessFormat"),
    ("法人名", "corporationName"),
    ("法人の名称", "corporationName"),
    ("法人番号", "corporateNumber"),
    ("団体名", "organizationName"),
    ("許可番号", "permitNumber"),
    ("初回許可年月日", "firstPermitDate"),
    ("許可年月日", "permitDate"),
    ("許可開始日", "permitStartDate"),
    ("許可満了日", "permitExpiryDate"),
    ("廃業年月日", "closureDate"),
    ("申請区分", "applicationCategory"),
    ("許可条件", "permitConditions"),
    ("小児対応設備の有無", "pediatricSupport"),
    ("実施サービス", "services"),
    ("事業所番号", "providerNumber"),
    ("医療機関の種類", "medicalInstitutionType"),
    ("医療機関コード", "medicalInstitutionCode"),
    ("診療曜日", "consultationDays"),
    ("診療開始時間", "consultationStartTime"),
    ("診療終了時間", "consultationEndTime"),
    ("診療日時特記事項", "consultationHoursNote"),
    ("時間外における対応", "afterHoursService"),
    ("診療科目", "departments"),
    ("病床数", "beds"),
    ("文化財分類", "culturalPropertyClass"),
    ("種類", "kind"),
    ("場所名称", "placeName"),
    ("員数（数）", "quantity"),
    ("員数（単位）", "quantityUnit"),
    ("所有者等", "owner"),
    ("文化財指定日", "designationDate"),
    ("概要", "summary"),
    ("概要_英語", "summaryEnglish"),
    ("説明", "description"),
    ("説明_英語", "descriptionEnglish"),
    ("POIコード", "poiCode"),
    ("料金(基本)", "basicFee"),
    ("料金(詳細)", "feeDetails"),
    ("アクセス方法", "access"),
    ("駐車場情報", "parking"),
    ("バリアフリー情報", "accessibility"),
    ("開始日", "startDate"),
    ("終了日", "endDate"),
    ("開始日時特記事項", "startNote"),
    ("主催者", "organizer"),
    ("参加申込終了日", "applicationDeadlineDate"),
    ("参加申込終了時間", "applicationDeadlineTime"),
    ("参加申込方法", "applicationMethod"),
    ("設置者", "installer"),
    ("SSID", "ssid"),
    ("提供エリア", "coverageArea"),
    ("認可等年月日", "authorizationDate"),
    ("受入年齢", "acceptedAges"),
    ("一時預かりの有無", "temporaryChildcare"),
];

/// Terms whose meaning schema.org defines (the rest are renkei's).
const SCHEMA_ORG_TERMS: &[&str] = &[
    "name",
    "address",
    "telephone",
    "url",
    "email",
    "faxNumber",
    "postalCode",
    "image",
    "alternateName",
    "identifier",
];

/// Terms of the NGSI-LD core context the entities use; the renkei context leaves
/// them alone (the core context is applied last and would win anyway).
const CORE_TERMS: &[&str] = &["location", "description"];

/// The attribute a standard column becomes, for columns other than the
/// coordinates, the hazard flags and the ID/NO key.
pub fn attribute_for_column(column: &str) -> Option<&'static str> {
    ATTRIBUTES
        .iter()
        .find(|(name, _)| *name == column)
        .map(|(_, attr)| *attr)
}

/// The `hazardTypes` member of a hazard flag column.
fn hazard_of(column: &str) -> Option<&'static str> {
    let bare = column.strip_prefix("災害種別_").unwrap_or(column);
    HAZARDS
        .iter()
        .find(|(h, _)| *h == bare)
        .map(|(_, key)| *key)
}

/// The IRI a term of the renkei context stands for.
fn term_iri(term: &str) -> String {
    if CORE_TERMS.contains(&term) {
        ngsi_ld::context::ActiveContext::core().expand_iri(term, true)
    } else if SCHEMA_ORG_TERMS.contains(&term) {
        format!("{SCHEMA_ORG}{term}")
    } else {
        format!("{VOCABULARY}{term}")
    }
}

/// Every term the published entities use: the types, the attribute names and the
/// two added attributes, sorted.
fn all_terms() -> Vec<&'static str> {
    let mut terms: Vec<&'static str> = entity_types();
    terms.extend(ATTRIBUTES.iter().map(|(_, attr)| *attr));
    terms.extend([
        HAZARD_TYPES,
        SOURCE_ATTRIBUTE,
        LOCAL_GOVERNMENT_CODE,
        "identifier",
    ]);
    terms.retain(|t| !CORE_TERMS.contains(t));
    terms.sort_unstable();
    terms.dedup();
    terms
}

/// The renkei JSON-LD context document: every term the published entities use,
/// mapped to its IRI. Built once; the same on every deployment.
pub fn context_document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(|| {
        let definitions: Map<String, Value> = all_terms()
            .into_iter()
            .map(|term| (term.to_owned(), Value::String(term_iri(term))))
            .collect();
        json!({ "@context": definitions })
    })
}

/// The expanded IRI of a published type (what a query by type compares with).
pub fn type_iri(entity_type: &str) -> String {
    term_iri(entity_type)
}

/// The expanded IRI of the `source` attribute.
pub fn source_iri() -> String {
    term_iri(SOURCE_ATTRIBUTE)
}

/// What one field of the table contributes to an entity.
#[derive(Debug, Clone, PartialEq)]
enum Role {
    /// The ID/NO column: the row key of the entity id, and `identifier`.
    Key,
    Latitude,
    Longitude,
    /// A hazard flag: a member of `hazardTypes` when set.
    Hazard(&'static str),
    /// An attribute, converted by the column's standard type.
    Attribute {
        name: &'static str,
        ty: ColumnType,
    },
}

/// How the rows of one datastore table become entities.
#[derive(Debug, Clone, PartialEq)]
pub struct Publication {
    schema_id: &'static str,
    entity_type: &'static str,
    /// One per field of the table, in order; `None` for a column no standard names.
    roles: Vec<Option<Role>>,
    has_key: bool,
    has_hazards: bool,
}

/// The place a row is published to: the tenant (organisation code), the catalog
/// resource it comes from and the URL of the renkei context on this deployment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    pub tenant: &'a str,
    pub resource_id: &'a str,
    pub context_url: &'a str,
}

/// Why a row was not published.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Skip {
    #[error("the row has no coordinates (緯度/経度)")]
    NoCoordinates,
    #[error("the coordinates are not a place: latitude {latitude}, longitude {longitude}")]
    CoordinatesOutOfRange { latitude: f64, longitude: f64 },
    #[error("the row has no value in its {column} column, which identifies it")]
    NoIdentifier { column: String },
    #[error("the row repeats the {column} of an earlier row ({value})")]
    DuplicateIdentifier { column: String, value: String },
}

impl Skip {
    /// The reason in Japanese, for the publisher.
    pub fn message_ja(&self) -> String {
        match self {
            Skip::NoCoordinates => "緯度・経度がないため公開しませんでした".to_owned(),
            Skip::CoordinatesOutOfRange {
                latitude,
                longitude,
            } => format!(
                "緯度 {latitude}・経度 {longitude} は地点として正しくないため公開しませんでした"
            ),
            Skip::NoIdentifier { column } => {
                format!("{column} が空欄のため公開しませんでした")
            }
            Skip::DuplicateIdentifier { column, value } => {
                format!("{column} 「{value}」が前の行と重複するため公開しませんでした")
            }
        }
    }

    /// A stable code for the reason.
    pub fn code(&self) -> &'static str {
        match self {
            Skip::NoCoordinates => "no-coordinates",
            Skip::CoordinatesOutOfRange { .. } => "coordinates-out-of-range",
            Skip::NoIdentifier { .. } => "no-identifier",
            Skip::DuplicateIdentifier { .. } => "duplicate-identifier",
        }
    }
}

/// The standard schema and column a field was loaded as (see `ingest::Plan`).
fn standard_of(field: &Field) -> Option<(&str, &str)> {
    let info = field.info.as_ref()?;
    let schema = info.get("standard_schema")?.as_str()?;
    let column = info.get("standard_column")?.as_str()?;
    Some((schema, column))
}

/// How a table's rows publish, from its fields' `info`: `None` unless the table
/// was loaded as a standard dataset that has a type and both coordinate columns.
pub fn publication_for(fields: &[Field]) -> Option<Publication> {
    let schema_id = fields
        .iter()
        .find_map(|f| standard_of(f).map(|(schema, _)| schema))?;
    let schema = standard::schema(schema_id)?;
    let entity_type = entity_type_for(schema.id)?;
    let roles: Vec<Option<Role>> = fields
        .iter()
        .map(|field| {
            let (field_schema, column) = standard_of(field)?;
            if field_schema != schema.id {
                return None;
            }
            let ty = schema.columns.iter().find(|c| c.name == column)?.ty;
            role_of(column, ty)
        })
        .collect();
    let has = |wanted: &Role| roles.iter().any(|r| r.as_ref() == Some(wanted));
    if !has(&Role::Latitude) || !has(&Role::Longitude) {
        return None;
    }
    let has_key = has(&Role::Key);
    let has_hazards = roles.iter().any(|r| matches!(r, Some(Role::Hazard(_))));
    Some(Publication {
        schema_id: schema.id,
        entity_type,
        roles,
        has_key,
        has_hazards,
    })
}

fn role_of(column: &str, ty: ColumnType) -> Option<Role> {
    match ty {
        ColumnType::Latitude => return Some(Role::Latitude),
        ColumnType::Longitude => return Some(Role::Longitude),
        _ => {}
    }
    if column == "ID" || column == "NO" {
        return Some(Role::Key);
    }
    if ty == ColumnType::Flag {
        if let Some(hazard) = hazard_of(column) {
            return Some(Role::Hazard(hazard));
        }
    }
    attribute_for_column(column).map(|name| Role::Attribute { name, ty })
}

impl Publication {
    /// The standard schema the table was loaded as.
    pub fn schema_id(&self) -> &'static str {
        self.schema_id
    }

    /// The NGSI-LD type (a term of the renkei context).
    pub fn entity_type(&self) -> &'static str {
        self.entity_type
    }

    /// The id of the entity for a row key (see the module docs).
    pub fn entity_id(&self, target: &Target, row_key: &str) -> String {
        format!(
            "urn:ngsi-ld:{}:{}:{}:{}",
            self.entity_type,
            encode_id_part(target.tenant),
            encode_id_part(target.resource_id),
            encode_id_part(row_key)
        )
    }

    /// The name of the column that identifies rows, when the file has one.
    fn key_column(&self) -> &'static str {
        if self.schema_id.starts_with("current-") {
            "ID"
        } else {
            "NO"
        }
    }

    /// The entity of one row, in NGSI-LD's normalized form with the renkei context:
    /// `row` has one cell per field given to [`publication_for`], and `row_number`
    /// is the row's `_id` (1 for the first data row).
    pub fn entity(&self, target: &Target, row_number: u64, row: &[Cell]) -> Result<Value, Skip> {
        let (mut latitude, mut longitude, mut key) = (None, None, None);
        let mut hazards: Vec<&str> = Vec::new();
        let mut attributes = Map::new();
        for (role, cell) in self.roles.iter().zip(row) {
            match role {
                None => {}
                Some(Role::Latitude) => latitude = number_of(cell),
                Some(Role::Longitude) => longitude = number_of(cell),
                Some(Role::Key) => key = text_of(cell),
                Some(Role::Hazard(hazard)) if flag_of(cell) == Some(true) => hazards.push(hazard),
                Some(Role::Hazard(_)) => {}
                Some(Role::Attribute { name, ty }) => {
                    if let Some(value) = value_of(cell, *ty) {
                        attributes.insert((*name).to_owned(), property(value));
                    }
                }
            }
        }
        let location = point(latitude, longitude)?;
        let key = match (self.has_key, key) {
            (true, Some(key)) => key,
            (true, None) => {
                return Err(Skip::NoIdentifier {
                    column: self.key_column().to_owned(),
                })
            }
            (false, _) => row_number.to_string(),
        };
        if self.has_key {
            attributes.insert("identifier".to_owned(), property(json!(key)));
        }
        if self.has_hazards {
            attributes.insert(HAZARD_TYPES.to_owned(), property(json!(hazards)));
        }
        if !attributes.contains_key(LOCAL_GOVERNMENT_CODE) {
            attributes.insert(
                LOCAL_GOVERNMENT_CODE.to_owned(),
                property(json!(target.tenant)),
            );
        }
        attributes.insert(
            SOURCE_ATTRIBUTE.to_owned(),
            property(json!(target.resource_id)),
        );
        attributes.insert(
            "location".to_owned(),
            json!({"type": "GeoProperty", "value": location}),
        );
        let mut entity = Map::new();
        entity.insert("id".into(), json!(self.entity_id(target, &key)));
        entity.insert("type".into(), json!(self.entity_type));
        entity.extend(attributes);
        entity.insert(
            "@context".into(),
            json!([target.context_url, ngsi_ld::context::CORE_CONTEXT_URL]),
        );
        Ok(Value::Object(entity))
    }
}

/// Counts what one publication run did, and catches rows that would give the id
/// of an earlier row (which would otherwise silently overwrite it).
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Tally {
    ids: HashSet<String>,
    /// Rows turned into entities.
    pub published: usize,
    /// Rows not published, with the row number and the reason, in row order.
    pub skipped: Vec<(u64, Skip)>,
}

impl Tally {
    /// Records the outcome of [`Publication::entity`] for row `row_number` and gives
    /// back the entity to write, if any.
    pub fn take(
        &mut self,
        publication: &Publication,
        row_number: u64,
        outcome: Result<Value, Skip>,
    ) -> Option<Value> {
        match outcome {
            Ok(entity) => {
                let id = entity["id"].as_str().unwrap_or_default().to_owned();
                if self.ids.insert(id) {
                    self.published += 1;
                    Some(entity)
                } else {
                    let value = entity["identifier"]["value"]
                        .as_str()
                        .unwrap_or_default()
                        .to_owned();
                    self.skipped.push((
                        row_number,
                        Skip::DuplicateIdentifier {
                            column: publication.key_column().to_owned(),
                            value,
                        },
                    ));
                    None
                }
            }
            Err(skip) => {
                self.skipped.push((row_number, skip));
                None
            }
        }
    }

    /// The ids of the entities published so far.
    pub fn ids(&self) -> &HashSet<String> {
        &self.ids
    }
}

fn property(value: Value) -> Value {
    json!({"type": "Property", "value": value})
}

/// Percent-encodes what may not stand in an entity id's last parts unchanged.
fn encode_id_part(part: &str) -> String {
    let mut out = String::with_capacity(part.len());
    for byte in part.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// A GeoJSON Point, longitude first, from coordinates that name a place.
fn point(latitude: Option<f64>, longitude: Option<f64>) -> Result<Value, Skip> {
    let (Some(latitude), Some(longitude)) = (latitude, longitude) else {
        return Err(Skip::NoCoordinates);
    };
    // 0,0 is what a spreadsheet leaves in a cell nobody filled in, not a place
    // any Japanese municipality publishes.
    if latitude == 0.0 && longitude == 0.0 {
        return Err(Skip::NoCoordinates);
    }
    if !(-90.0..=90.0).contains(&latitude) || !(-180.0..=180.0).contains(&longitude) {
        return Err(Skip::CoordinatesOutOfRange {
            latitude,
            longitude,
        });
    }
    Ok(json!({"type": "Point", "coordinates": [longitude, latitude]}))
}

fn number_of(cell: &Cell) -> Option<f64> {
    let x = match cell {
        Cell::Numeric(x) => *x,
        // Precision: coordinates loaded as integers are whole degrees.
        Cell::Int(i) => *i as f64,
        Cell::Text(t) => jp::width::normalize_digits(t.trim()).parse().ok()?,
        _ => return None,
    };
    x.is_finite().then_some(x)
}

fn text_of(cell: &Cell) -> Option<String> {
    let text = match cell {
        Cell::Text(t) => t.trim().to_owned(),
        Cell::Int(i) => i.to_string(),
        Cell::Numeric(x) => x.to_string(),
        _ => return None,
    };
    (!text.is_empty()).then_some(text)
}

/// A flag column: "1" set, empty not set (how the standard defines it; the ingest
/// has already turned ○ into 1).
fn flag_of(cell: &Cell) -> Option<bool> {
    match cell {
        Cell::Null => Some(false),
        Cell::Bool(b) => Some(*b),
        Cell::Int(i) => Some(*i == 1),
        Cell::Text(t) => match t.trim() {
            "" | "0" => Some(false),
            "1" => Some(true),
            _ => None,
        },
        _ => None,
    }
}

/// The attribute value of a cell, by the column's standard type; `None` for an
/// empty cell (and for an empty 有/無, which the standard leaves undefined).
fn value_of(cell: &Cell, ty: ColumnType) -> Option<Value> {
    match ty {
        ColumnType::Flag => return flag_of(cell).map(Value::Bool),
        ColumnType::YesNo => {
            return match cell {
                Cell::Bool(b) => Some(Value::Bool(*b)),
                Cell::Text(t) if t.trim() == "有" => Some(Value::Bool(true)),
                Cell::Text(t) if t.trim() == "無" => Some(Value::Bool(false)),
                other => text_of(other).map(Value::String),
            }
        }
        _ => {}
    }
    match cell {
        Cell::Null => None,
        Cell::Text(t) => {
            let t = t.trim();
            (!t.is_empty()).then(|| Value::String(t.to_owned()))
        }
        Cell::Int(i) => Some(json!(i)),
        Cell::Numeric(x) => serde_json::Number::from_f64(*x).map(Value::Number),
        Cell::Bool(b) => Some(Value::Bool(*b)),
        Cell::Date(d) => Some(json!({"@type": "Date", "@value": d.format("%Y-%m-%d").to_string()})),
        Cell::Timestamp(t) => Some(json!({
            "@type": "DateTime",
            "@value": t.format("%Y-%m-%dT%H:%M:%S").to_string()
        })),
        Cell::Json(v) => (!v.is_null()).then(|| Value::clone(v)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ingest::{self, Format, Plan, Sink};
    use std::path::PathBuf;

    const RESOURCE: &str = "3f1c2a9e-0b5d-4c8e-9a41-7d2e6f10b8c3";
    const CONTEXT: &str = "https://renkei.example.jp/contexts/opendata.jsonld";

    fn target() -> Target<'static> {
        Target {
            tenant: "222127",
            resource_id: RESOURCE,
            context_url: CONTEXT,
        }
    }

    #[derive(Default)]
    struct Collect {
        fields: Vec<Field>,
        rows: Vec<Vec<Cell>>,
    }

    impl Sink for Collect {
        type Error = std::convert::Infallible;
        fn plan(&mut self, plan: &Plan) -> Result<(), Self::Error> {
            self.fields = plan.fields.clone();
            Ok(())
        }
        fn batch(&mut self, rows: &mut ingest::Rows) -> Result<(), Self::Error> {
            self.rows.extend(rows.drain());
            Ok(())
        }
    }

    /// A file of 焼津市 loaded as the upload path loads it.
    fn load(file: &str) -> Collect {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("testdata/yaizu")
            .join(file);
        let mut sink = Collect::default();
        ingest::ingest(&path, Format::Csv, &ingest::Options::default(), &mut sink)
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        sink
    }

    fn publish_all(table: &Collect) -> (Publication, Vec<Value>, Tally) {
        let publication = publication_for(&table.fields).expect("a publishable table");
        let mut tally = Tally::default();
        let mut entities = Vec::new();
        for (i, row) in table.rows.iter().enumerate() {
            let number = i as u64 + 1;
            let outcome = publication.entity(&target(), number, row);
            entities.extend(tally.take(&publication, number, outcome));
        }
        (publication, entities, tally)
    }

    fn value<'a>(entity: &'a Value, attribute: &str) -> &'a Value {
        &entity[attribute]["value"]
    }

    #[test]
    fn evacuation_sites_become_evacuation_spaces_as_the_demo_names_them() {
        let table = load("222127_evacuation_space.csv");
        let (publication, entities, tally) = publish_all(&table);
        assert_eq!(publication.schema_id(), "v1-10-emergency-evacuation-sites");
        assert_eq!(publication.entity_type(), "EvacuationSpace");
        assert_eq!((entities.len(), tally.published), (31, 31));
        assert!(tally.skipped.is_empty(), "{:?}", tally.skipped);
        let first = &entities[0];
        assert_eq!(
            first["id"],
            json!(format!("urn:ngsi-ld:EvacuationSpace:222127:{RESOURCE}:1"))
        );
        assert_eq!(first["type"], json!("EvacuationSpace"));
        assert_eq!(value(first, "name"), &json!("中港タワー"));
        assert_eq!(value(first, "nameKana"), &json!("ナカミナトタワー"));
        assert_eq!(value(first, "address"), &json!("焼津市中港5-463"));
        assert_eq!(value(first, "telephone"), &json!("054-625-0128"));
        assert_eq!(first["location"]["type"], json!("GeoProperty"));
        assert_eq!(
            value(first, "location"),
            &json!({"type": "Point", "coordinates": [138.3270609, 34.87512688]})
        );
        assert_eq!(
            value(first, "hazardTypes"),
            &json!(["earthquake", "tsunami"])
        );
        assert_eq!(value(first, "alsoDesignatedShelter"), &json!(false));
        assert_eq!(value(first, "localGovernmentCode"), &json!("222127"));
        assert_eq!(value(first, "source"), &json!(RESOURCE));
        assert_eq!(value(first, "identifier"), &json!("1"));
        assert_eq!(
            first["@context"],
            json!([CONTEXT, ngsi_ld::context::CORE_CONTEXT_URL])
        );
        assert!(first.get("remarks").is_none(), "empty cells give nothing");
    }

    #[test]
    fn toilets_aeds_and_wifi_have_their_own_types_and_typed_values() {
        let (publication, toilets, tally) = publish_all(&load("222127_public_toilet.csv"));
        assert_eq!(publication.schema_id(), "current-13-public-toilets");
        assert_eq!(tally.published, toilets.len());
        let toilet = &toilets[0];
        assert_eq!(
            toilet["id"],
            json!(format!("urn:ngsi-ld:PublicToilet:222127:{RESOURCE}:1"))
        );
        assert_eq!(value(toilet, "name"), &json!("ふるさとの川瀬戸川便益施設"));
        assert_eq!(
            value(toilet, "address"),
            &json!("静岡県焼津市駅北5丁目2-11")
        );
        assert_eq!(value(toilet, "maleToilets"), &json!(3));
        assert_eq!(value(toilet, "femaleWesternStyleToilets"), &json!(2));
        assert_eq!(value(toilet, "wheelchairToilet"), &json!(true));
        assert_eq!(value(toilet, "babyCareToilet"), &json!(false));
        assert_eq!(value(toilet, "installationPosition"), &json!("施設内"));
        assert_eq!(
            value(toilet, "location")["coordinates"],
            json!([138.3207625, 34.8760119])
        );

        let (publication, aeds, _) = publish_all(&load("222127_aed.csv"));
        assert_eq!(publication.entity_type(), "AED");
        let aed = &aeds[0];
        // The NO keeps its leading zeros: it is an identifier, not a number.
        assert_eq!(
            aed["id"],
            json!(format!("urn:ngsi-ld:AED:222127:{RESOURCE}:0000000001"))
        );
        assert_eq!(value(aed, "name"), &json!("市役所本館"));
        assert_eq!(value(aed, "pediatricSupport"), &json!(true));
        assert_eq!(value(aed, "organizationName"), &json!("管財課"));
        assert!(aed.get("hazardTypes").is_none());

        let (publication, hotspots, _) = publish_all(&load("222127_public_wireless_lan.csv"));
        assert_eq!(publication.entity_type(), "PublicWiFi");
        assert_eq!(value(&hotspots[0], "ssid"), &json!("DoSPOT-FREE"));
    }

    #[test]
    fn rows_without_a_place_or_an_identifier_are_skipped_and_counted() {
        let table = load("222127_evacuation_space.csv");
        let publication = publication_for(&table.fields).unwrap();
        let column = |name: &str| table.fields.iter().position(|f| f.id == name).unwrap();
        let (lat, lng, no) = (column("緯度"), column("経度"), column("NO"));
        let with = |changes: &[(usize, Cell)]| {
            let mut row = table.rows[0].clone();
            for (i, cell) in changes {
                row[*i] = cell.clone();
            }
            row
        };
        let rows = [
            with(&[(lat, Cell::Null)]),
            with(&[(lat, Cell::Numeric(0.0)), (lng, Cell::Numeric(0.0))]),
            with(&[(lat, Cell::Numeric(138.3)), (lng, Cell::Numeric(34.8))]),
            with(&[(no, Cell::Null)]),
            table.rows[0].clone(),
            table.rows[0].clone(),
        ];
        let mut tally = Tally::default();
        let published: Vec<Value> = rows
            .iter()
            .enumerate()
            .filter_map(|(i, row)| {
                let number = i as u64 + 1;
                tally.take(
                    &publication,
                    number,
                    publication.entity(&target(), number, row),
                )
            })
            .collect();
        assert_eq!(published.len(), 1);
        assert_eq!(tally.published, 1);
        let reasons: Vec<(u64, &str)> = tally.skipped.iter().map(|(n, s)| (*n, s.code())).collect();
        assert_eq!(
            reasons,
            [
                (1, "no-coordinates"),
                (2, "no-coordinates"),
                (3, "coordinates-out-of-range"),
                (4, "no-identifier"),
                (6, "duplicate-identifier"),
            ]
        );
        assert!(tally.skipped[4].1.message_ja().contains("重複"));
        assert!(tally.skipped[3].1.to_string().contains("NO"));
    }

    #[test]
    fn a_file_without_its_key_column_uses_row_numbers() {
        let table = load("222127_evacuation_space.csv");
        let no = table.fields.iter().position(|f| f.id == "NO").unwrap();
        let mut fields = table.fields.clone();
        fields.remove(no);
        let publication = publication_for(&fields).unwrap();
        let mut row = table.rows[4].clone();
        row.remove(no);
        let entity = publication.entity(&target(), 5, &row).unwrap();
        assert_eq!(
            entity["id"],
            json!(format!("urn:ngsi-ld:EvacuationSpace:222127:{RESOURCE}:5"))
        );
        assert!(entity.get("identifier").is_none());
    }

    #[test]
    fn tables_without_a_standard_or_without_coordinates_do_not_publish() {
        let text = |id: &str, info: Option<Value>| Field {
            id: id.into(),
            column_type: store::datastore::ColumnType::Text,
            info,
        };
        assert!(publication_for(&[text("名称", None), text("緯度", None)]).is_none());
        let population = |column: &str| {
            text(
                column,
                Some(
                    json!({"standard_schema": "v1-11-population-by-area-and-age", "standard_column": column}),
                ),
            )
        };
        assert!(publication_for(&[population("地域名"), population("総人口")]).is_none());
        let evacuation = |column: &str| {
            text(
                column,
                Some(
                    json!({"standard_schema": "v1-10-emergency-evacuation-sites", "standard_column": column}),
                ),
            )
        };
        assert!(publication_for(&[evacuation("NO"), evacuation("緯度")]).is_none());
        assert!(publication_for(&[evacuation("緯度"), evacuation("経度")]).is_some());
    }

    #[test]
    fn every_standard_dataset_with_coordinates_publishes_every_column() {
        let mut with_coordinates = 0;
        for schema in standard::schemas() {
            let has_coordinates = schema.columns.iter().any(|c| c.ty == ColumnType::Latitude);
            assert_eq!(
                entity_type_for(schema.id).is_some(),
                has_coordinates,
                "{}",
                schema.id
            );
            if !has_coordinates {
                continue;
            }
            with_coordinates += 1;
            let mut names = HashSet::new();
            for column in &schema.columns {
                let role = role_of(column.name, column.ty)
                    .unwrap_or_else(|| panic!("{}: no attribute for {}", schema.id, column.name));
                if let Role::Attribute { name, .. } = role {
                    assert!(names.insert(name), "{}: two columns give {name}", schema.id);
                }
            }
        }
        assert_eq!(with_coordinates, TYPES.len());
    }

    #[test]
    fn the_context_maps_every_term_to_a_fixed_iri() {
        let document = context_document();
        let definitions = document["@context"].as_object().unwrap();
        for term in all_terms() {
            assert!(
                definitions.contains_key(term),
                "{term} is not in the context"
            );
        }
        assert_eq!(definitions["name"], json!("https://schema.org/name"));
        assert_eq!(
            definitions["telephone"],
            json!("https://schema.org/telephone")
        );
        assert_eq!(
            definitions["EvacuationSpace"],
            json!("urn:renkei:opendata:EvacuationSpace")
        );
        assert_eq!(definitions["source"], json!(source_iri()));
        assert!(!definitions.contains_key("location"), "the core context's");
        // Processed as the broker processes it, the entity's terms expand to them.
        let ctx = ngsi_ld::context::ActiveContext::process(
            &document["@context"],
            &ngsi_ld::context::NoRemoteContexts,
        )
        .unwrap();
        assert_eq!(
            ctx.expand_iri("nameKana", true),
            "urn:renkei:opendata:nameKana"
        );
        assert_eq!(
            ctx.expand_iri("address", true),
            "https://schema.org/address"
        );
        assert_eq!(ctx.expand_iri("AED", true), type_iri("AED"));
        assert_eq!(
            ctx.expand_iri("description", true),
            "http://purl.org/dc/terms/description"
        );
    }

    #[test]
    fn id_parts_are_percent_encoded() {
        assert_eq!(encode_id_part("A-1_b.c~"), "A-1_b.c~");
        assert_eq!(encode_id_part("1 2:３"), "1%202%3A%EF%BC%93");
        assert_eq!(
            context_url("https://x.jp/"),
            format!("https://x.jp{CONTEXT_PATH}")
        );
    }
}
