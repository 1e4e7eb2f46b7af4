//! Reading an action's parameters as CKAN accepts them: the query string of a
//! GET, or a POST body in JSON, as a form, or as multipart with a file (a
//! resource upload). Every value ends up in one JSON object; form and query
//! values are strings, as CKAN's own validators expect, and the typed getters
//! here convert them.

use axum::extract::{FromRequest, Multipart, Request};
use axum::http::{header, Method};
use serde_json::{Map, Value};
use std::path::PathBuf;

use super::CkanError;

/// A file sent in a multipart request, spooled to a temporary file so that a
/// large upload never sits in memory.
#[derive(Debug)]
pub struct Upload {
    pub file_name: String,
    pub file: tempfile::NamedTempFile,
    pub size: u64,
}

/// The parameters of one action call.
#[derive(Debug, Default)]
pub struct Params {
    pub map: Map<String, Value>,
    pub upload: Option<Upload>,
}

impl Params {
    /// Reads the parameters; `limit` caps a JSON or form body (uploads are
    /// capped by `upload_limit` as they stream).
    pub async fn read(
        request: Request,
        limit: usize,
        upload_limit: u64,
        spool_dir: &std::path::Path,
    ) -> Result<Params, CkanError> {
        if request.method() == Method::GET || request.method() == Method::HEAD {
            let query = request.uri().query().unwrap_or("");
            return Ok(Params {
                map: form_map(query.as_bytes()),
                upload: None,
            });
        }
        let content_type = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_ascii_lowercase();
        if content_type.starts_with("multipart/form-data") {
            let multipart = Multipart::from_request(request, &())
                .await
                .map_err(|e| CkanError::BadRequest(format!("Bad request - {e}")))?;
            return read_multipart(multipart, upload_limit, spool_dir).await;
        }
        let bytes = axum::body::to_bytes(request.into_body(), limit)
            .await
            .map_err(|_| {
                CkanError::BadRequest(format!(
                    "Bad request - the body is larger than {limit} bytes"
                ))
            })?;
        if content_type.starts_with("application/x-www-form-urlencoded") {
            return Ok(Params {
                map: form_map(&bytes),
                upload: None,
            });
        }
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Ok(Params::default());
        }
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => Ok(Params { map, upload: None }),
            Ok(_) => Err(CkanError::BadRequest(
                "Bad request - JSON Error: the body must be a JSON object".into(),
            )),
            Err(e) => Err(CkanError::BadRequest(format!(
                "Bad request - JSON Error: {e}"
            ))),
        }
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        self.map.get(key).and_then(Value::as_str)
    }

    /// A required string (a validation error naming the field when missing).
    pub fn required(&self, key: &str) -> Result<&str, CkanError> {
        self.str(key)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| CkanError::field(key, "Missing value"))
    }

    /// A whole number sent as a number or a string.
    pub fn usize(&self, key: &str) -> Result<Option<usize>, CkanError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .map(|n| Some(n as usize))
                .ok_or_else(|| CkanError::field(key, "Must be a natural number")),
            Some(Value::String(s)) if s.is_empty() => Ok(None),
            Some(Value::String(s)) => s
                .trim()
                .parse()
                .map(Some)
                .map_err(|_| CkanError::field(key, "Must be a natural number")),
            Some(_) => Err(CkanError::field(key, "Must be a natural number")),
        }
    }

    pub fn bool(&self, key: &str) -> Result<Option<bool>, CkanError> {
        match self.map.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => catalog::package::boolean(v)
                .map(Some)
                .ok_or_else(|| CkanError::field(key, "Must be true or false")),
        }
    }

    /// A list sent as a JSON list, as a JSON-encoded list in a string (what
    /// CKAN's own front end sends for `facet.field`), or as one bare string.
    pub fn list(&self, key: &str) -> Result<Vec<String>, CkanError> {
        let value = match self.map.get(key) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::String(s)) if s.trim_start().starts_with('[') => {
                serde_json::from_str::<Value>(s)
                    .map_err(|_| CkanError::field(key, "Must be a JSON list of strings"))?
            }
            Some(Value::String(s)) => return Ok(vec![s.clone()]),
            Some(v) => v.clone(),
        };
        match value {
            Value::Array(items) => items
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(CkanError::field(key, "Must be a list of strings")),
                })
                .collect(),
            _ => Err(CkanError::field(key, "Must be a list of strings")),
        }
    }
}

/// `a=1&b=2&b=3` → `{"a": "1", "b": ["2", "3"]}`.
fn form_map(bytes: &[u8]) -> Map<String, Value> {
    let mut map = Map::new();
    for (key, value) in url::form_urlencoded::parse(bytes) {
        let value = Value::String(value.into_owned());
        match map.get_mut(key.as_ref()) {
            Some(Value::Array(list)) => list.push(value),
            Some(existing) => {
                let first = existing.take();
                *existing = Value::Array(vec![first, value]);
            }
            None => {
                map.insert(key.into_owned(), value);
            }
        }
    }
    map
}

async fn read_multipart(
    mut multipart: Multipart,
    upload_limit: u64,
    spool_dir: &std::path::Path,
) -> Result<Params, CkanError> {
    use std::io::Write as _;
    let bad = |e: axum::extract::multipart::MultipartError| {
        CkanError::BadRequest(format!("Bad request - multipart: {e}"))
    };
    let mut params = Params::default();
    while let Some(mut field) = multipart.next_field().await.map_err(bad)? {
        let name = field.name().unwrap_or_default().to_owned();
        if let Some(file_name) = field.file_name().map(str::to_owned) {
            std::fs::create_dir_all(spool_dir).map_err(|e| CkanError::Internal(e.to_string()))?;
            let mut file = tempfile::NamedTempFile::new_in(spool_dir)
                .map_err(|e| CkanError::Internal(e.to_string()))?;
            let mut size = 0u64;
            while let Some(chunk) = field.chunk().await.map_err(bad)? {
                size += chunk.len() as u64;
                if size > upload_limit {
                    return Err(CkanError::field(
                        "upload",
                        format!(
                            "ファイルが大きすぎます (上限 {upload_limit} バイト) / \
                             the file is larger than the limit of {upload_limit} bytes"
                        ),
                    ));
                }
                file.write_all(&chunk)
                    .map_err(|e| CkanError::Internal(e.to_string()))?;
            }
            params.upload = Some(Upload {
                file_name: sanitize(&file_name),
                file,
                size,
            });
        } else {
            let text = field.text().await.map_err(bad)?;
            params.map.insert(name, Value::String(text));
        }
    }
    Ok(params)
}

/// The last path segment of an uploaded file's name, without characters that
/// mean something to a file system or a URL.
pub fn sanitize(file_name: &str) -> String {
    let base = file_name.rsplit(['/', '\\']).next().unwrap_or(file_name);
    let cleaned: String = base
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '?' | '#' | '%' | '"' | '<' | '>'))
        .collect();
    let cleaned = cleaned.trim_matches(['.', ' ']).to_owned();
    if cleaned.is_empty() {
        "upload".into()
    } else {
        cleaned
    }
}

/// The directory where a resource's uploaded file lives.
pub fn resource_dir(files_dir: &std::path::Path, resource_id: &str) -> PathBuf {
    files_dir.join("resources").join(resource_id)
}
