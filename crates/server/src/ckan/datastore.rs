//! The datastore actions (`datastore_create`, `_upsert`, `_delete`, `_search`,
//! `_search_sql`, `_info`) and `/datastore/dump/{resource_id}`. A datastore
//! table belongs to a resource, so reading it needs the right to see the
//! resource's dataset and writing it the right to edit it; `datastore_search_sql`
//! checks that right for every table the query reads.

use axum::body::Body;
use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use catalog::datastore::{
    self as ds, check_sql, parse_filters, parse_records, parse_search, parse_write_method,
    search_result, table_definition, DatastoreError, DumpFormat, DumpWriter, SearchLimits,
};
use catalog::package::Package;
use catalog::service::Access;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::Duration;
use store::datastore::{RowQuery, SqlLimits, SqlRefusal, Table};

use super::actions::internal;
use super::{ActionResult, CallerAccess, CkanError, Params};
use crate::auth::middleware::caller_of;
use crate::AppState;

/// Rows `datastore_search_sql` returns at most, and how long it may run
/// (CKAN's `ckan.datastore.search.rows_max` and `ckan.datastore.sqlsearch…`).
const SQL_LIMITS: SqlLimits = SqlLimits {
    max_rows: 32_000,
    timeout: Duration::from_secs(5),
};

impl From<DatastoreError> for CkanError {
    fn from(error: DatastoreError) -> Self {
        CkanError::field(error.param(), error.to_string())
    }
}

pub async fn run(
    state: &AppState,
    action: &str,
    params: Params,
    access: &CallerAccess,
) -> ActionResult {
    let body = Value::Object(params.map.clone());
    match action {
        "datastore_search_sql" => return search_sql(state, &params, access).await,
        "datastore_create" | "datastore_upsert" | "datastore_delete" | "datastore_search"
        | "datastore_info" => {}
        other => {
            return Err(CkanError::BadRequest(format!(
                "Bad request - Action name not known: {other}"
            )))
        }
    }
    let resource_id = resource_id_of(&params)?;
    let package = state.catalog.resource_package(&resource_id, access).await?;
    let writing = matches!(
        action,
        "datastore_create" | "datastore_upsert" | "datastore_delete"
    );
    if writing && !access.can_write(&package.owner_org) {
        return Err(CkanError::NotAuthorized(format!(
            "User not authorized to change the datastore of resource {resource_id}"
        )));
    }
    let existing = state
        .datastore
        .table(&resource_id)
        .await
        .map_err(internal)?;
    let published_before = existing
        .as_ref()
        .is_some_and(|t| catalog::publish::publication_for(&t.fields).is_some());
    let answer = match action {
        "datastore_create" => {
            let table = table_definition(&resource_id, &body, existing.as_ref())?;
            let rows = match body.get("records") {
                Some(records) if !records.is_null() => {
                    parse_records(&table, records, store::datastore::WriteMethod::Insert)?
                }
                _ => Vec::new(),
            };
            state
                .datastore
                .create_table(&table)
                .await
                .map_err(store_error)?;
            if !rows.is_empty() {
                state
                    .datastore
                    .write_rows(&resource_id, store::datastore::WriteMethod::Insert, rows)
                    .await
                    .map_err(store_error)?;
            }
            if existing.is_none() {
                mark_active(state, &resource_id, access, true).await?;
            }
            Ok(json!({
                "resource_id": resource_id,
                "fields": table.fields.iter().map(|f| ds::render::field_json(&table, &f.id)).collect::<Vec<_>>(),
                "primary_key": table.primary_key,
                "indexes": table.indexes.iter().map(|columns| columns.join(",")).collect::<Vec<_>>(),
                "method": "insert",
            }))
        }
        _ => {
            let table = existing.ok_or_else(|| {
                CkanError::NotFound(format!(
                    "Resource \"{resource_id}\" was not found in the datastore"
                ))
            })?;
            match action {
                "datastore_upsert" => upsert(state, &table, &body).await,
                "datastore_delete" => delete(state, &table, &body, access).await,
                "datastore_info" => Ok(json!({
                    "meta": {"id": resource_id},
                    "fields": table.fields.iter().map(|f| ds::render::field_json(&table, &f.id)).collect::<Vec<_>>(),
                })),
                _ => {
                    let request = parse_search(&table, &body, SearchLimits::default())?;
                    let page = state
                        .datastore
                        .search_rows(&resource_id, &request.query)
                        .await
                        .map_err(store_error)?;
                    Ok(search_result(&table, &request, &page))
                }
            }
        }
    }?;
    if writing {
        republish(state, package, &resource_id, published_before, access).await?;
    }
    Ok(answer)
}

/// Keeps the broker in step after a datastore write: a table of a standard dataset
/// with coordinates is published again (entities added, changed, removed), and one
/// that was published and is no longer publishable has its entities withdrawn.
async fn republish(
    state: &AppState,
    package: catalog::package::Package,
    resource_id: &str,
    published_before: bool,
    access: &CallerAccess,
) -> Result<(), CkanError> {
    let publishable_now = state
        .datastore
        .table(resource_id)
        .await
        .map_err(internal)?
        .is_some_and(|t| catalog::publish::publication_for(&t.fields).is_some());
    if published_before || publishable_now {
        super::publish::publish_resource(state, package, resource_id, access).await;
    }
    Ok(())
}

fn resource_id_of(params: &Params) -> Result<String, CkanError> {
    params
        .str("resource_id")
        .or_else(|| params.str("id"))
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .ok_or_else(|| CkanError::field("resource_id", "Missing value"))
}

/// Storage refusals of datastore writes are the client's mistakes (a duplicate
/// key, a missing row); anything else is internal.
fn store_error(error: store::StoreError) -> CkanError {
    match error {
        store::StoreError::Conflict(what) | store::StoreError::AlreadyExists(what) => {
            CkanError::field("records", what)
        }
        store::StoreError::NotFound(what) => CkanError::NotFound(what),
        other => internal(other),
    }
}

async fn upsert(state: &AppState, table: &Table, body: &Value) -> ActionResult {
    let method = parse_write_method(body)?;
    let records = body
        .get("records")
        .ok_or(DatastoreError::Missing { param: "records" })?;
    let rows = parse_records(table, records, method)?;
    state
        .datastore
        .write_rows(&table.resource_id, method, rows)
        .await
        .map_err(store_error)?;
    Ok(
        json!({"resource_id": table.resource_id, "method": body.get("method").cloned().unwrap_or(json!("upsert"))}),
    )
}

async fn delete(
    state: &AppState,
    table: &Table,
    body: &Value,
    access: &CallerAccess,
) -> ActionResult {
    match body.get("filters").filter(|f| !f.is_null()) {
        Some(filters) => {
            let filters = parse_filters(table, filters, "filters")?;
            state
                .datastore
                .delete_rows(&table.resource_id, &filters)
                .await
                .map_err(store_error)?;
        }
        None => {
            state
                .datastore
                .drop_table(&table.resource_id)
                .await
                .map_err(internal)?;
            mark_active(state, &table.resource_id, access, false).await?;
        }
    }
    Ok(json!({"resource_id": table.resource_id}))
}

async fn mark_active(
    state: &AppState,
    resource_id: &str,
    access: &CallerAccess,
    active: bool,
) -> Result<(), CkanError> {
    state
        .catalog
        .resource_update(
            &[("id".to_owned(), json!(resource_id))]
                .into_iter()
                .collect(),
            true,
            access,
            |r| r.datastore_active = active,
        )
        .await?;
    Ok(())
}

async fn search_sql(state: &AppState, params: &Params, access: &CallerAccess) -> ActionResult {
    let sql = params.required("sql")?;
    let tables: std::collections::HashSet<String> = state
        .datastore
        .table_ids()
        .await
        .map_err(internal)?
        .into_iter()
        .collect();
    let checked = check_sql(sql, |name| tables.contains(name))
        .map_err(|e| CkanError::field("sql", e.to_string()))?;
    for table in &checked.tables {
        // A table the caller may not see is reported as missing, like any other.
        state
            .catalog
            .resource_package(table, access)
            .await
            .map_err(|_| {
                CkanError::field("sql", format!("\"{table}\" is not a datastore table"))
            })?;
    }
    let answer = state
        .datastore
        .run_sql(&checked.sql, SQL_LIMITS)
        .await
        .map_err(internal)?;
    let answer = match answer {
        Ok(answer) => answer,
        Err(SqlRefusal::TimedOut(limit)) => {
            return Err(CkanError::field(
                "query",
                format!(
                    "Query took longer than {} ms and was cancelled",
                    limit.as_millis()
                ),
            ))
        }
        Err(SqlRefusal::Invalid(message)) => return Err(CkanError::field("sql", message)),
    };
    let records: Vec<Value> = answer
        .rows
        .iter()
        .map(|row| {
            Value::Object(
                answer
                    .columns
                    .iter()
                    .cloned()
                    .zip(row.iter().map(ds::cell_to_json))
                    .collect(),
            )
        })
        .collect();
    let mut result = json!({
        "sql": checked.sql,
        "fields": answer.columns.iter().map(|c| json!({"id": c})).collect::<Vec<_>>(),
        "records": records,
    });
    if answer.truncated {
        result["records_truncated"] = json!(true);
    }
    Ok(result)
}

/// Drops the datastore tables of a purged dataset's resources.
pub async fn drop_tables_of(state: &AppState, package: &Package) -> Result<(), CkanError> {
    for resource in &package.resources {
        state
            .datastore
            .drop_table(&resource.id)
            .await
            .map_err(internal)?;
    }
    Ok(())
}

/// Rows read per page while dumping.
const DUMP_PAGE: usize = 10_000;

/// `GET /datastore/dump/{resource_id}?format=csv|tsv|json&bom=true`.
pub async fn dump(
    State(state): State<AppState>,
    UrlPath(resource_id): UrlPath<String>,
    Query(query): Query<HashMap<String, String>>,
    request: Request,
) -> Response {
    let caller = caller_of(request.extensions());
    let refused = |status: StatusCode, message: &str| (status, message.to_owned()).into_response();
    let Ok(access) = CallerAccess::new(&state, caller.principal).await else {
        return refused(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
    };
    if state
        .catalog
        .resource_package(&resource_id, &access)
        .await
        .is_err()
    {
        return refused(StatusCode::NOT_FOUND, "Resource not found");
    }
    let table = match state.datastore.table(&resource_id).await {
        Ok(Some(table)) => table,
        Ok(None) => return refused(StatusCode::NOT_FOUND, "Resource has no datastore table"),
        Err(e) => {
            tracing::error!(error = %e, "datastore dump failed");
            return refused(StatusCode::INTERNAL_SERVER_ERROR, "Internal Server Error");
        }
    };
    let bom = query.get("bom").is_some_and(|b| b == "true" || b == "True");
    let (format, content_type, extension) = match query.get("format").map(String::as_str) {
        None | Some("csv") => (DumpFormat::Csv { bom }, "text/csv; charset=utf-8", "csv"),
        Some("tsv") => (
            DumpFormat::Tsv,
            "text/tab-separated-values; charset=utf-8",
            "tsv",
        ),
        Some("json") => (DumpFormat::Json, "application/json", "json"),
        Some(other) => {
            return refused(
                StatusCode::BAD_REQUEST,
                &format!("format {other:?} is not csv, tsv or json"),
            )
        }
    };
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tokio::spawn(async move {
        if let Err(e) = stream_dump(&state, &table, format, &sender).await {
            tracing::error!(error = %e, "datastore dump stopped");
            let _ = sender.send(Err(std::io::Error::other("dump failed"))).await;
        }
    });
    let stream = tokio_stream::wrappers::ReceiverStream::new(receiver);
    (
        [
            (header::CONTENT_TYPE, content_type.to_owned()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{resource_id}.{extension}\""),
            ),
        ],
        Body::from_stream(stream),
    )
        .into_response()
}

async fn stream_dump(
    state: &AppState,
    table: &Table,
    format: DumpFormat,
    sender: &tokio::sync::mpsc::Sender<Result<Vec<u8>, std::io::Error>>,
) -> anyhow::Result<()> {
    let mut writer: Option<DumpWriter<Vec<u8>>> = None;
    let mut after_id = None;
    loop {
        let query = RowQuery {
            limit: DUMP_PAGE,
            after_id,
            ..Default::default()
        };
        let page = state
            .datastore
            .search_rows(&table.resource_id, &query)
            .await?;
        let mut w = match writer.take() {
            Some(w) => w,
            None => DumpWriter::start(Vec::new(), format, table, &page.columns)?,
        };
        w.write_rows(&page.rows)?;
        after_id = page.last_id();
        let done = page.rows.len() < DUMP_PAGE || after_id.is_none();
        if done {
            let bytes = w.finish()?;
            sender.send(Ok(bytes)).await.ok();
            return Ok(());
        }
        // Hand over what was written and keep the writer's state for the next page.
        let chunk = std::mem::take(w.get_mut());
        sender.send(Ok(chunk)).await.ok();
        writer = Some(w);
    }
}
