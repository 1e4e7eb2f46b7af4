//! Resource writes with their files: `resource_create`, `resource_update` and
//! `resource_patch`, JSON or multipart with an `upload`. An uploaded file is
//! kept under the files directory and served back at the resource's URL; a
//! CSV, TSV, xlsx or xls file is then loaded into the resource's datastore
//! table (what CKAN needs xloader for) through `catalog::ingest`, and the
//! validation report is kept with the resource. A file the ingest rejects
//! stays downloadable, and the resource says why it was not loaded.

use axum::body::Body;
use axum::extract::{Path as UrlPath, Request, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use catalog::ingest::{self, Format, IngestError, Plan, Rows, Sink};
use serde_json::{json, Value};
use store::datastore::{Table, WriteMethod};
use tokio::sync::mpsc;

use super::actions::{internal, resource_of};
use super::params::{resource_dir, Upload};
use super::{ActionResult, CallerAccess, CkanError, Params};
use crate::auth::middleware::caller_of;
use crate::AppState;

pub async fn write_resource(
    state: &AppState,
    action: &str,
    mut params: Params,
    access: &CallerAccess,
) -> ActionResult {
    let upload = params.upload.take();
    let resource_id = match (action, params.str("id")) {
        ("resource_create", None) => uuid::Uuid::new_v4().to_string(),
        (_, Some(id)) => id.to_owned(),
        (_, None) => return Err(CkanError::field("id", "Missing value")),
    };
    if action == "resource_create" {
        params.map.insert("id".into(), json!(resource_id));
    } else {
        // Refuse before touching any file if the caller may not change it.
        let package = state.catalog.resource_package(&resource_id, access).await?;
        if !catalog::service::Access::can_write(access, &package.owner_org) {
            return Err(CkanError::NotAuthorized(format!(
                "User not authorized to edit resource {resource_id}"
            )));
        }
    }
    let stored = match &upload {
        Some(upload) => Some(keep_file(state, &resource_id, upload, &mut params)?),
        None => None,
    };
    let written = match action {
        "resource_create" => state.catalog.resource_create(&params.map, access).await,
        _ => {
            let keep_url = stored.is_none();
            state
                .catalog
                .resource_update(&params.map, action == "resource_patch", access, |r| {
                    if keep_url && r.url_type.as_deref() == Some("upload") && r.url.is_empty() {
                        r.url_type = None;
                    }
                })
                .await
        }
    };
    let (package, id) = match written {
        Ok(done) => done,
        Err(e) => {
            if stored.is_some() && action == "resource_create" {
                let _ =
                    std::fs::remove_dir_all(resource_dir(&state.config.files_dir, &resource_id));
            }
            return Err(e.into());
        }
    };
    let Some(path) = stored else {
        return resource_of(&package, &id);
    };
    let resource = package.resource(&id).expect("just written");
    let loaded = load_datastore(state, &id, &path, &resource.format).await?;
    let (package, _) = state
        .catalog
        .resource_update(
            &[("id".to_owned(), json!(id))].into_iter().collect(),
            true,
            access,
            |r| {
                r.datastore_active = loaded.active;
                r.validation = Some(loaded.report.clone());
            },
        )
        .await?;
    let package = super::publish::publish_resource(state, package, &id, access).await;
    resource_of(&package, &id)
}

/// [`write_resource`] for a file already on this machine (`renkei catalog import`):
/// the file is spooled as a multipart upload would be, then written, loaded into the
/// datastore and published exactly as an HTTP upload is.
pub(crate) async fn write_resource_from_file(
    state: &AppState,
    action: &str,
    map: serde_json::Map<String, Value>,
    file: &std::path::Path,
    access: &CallerAccess,
) -> ActionResult {
    let spool = state.config.files_dir.join("incoming");
    std::fs::create_dir_all(&spool).map_err(internal)?;
    let mut spooled = tempfile::NamedTempFile::new_in(&spool).map_err(internal)?;
    let mut source = std::fs::File::open(file).map_err(internal)?;
    let size = std::io::copy(&mut source, spooled.as_file_mut()).map_err(internal)?;
    let file_name = file
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let params = Params {
        map,
        upload: Some(Upload {
            file_name: super::params::sanitize(&file_name),
            file: spooled,
            size,
        }),
    };
    write_resource(state, action, params, access).await
}

/// Moves the upload to the resource's directory and points the resource at it.
fn keep_file(
    state: &AppState,
    resource_id: &str,
    upload: &Upload,
    params: &mut Params,
) -> Result<std::path::PathBuf, CkanError> {
    let dir = resource_dir(&state.config.files_dir, resource_id);
    if dir.exists() {
        std::fs::remove_dir_all(&dir).map_err(internal)?;
    }
    std::fs::create_dir_all(&dir).map_err(internal)?;
    let path = dir.join(&upload.file_name);
    std::fs::copy(upload.file.path(), &path).map_err(internal)?;
    let url = format!(
        "{}/dataset/resource/{resource_id}/download/{}",
        state.config.public_url.trim_end_matches('/'),
        url::form_urlencoded::byte_serialize(upload.file_name.as_bytes()).collect::<String>()
    );
    params.map.insert("url".into(), json!(url));
    params.map.insert("url_type".into(), json!("upload"));
    params.map.insert("size".into(), json!(upload.size));
    if params.str("name").is_none() {
        params.map.insert("name".into(), json!(upload.file_name));
    }
    Ok(path)
}

/// What loading a file into the datastore gave.
struct Loaded {
    active: bool,
    report: Value,
}

enum Message {
    Plan(Vec<store::datastore::Field>),
    Batch(Rows),
}

/// Forwards the ingest's output from its blocking thread to the async writer.
struct ChannelSink(mpsc::Sender<Message>);

impl Sink for ChannelSink {
    type Error = &'static str;
    fn plan(&mut self, plan: &Plan) -> Result<(), Self::Error> {
        self.0
            .blocking_send(Message::Plan(plan.fields.clone()))
            .map_err(|_| "the datastore writer stopped")
    }
    fn batch(&mut self, rows: &mut Rows) -> Result<(), Self::Error> {
        self.0
            .blocking_send(Message::Batch(rows.take()))
            .map_err(|_| "the datastore writer stopped")
    }
}

async fn load_datastore(
    state: &AppState,
    resource_id: &str,
    path: &std::path::Path,
    declared_format: &str,
) -> Result<Loaded, CkanError> {
    state
        .datastore
        .drop_table(resource_id)
        .await
        .map_err(internal)?;
    if Format::from_name(declared_format).is_none() {
        return Ok(Loaded {
            active: false,
            report: json!({"status": "not-tabular"}),
        });
    }
    let format = Format::detect(path, Some(declared_format)).map_err(internal)?;
    let options = ingest::Options {
        max_bytes: state.config.max_upload_bytes,
        ..Default::default()
    };
    let (sender, mut receiver) = mpsc::channel::<Message>(4);
    let owned_path = path.to_owned();
    let reading = tokio::task::spawn_blocking(move || {
        let mut sink = ChannelSink(sender);
        ingest::ingest(&owned_path, format, &options, &mut sink)
    });
    let mut columns: Vec<String> = Vec::new();
    let mut write_error = None;
    while let Some(message) = receiver.recv().await {
        let step = match message {
            Message::Plan(fields) => {
                columns = fields.iter().map(|f| f.id.clone()).collect();
                let table = Table {
                    resource_id: resource_id.to_owned(),
                    fields,
                    primary_key: Vec::new(),
                    indexes: Vec::new(),
                };
                state.datastore.create_table(&table).await
            }
            Message::Batch(mut rows) => {
                let rows = rows
                    .drain()
                    .map(|cells| columns.iter().cloned().zip(cells).collect())
                    .collect();
                state
                    .datastore
                    .write_rows(resource_id, WriteMethod::Insert, rows)
                    .await
                    .map(drop)
            }
        };
        if let Err(e) = step {
            write_error = Some(e);
            break;
        }
    }
    drop(receiver);
    let outcome = reading.await.map_err(internal)?;
    if let Some(e) = write_error {
        let _ = state.datastore.drop_table(resource_id).await;
        return Err(internal(e));
    }
    match outcome {
        Ok(report) => Ok(Loaded {
            active: true,
            report: json!({"status": "loaded", "report": report}),
        }),
        Err(IngestError::Rejected(rejected)) => {
            state
                .datastore
                .drop_table(resource_id)
                .await
                .map_err(internal)?;
            Ok(Loaded {
                active: false,
                report: json!({"status": "rejected", "rejected": rejected}),
            })
        }
        Err(e) => {
            let _ = state.datastore.drop_table(resource_id).await;
            Err(internal(e))
        }
    }
}

/// `GET /dataset/resource/{id}/download/{file}`: an uploaded file, to those who
/// may see its dataset.
pub async fn download(
    State(state): State<AppState>,
    UrlPath((resource_id, file_name)): UrlPath<(String, String)>,
    request: Request,
) -> Response {
    let caller = caller_of(request.extensions());
    let access = match CallerAccess::new(&state, caller.principal).await {
        Ok(access) => access,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    if state
        .catalog
        .resource_package(&resource_id, &access)
        .await
        .is_err()
    {
        return (StatusCode::NOT_FOUND, "Not found").into_response();
    }
    let path = resource_dir(&state.config.files_dir, &resource_id)
        .join(super::params::sanitize(&file_name));
    match tokio::fs::File::open(&path).await {
        Ok(file) => {
            let stream = tokio_util::io::ReaderStream::new(file);
            (
                [(header::CONTENT_TYPE, "application/octet-stream")],
                Body::from_stream(stream),
            )
                .into_response()
        }
        Err(_) => (StatusCode::NOT_FOUND, "Not found").into_response(),
    }
}
