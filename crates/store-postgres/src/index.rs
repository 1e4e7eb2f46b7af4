//! What the backend indexes beside an entity's document so that `q` and geo-queries
//! narrow in SQL: the rows of `entity_values` (the comparable values of every
//! attribute, from [`ngsi_ld::query::index::index_entries`]) and the shape in the
//! `location` column. Every write path stores these with the document in one
//! statement; [`reindex_all`] computes them for rows written before the index existed.

use crate::{backend, PostgresError};
use ngsi_ld::model::{iri, AttributeValue, Entity};
use ngsi_ld::query::index::{index_rows, location_box, IndexedValue, INDEXED_TEXT_CHARS};
use store::doc::doc_to_entity;
use store::StoreError;
use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;

/// The index rows of one entity, as the parallel arrays `UNNEST` takes.
#[derive(Debug, Default, PartialEq)]
pub(crate) struct EntityIndex {
    pub(crate) attrs: Vec<String>,
    pub(crate) nums: Vec<Option<f64>>,
    pub(crate) txts: Vec<Option<String>>,
    /// The GeoJSON of `location` when the entity has exactly one instance of it: the
    /// column then keeps the real geometry, if PostGIS reads it.
    pub(crate) geojson: Option<String>,
    /// The box around every instance of `location` (min lon, min lat, max lon, max
    /// lat), the column's shape when there is no single readable geometry.
    pub(crate) bbox: [Option<f64>; 4],
}

impl EntityIndex {
    pub(crate) fn of(entity: &Entity) -> EntityIndex {
        let mut index = EntityIndex::default();
        for entry in index_rows(entity) {
            let (num, txt) = match entry.value {
                Some(IndexedValue::Number(n)) => (Some(n), None),
                Some(IndexedValue::Text(t)) => (None, Some(t.into_owned())),
                None => (None, None),
            };
            index.attrs.push(entry.attr.to_owned());
            index.nums.push(num);
            index.txts.push(txt);
        }
        let instances = entity.attributes.get(iri::LOCATION);
        if let Some([only]) = instances.map(Vec::as_slice) {
            if let AttributeValue::GeoProperty(value) = &only.value {
                index.geojson = Some(value.to_string());
            }
        }
        if let Some(b) = location_box(entity) {
            index.bbox = [b.min_lon, b.min_lat, b.max_lon, b.max_lat].map(Some);
        }
        index
    }
}

/// The SQL of the `location` column for the parameters `$g` (GeoJSON) and `$b..$b+3`
/// (the box), see migration 2.
pub(crate) fn location_sql(geojson: usize, bbox: usize) -> String {
    format!(
        "renkei_location(${geojson}, ${}, ${}, ${}, ${})",
        bbox,
        bbox + 1,
        bbox + 2,
        bbox + 3
    )
}

/// How many entities the back-fill reads and writes per round trip.
const REINDEX_BATCH: i64 = 500;

/// Computes the index rows and the `location` shape of every stored entity (migration
/// 2). Entities are read in `seq` order, a batch at a time, and each batch is written
/// back with two statements.
pub(crate) async fn reindex_all(client: &impl GenericClient) -> Result<(), StoreError> {
    let mut after: i64 = 0;
    loop {
        let batch = client
            .query(
                "SELECT seq, tenant, id, doc FROM entities WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &REINDEX_BATCH],
            )
            .await
            .map_err(backend)?;
        let Some(last) = batch.last() else {
            return Ok(());
        };
        after = last.try_get("seq").map_err(backend)?;
        let mut values = ValueRows::default();
        let mut shapes = ShapeRows::default();
        for row in &batch {
            let seq: i64 = row.try_get("seq").map_err(backend)?;
            let doc: serde_json::Value = row.try_get("doc").map_err(backend)?;
            let entity = match doc_to_entity(&doc) {
                Ok(entity) => entity,
                Err(e) => {
                    // Reading it fails at query time too; one unreadable row must not
                    // keep every node from starting.
                    let tenant: String = row.try_get("tenant").map_err(backend)?;
                    let id: String = row.try_get("id").map_err(backend)?;
                    let corrupt = PostgresError::CorruptEntity {
                        tenant,
                        id,
                        reason: e.to_string(),
                    };
                    tracing::warn!(error = %corrupt, "not indexing an unreadable entity");
                    continue;
                }
            };
            let index = EntityIndex::of(&entity);
            values.push(seq, &index);
            shapes.push(seq, index);
        }
        values.insert(client).await?;
        shapes.update(client).await?;
    }
}

/// Computes again the `entity_values` rows of every entity that has an indexed string
/// longer than the index keeps now (migration 4). Such rows are found by their length
/// in bytes, which is at least their length in characters whatever the encoding.
pub(crate) async fn reindex_long_text(client: &impl GenericClient) -> Result<(), StoreError> {
    let limit = INDEXED_TEXT_CHARS as i32;
    let rows = client
        .query(
            "SELECT seq, doc FROM entities WHERE seq IN (
                 SELECT seq FROM entity_values WHERE octet_length(txt) > $1)",
            &[&limit],
        )
        .await
        .map_err(backend)?;
    let mut values = ValueRows::default();
    for row in &rows {
        let seq: i64 = row.try_get("seq").map_err(backend)?;
        let doc: serde_json::Value = row.try_get("doc").map_err(backend)?;
        // An unreadable document fails at query time too; its old rows stay.
        if let Ok(entity) = doc_to_entity(&doc) {
            values.push(seq, &EntityIndex::of(&entity));
        }
    }
    let mut seqs = values.seqs.clone();
    seqs.dedup();
    client
        .execute("DELETE FROM entity_values WHERE seq = ANY($1)", &[&seqs])
        .await
        .map_err(backend)?;
    values.insert(client).await
}

/// `entity_values` rows of several entities, as arrays.
#[derive(Default)]
struct ValueRows {
    seqs: Vec<i64>,
    attrs: Vec<String>,
    nums: Vec<Option<f64>>,
    txts: Vec<Option<String>>,
}

impl ValueRows {
    fn push(&mut self, seq: i64, index: &EntityIndex) {
        self.seqs
            .extend(std::iter::repeat_n(seq, index.attrs.len()));
        self.attrs.extend(index.attrs.iter().cloned());
        self.nums.extend(index.nums.iter().copied());
        self.txts.extend(index.txts.iter().cloned());
    }

    async fn insert(&self, client: &impl GenericClient) -> Result<(), StoreError> {
        client
            .execute(
                "INSERT INTO entity_values (seq, attr, num, txt)
                 SELECT * FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::text[])",
                &[&self.seqs, &self.attrs, &self.nums, &self.txts],
            )
            .await
            .map_err(backend)?;
        Ok(())
    }
}

/// `location` shapes of several entities, as arrays.
#[derive(Default)]
struct ShapeRows {
    seqs: Vec<i64>,
    geojsons: Vec<Option<String>>,
    corners: [Vec<Option<f64>>; 4],
}

impl ShapeRows {
    fn push(&mut self, seq: i64, index: EntityIndex) {
        self.seqs.push(seq);
        self.geojsons.push(index.geojson);
        for (column, corner) in self.corners.iter_mut().zip(index.bbox) {
            column.push(corner);
        }
    }

    async fn update(&self, client: &impl GenericClient) -> Result<(), StoreError> {
        let [min_lon, min_lat, max_lon, max_lat] = &self.corners;
        let params: [&(dyn ToSql + Sync); 6] = [
            &self.seqs,
            &self.geojsons,
            min_lon,
            min_lat,
            max_lon,
            max_lat,
        ];
        client
            .execute(
                "UPDATE entities AS e
                 SET location = renkei_location(u.geojson, u.min_lon, u.min_lat, u.max_lon, u.max_lat)
                 FROM unnest($1::bigint[], $2::text[], $3::float8[], $4::float8[],
                             $5::float8[], $6::float8[])
                     AS u (seq, geojson, min_lon, min_lat, max_lon, max_lat)
                 WHERE e.seq = u.seq",
                &params,
            )
            .await
            .map_err(backend)?;
        Ok(())
    }
}
