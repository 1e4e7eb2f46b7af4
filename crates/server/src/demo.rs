//! The demo data that `renkei serve --demo` loads, so that a newcomer sees real data at
//! once: the local governments of 静岡県 (Shizuoka) as tenants, each with an entity
//! describing itself, and 焼津市's designated emergency evacuation sites (指定緊急避難場所)
//! as NGSI-LD entities in tenant 222127. Both files are real open data shipped in
//! `reference-data/` with their attribution; loading twice changes nothing.

use crate::admin::ops;
use crate::AppState;
use anyhow::{anyhow, bail, Context as _};
use broker::{BatchItem, Broker, UpsertMode};
use ngsi_ld::model::{Attribute, AttributeValue, Entity, RelationshipObject};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use store::Tenant;

use crate::localgov::MUNICIPALITIES_CSV;
const YAIZU_EVACUATION_SPACES: &[u8] =
    include_bytes!("../../../reference-data/yaizu/222127_evacuation_space.csv");

/// The demo prefecture: 静岡県, home of 焼津市.
pub const DEMO_PREFECTURE: &str = "220001";
pub const YAIZU: &str = "222127";

/// Terms of the demo data live in NGSI-LD's default vocabulary, so the core context
/// alone reads them.
fn term(name: &str) -> String {
    format!("{}{name}", ngsi_ld::model::iri::DEFAULT_CONTEXT_VOCAB)
}

fn property(value: Value) -> Attribute {
    Attribute::new(AttributeValue::Property(value))
}

fn point(lat: f64, lng: f64) -> Attribute {
    Attribute::new(AttributeValue::GeoProperty(
        json!({"type": "Point", "coordinates": [lng, lat]}),
    ))
}

/// What the demo loaded.
#[derive(Debug, Default, PartialEq)]
pub struct DemoSummary {
    pub tenants: usize,
    pub shelters: usize,
    /// Procedures published for online applications.
    pub procedures: usize,
}

/// Loads the demo: registers 静岡県 and its municipalities as tenants (their
/// `LocalGovernment` and `EvacuationSpace` entities readable by anyone, as a shelter
/// finder needs), then stores the entities.
pub async fn load(state: &AppState) -> anyhow::Result<DemoSummary> {
    let broker = &state.broker;
    let governments = local_governments()?;
    let prefecture_tenant = Tenant::named(DEMO_PREFECTURE);
    let mut summary = DemoSummary::default();
    for government in &governments {
        // Each government's own tenant holds its self-description; the prefecture's
        // tenant holds all of them.
        let code = government.id.rsplit(':').next().unwrap_or_default();
        register_tenant(state, code).await?;
        let tenant = Tenant::named(code);
        upsert(broker, &tenant, vec![government.clone()]).await?;
        summary.tenants += 1;
    }
    upsert(broker, &prefecture_tenant, governments).await?;
    let shelters = yaizu_evacuation_spaces()?;
    summary.shelters = shelters.len();
    upsert(broker, &Tenant::named(YAIZU), shelters).await?;
    summary.procedures = demo_procedures(state).await?;
    Ok(summary)
}

/// Publishes the shipped 住民票 procedure in 焼津市 (once; a later load keeps any
/// version staff made since). Returns how many procedures the demo tenant offers.
async fn demo_procedures(state: &AppState) -> anyhow::Result<usize> {
    let applications = &state.applications;
    if applications
        .procedure(YAIZU, "juminhyo", None)
        .await
        .is_err()
    {
        let template: procedures::procedure::Procedure =
            serde_json::from_str(procedures::procedure::JUMINHYO_TEMPLATE)?;
        applications
            .create_procedure(YAIZU, "juminhyo", template)
            .await
            .map_err(|e| anyhow!("the demo procedure was refused: {e}"))?;
    }
    Ok(applications
        .procedures(YAIZU, true)
        .await
        .map_err(|e| anyhow!("{e}"))?
        .len())
}

/// Registers a demo tenant once; loading the demo again leaves it as it is.
async fn register_tenant(state: &AppState, code: &str) -> anyhow::Result<()> {
    if state.identity.tenant(code).await?.is_some() {
        return Ok(());
    }
    let operator = identity::Principal::Operator;
    ops::create_tenant(&state.identity, &operator, code).await?;
    let change = ops::TenantChange {
        public_types: Some(vec![term("LocalGovernment"), term("EvacuationSpace")]),
        ..Default::default()
    };
    ops::update_tenant(&state.identity, &operator, code, change).await?;
    Ok(())
}

async fn upsert(broker: &Broker, tenant: &Tenant, entities: Vec<Entity>) -> anyhow::Result<()> {
    let items = entities.into_iter().map(BatchItem::Valid).collect();
    let report = broker
        .batch_upsert(tenant, items, UpsertMode::ReplaceChanged)
        .await
        .map_err(|e| anyhow!("loading demo data into tenant {}: {e}", tenant.name()))?;
    if let Some((id, error)) = report.errors.first() {
        bail!("demo entity {id} was refused: {error}");
    }
    Ok(())
}

fn csv_rows(text: &str) -> anyhow::Result<(Vec<String>, Vec<csv::StringRecord>)> {
    let mut reader = csv::ReaderBuilder::new()
        .flexible(false)
        .from_reader(text.as_bytes());
    let headers = reader.headers()?.iter().map(str::to_owned).collect();
    let rows = reader.records().collect::<Result<Vec<_>, _>>()?;
    Ok((headers, rows))
}

fn column(headers: &[String], name: &str) -> anyhow::Result<usize> {
    headers
        .iter()
        .position(|h| h == name)
        .ok_or_else(|| anyhow!("column {name} is missing"))
}

/// The prefecture and its municipalities as `LocalGovernment` entities.
fn local_governments() -> anyhow::Result<Vec<Entity>> {
    let registry = crate::localgov::registry();
    let prefecture = jp::localgov::LocalGovCode::parse(DEMO_PREFECTURE)?;
    let (headers, rows) = csv_rows(MUNICIPALITIES_CSV)?;
    let [code_col, pref_col, name_col, kana_col, lat_col, lng_col] = [
        "lgcode",
        "prefecture_code",
        "name",
        "name_kana",
        "lat",
        "lng",
    ]
    .map(|c| column(&headers, c));
    let (code_col, pref_col, name_col, kana_col, lat_col, lng_col) = (
        code_col?, pref_col?, name_col?, kana_col?, lat_col?, lng_col?,
    );
    let prefecture_name = registry
        .name(&prefecture)
        .ok_or_else(|| anyhow!("prefecture {DEMO_PREFECTURE} is not in the list"))?;
    let prefecture_id = format!("urn:ngsi-ld:LocalGovernment:{DEMO_PREFECTURE}");
    let mut prefecture_entity = Entity::new(prefecture_id.clone(), vec![term("LocalGovernment")]);
    prefecture_entity
        .attributes
        .insert(term("name"), vec![property(json!(prefecture_name))]);
    prefecture_entity.attributes.insert(
        term("localGovernmentCode"),
        vec![property(json!(DEMO_PREFECTURE))],
    );
    let mut entities = vec![prefecture_entity];
    for (index, row) in rows.iter().enumerate() {
        if &row[pref_col] != DEMO_PREFECTURE {
            continue;
        }
        let code = jp::localgov::LocalGovCode::parse(&row[code_col])
            .with_context(|| format!("municipalities.csv row {}: column lgcode", index + 2))?;
        let parse = |col: usize, name: &str| -> anyhow::Result<f64> {
            row[col]
                .parse()
                .with_context(|| format!("municipalities.csv row {}: column {name}", index + 2))
        };
        let mut entity = Entity::new(
            format!("urn:ngsi-ld:LocalGovernment:{}", code.as_str()),
            vec![term("LocalGovernment")],
        );
        let mut attrs = BTreeMap::new();
        attrs.insert(term("name"), vec![property(json!(row[name_col]))]);
        attrs.insert(term("nameKana"), vec![property(json!(row[kana_col]))]);
        attrs.insert(
            term("localGovernmentCode"),
            vec![property(json!(code.as_str()))],
        );
        attrs.insert(
            ngsi_ld::model::iri::LOCATION.to_owned(),
            vec![point(parse(lat_col, "lat")?, parse(lng_col, "lng")?)],
        );
        attrs.insert(
            term("prefecture"),
            vec![Attribute::new(AttributeValue::Relationship {
                object: RelationshipObject::One(prefecture_id.clone()),
                object_type: None,
            })],
        );
        entity.attributes = attrs;
        entities.push(entity);
    }
    Ok(entities)
}

/// 焼津市's 指定緊急避難場所一覧 (v1 layout of the recommended dataset) as
/// `EvacuationSpace` entities. Hazard flags are ○ in the file; each becomes a member of
/// `hazardTypes`.
fn yaizu_evacuation_spaces() -> anyhow::Result<Vec<Entity>> {
    let decoded = jp::encoding::decode(YAIZU_EVACUATION_SPACES)
        .context("decoding the Yaizu evacuation space file")?;
    let (headers, rows) = csv_rows(&decoded.text)?;
    let col = |name: &str| column(&headers, name);
    let (no, name, kana, address, lat, lng, phone) = (
        col("NO")?,
        col("名称")?,
        col("名称_カナ")?,
        col("住所")?,
        col("緯度")?,
        col("経度")?,
        col("電話番号")?,
    );
    let hazards = [
        ("災害種別_洪水", "flood"),
        ("災害種別_崖崩れ、土石流及び地滑り", "landslide"),
        ("災害種別_高潮", "stormSurge"),
        ("災害種別_地震", "earthquake"),
        ("災害種別_津波", "tsunami"),
        ("災害種別_大規模な火事", "largeFire"),
        ("災害種別_内水氾濫", "inlandFlooding"),
        ("災害種別_火山現象", "volcano"),
    ];
    let hazard_columns = hazards
        .iter()
        .map(|(header, key)| Ok((col(header)?, *key)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let mut entities = Vec::with_capacity(rows.len());
    for (index, row) in rows.iter().enumerate() {
        let line = index + 2;
        let number = jp::width::normalize_digits(&row[no]);
        let coordinate = |c: usize, what: &str| -> anyhow::Result<f64> {
            jp::width::normalize_digits(&row[c])
                .parse()
                .with_context(|| {
                    format!("222127_evacuation_space.csv row {line}: column {what} is not a number")
                })
        };
        let mut entity = Entity::new(
            format!("urn:ngsi-ld:EvacuationSpace:{YAIZU}-{number}"),
            vec![term("EvacuationSpace")],
        );
        let attrs = &mut entity.attributes;
        attrs.insert(term("name"), vec![property(json!(row[name].trim()))]);
        attrs.insert(term("nameKana"), vec![property(json!(row[kana].trim()))]);
        attrs.insert(term("address"), vec![property(json!(row[address].trim()))]);
        attrs.insert(
            ngsi_ld::model::iri::LOCATION.to_owned(),
            vec![point(coordinate(lat, "緯度")?, coordinate(lng, "経度")?)],
        );
        if !row[phone].trim().is_empty() {
            let normalised = jp::phone::normalize(&row[phone])
                .map(|p| p.to_string())
                .unwrap_or_else(|_| row[phone].trim().to_owned());
            attrs.insert(term("telephone"), vec![property(json!(normalised))]);
        }
        let hazard_types: Vec<Value> = hazard_columns
            .iter()
            .filter(|(c, _)| !row[*c].trim().is_empty())
            .map(|(_, key)| json!(key))
            .collect();
        attrs.insert(
            term("hazardTypes"),
            vec![property(Value::Array(hazard_types))],
        );
        attrs.insert(term("localGovernmentCode"), vec![property(json!(YAIZU))]);
        attrs.insert(
            term("source"),
            vec![property(json!(
                "焼津市オープンデータ 指定緊急避難場所一覧 (PDL1.0, 焼津市)"
            ))],
        );
        entities.push(entity);
    }
    Ok(entities)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_files_give_every_yaizu_site_and_all_shizuoka_governments() {
        let shelters = yaizu_evacuation_spaces().unwrap();
        assert_eq!(shelters.len(), 31, "the file has 31 data rows");
        let first = &shelters[0];
        assert_eq!(first.id, "urn:ngsi-ld:EvacuationSpace:222127-1");
        assert_eq!(
            first.attribute(&term("name"), None).unwrap().value,
            AttributeValue::Property(json!("中港タワー"))
        );
        let governments = local_governments().unwrap();
        // 静岡県 itself, its 35 municipalities and the wards of 静岡市 and 浜松市.
        assert!(governments.len() > 36, "{}", governments.len());
        assert!(governments.iter().any(|g| g.id.ends_with(":222127")));
    }
}
