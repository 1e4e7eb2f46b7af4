//! Resolution of JSON-LD `@context`s for the broker (ETSI GS CIM 009 clause 5.13):
//! the core context built in, user contexts given inline or by `Link` header, remote
//! ones fetched once and cached in the store, contexts preloaded from a directory for
//! closed networks (LGWAN), and contexts hosted by renkei itself (`/jsonldContexts`).
//!
//! Processing a context is CPU work done once per distinct context: the processed
//! [`ActiveContext`] is cached by the context's text, because every request that uses
//! the same Link header would otherwise pay for it again.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use ngsi_ld::context::{self as jsonld, ActiveContext, ContextError, ContextSource};
use ngsi_ld::{NgsiError, ProblemType};
use serde_json::Value;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use store::{ContextKind, SharedStore, StoredContext};

use crate::store_error;

/// Fetches a remote context document. The server implements it with an HTTP client
/// and a time-out; in a closed network there is none and only preloaded, cached and
/// hosted contexts resolve.
#[async_trait]
pub trait ContextFetcher: Send + Sync {
    async fn fetch(&self, url: &str) -> Result<Value, String>;
}

/// How many processed contexts are kept; beyond it the cache starts afresh, which is
/// cheap and keeps memory bounded against clients inventing a context per request.
const ACTIVE_CONTEXT_CACHE_LIMIT: usize = 1024;

/// How many remote contexts one context may pull in (directly or nested).
const MAX_REMOTE_CONTEXTS: usize = 32;

pub struct ContextService {
    store: SharedStore,
    fetcher: Option<Arc<dyn ContextFetcher>>,
    preloaded: HashMap<String, Arc<Value>>,
    documents: RwLock<HashMap<String, Arc<Value>>>,
    active: Mutex<HashMap<String, ActiveContext>>,
    /// How often and when last each context URL was used by a request (kept in memory:
    /// `numberOfHits` and `lastUsage` are statistics, not data worth a write per request).
    usage: Mutex<HashMap<String, Usage>>,
    hosted_base: String,
}

/// Use of one context URL since the broker started.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Usage {
    pub hits: u64,
    pub last: DateTime<Utc>,
}

/// The local id under which the built-in core context is listed.
pub const CORE_CONTEXT_ID: &str = "ngsi-ld-core-context";

struct DocumentsSnapshot<'a>(&'a HashMap<String, Arc<Value>>);

impl ContextSource for DocumentsSnapshot<'_> {
    fn get(&self, url: &str) -> Option<Arc<Value>> {
        self.0.get(url).cloned()
    }
}

impl ContextService {
    /// `hosted_base` is the public URL prefix of `/jsonldContexts`, e.g.
    /// `http://localhost:1026/ngsi-ld/v1/jsonldContexts/`.
    pub fn new(
        store: SharedStore,
        fetcher: Option<Arc<dyn ContextFetcher>>,
        preloaded: HashMap<String, Value>,
        hosted_base: impl Into<String>,
    ) -> Self {
        let preloaded: HashMap<String, Arc<Value>> = preloaded
            .into_iter()
            .map(|(url, doc)| (url, Arc::new(doc)))
            .collect();
        ContextService {
            store,
            fetcher,
            documents: RwLock::new(preloaded.clone()),
            preloaded,
            active: Mutex::new(HashMap::new()),
            usage: Mutex::new(HashMap::new()),
            hosted_base: hosted_base.into(),
        }
    }

    /// The active context for a request: the core context alone when the request gives
    /// none, else the given context (a URL, an object or an array) with the core
    /// context applied last.
    pub async fn resolve(&self, local: Option<&Value>) -> Result<ActiveContext, NgsiError> {
        let Some(local) = local else {
            return Ok(ActiveContext::core());
        };
        let local = self.absolutize(local);
        self.count_use(&local);
        self.process(&local).await
    }

    /// Like [`resolve`](Self::resolve), for the broker's own reading of what it
    /// stored (a subscription's contexts, when notifying): `numberOfHits` counts the
    /// requests that use a context, not how often the broker re-reads it.
    pub async fn resolve_uncounted(&self, local: &Value) -> Result<ActiveContext, NgsiError> {
        self.process(&self.absolutize(local)).await
    }

    /// Resolves context references relative to the broker's own URL (`/ngsi-ld/v1/
    /// jsonldContexts/{id}`, the Location of a hosted context), as JSON-LD resolves
    /// relative IRIs against the document's base.
    fn absolutize(&self, local: &Value) -> Value {
        let origin = origin_of(&self.hosted_base);
        let fix = |v: &Value| match v {
            Value::String(path) if path.starts_with('/') => {
                Value::String(format!("{origin}{path}"))
            }
            other => other.clone(),
        };
        match local {
            Value::Array(items) => Value::Array(items.iter().map(fix).collect()),
            other => fix(other),
        }
    }

    /// Processes a context without counting it as used by a request.
    async fn process(&self, local: &Value) -> Result<ActiveContext, NgsiError> {
        let key = local.to_string();
        if let Some(ctx) = self
            .active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(&key)
        {
            return Ok(ctx.clone());
        }
        for _ in 0..=MAX_REMOTE_CONTEXTS {
            let attempt = {
                let documents = self.documents.read().unwrap_or_else(|p| p.into_inner());
                ActiveContext::process(local, &DocumentsSnapshot(&documents))
            };
            match attempt {
                Ok(ctx) => {
                    let mut active = self.active.lock().unwrap_or_else(|p| p.into_inner());
                    if active.len() >= ACTIVE_CONTEXT_CACHE_LIMIT {
                        active.clear();
                    }
                    active.insert(key, ctx.clone());
                    return Ok(ctx);
                }
                Err(ContextError::Unavailable(url)) => self.load_document(&url).await?,
                Err(other) => return Err(other.into()),
            }
        }
        Err(NgsiError::bad_request_data(format!(
            "the @context refers to more than {MAX_REMOTE_CONTEXTS} remote contexts"
        )))
    }

    /// Finds a context document by URL: preloaded, then kept in the store (hosted or
    /// cached), then fetched and cached.
    async fn load_document(&self, url: &str) -> Result<(), NgsiError> {
        let document = match self.store.get_context(url).await.map_err(store_error)? {
            Some(stored) => stored.body,
            None => {
                let document = self.fetch(url).await?;
                let cached = StoredContext {
                    id: uuid::Uuid::new_v4().to_string(),
                    url: url.to_owned(),
                    kind: ContextKind::Cached,
                    body: document.clone(),
                    created_at: Utc::now(),
                };
                self.store.put_context(cached).await.map_err(store_error)?;
                document
            }
        };
        self.documents
            .write()
            .unwrap_or_else(|p| p.into_inner())
            .insert(url.to_owned(), Arc::new(document));
        Ok(())
    }

    async fn fetch(&self, url: &str) -> Result<Value, NgsiError> {
        check_fetchable(url)?;
        let unavailable = |why: String| {
            NgsiError::new(
                ProblemType::LdContextNotAvailable,
                format!("@context {url} could not be retrieved: {why}"),
            )
        };
        let Some(fetcher) = &self.fetcher else {
            return Err(unavailable(
                "remote contexts are disabled; preload it (RENKEI_CONTEXTS_DIR) or add it to /jsonldContexts".into(),
            ));
        };
        let document = fetcher.fetch(url).await.map_err(unavailable)?;
        if !document
            .get("@context")
            .is_some_and(|c| c.is_object() || c.is_array() || c.is_string())
        {
            return Err(unavailable("the document has no @context member".into()));
        }
        Ok(document)
    }

    /// Adds a context hosted by renkei (`POST /jsonldContexts`).
    pub async fn add_hosted(&self, body: Value) -> Result<StoredContext, NgsiError> {
        match body.get("@context") {
            Some(Value::Object(_)) | Some(Value::Array(_)) | Some(Value::String(_)) => {}
            _ => {
                return Err(NgsiError::invalid_request(
                    "a hosted context must be a JSON object with an @context member",
                ))
            }
        }
        self.host(uuid::Uuid::new_v4().to_string(), ContextKind::Hosted, body)
            .await
    }

    /// The URL of an ImplicitlyCreated context holding `local` (clause 5.13): what a
    /// subscription whose request gave its `@context` as an array or object, and no
    /// `jsonldContext`, compacts its notifications with, so that a receiver can
    /// dereference it. The id is derived from the context's text: the same context
    /// given again is the same stored context, not one more per request.
    pub async fn implicit_url(&self, local: &Value) -> Result<String, NgsiError> {
        use sha2::{Digest, Sha256};
        let local = self.absolutize(local);
        let digest = Sha256::digest(local.to_string().as_bytes());
        let id = format!(
            "implicit-{}",
            digest[..16]
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        let url = format!("{}{id}", self.hosted_base);
        if self
            .store
            .get_context(&id)
            .await
            .map_err(store_error)?
            .is_none()
        {
            let body = serde_json::json!({ "@context": local });
            self.host(id, ContextKind::Implicit, body).await?;
        }
        Ok(url)
    }

    /// Stores a context served by renkei under `id`, once it is known to process.
    async fn host(
        &self,
        id: String,
        kind: ContextKind,
        body: Value,
    ) -> Result<StoredContext, NgsiError> {
        let url = format!("{}{id}", self.hosted_base);
        // Refuse what cannot be processed now rather than at first use.
        let probe = Value::String(url.clone());
        let context = StoredContext {
            id,
            url: url.clone(),
            kind,
            body: body.clone(),
            created_at: Utc::now(),
        };
        {
            let mut documents = self.documents.write().unwrap_or_else(|p| p.into_inner());
            documents.insert(url.clone(), Arc::new(body));
        }
        if let Err(err) = self.process(&probe).await {
            self.documents
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&url);
            return Err(err);
        }
        self.store
            .put_context(context.clone())
            .await
            .map_err(store_error)?;
        Ok(context)
    }

    /// Every context known to the broker: the built-in core context (listed as
    /// Cached under its URL) and those in the store.
    pub async fn list(&self) -> Result<Vec<StoredContext>, NgsiError> {
        let mut contexts = vec![core_context_entry()];
        contexts.extend(self.store.list_contexts().await.map_err(store_error)?);
        let mut preloaded: Vec<StoredContext> = self
            .preloaded_entries()
            .filter(|p| !contexts.iter().any(|c| c.url == p.url))
            .collect();
        contexts.append(&mut preloaded);
        Ok(contexts)
    }

    /// Preloaded contexts (RENKEI_CONTEXTS_DIR) as Cached entries, with stable ids.
    fn preloaded_entries(&self) -> impl Iterator<Item = StoredContext> + '_ {
        let mut urls: Vec<&String> = self.preloaded.keys().collect();
        urls.sort();
        urls.into_iter()
            .enumerate()
            .map(|(index, url)| StoredContext {
                id: format!("preloaded-{}", index + 1),
                url: url.clone(),
                kind: ContextKind::Cached,
                body: self.preloaded[url].as_ref().clone(),
                created_at: started_at(),
            })
    }

    /// A context by local id or URL (the core context by any of its URLs).
    pub async fn get(&self, id: &str) -> Result<StoredContext, NgsiError> {
        if id == CORE_CONTEXT_ID || jsonld::is_core_context_url(id) {
            return Ok(core_context_entry());
        }
        if let Some(stored) = self.store.get_context(id).await.map_err(store_error)? {
            return Ok(stored);
        }
        self.preloaded_entries()
            .find(|p| p.id == id || p.url == id)
            .ok_or_else(|| NgsiError::not_found(format!("@context {id} not found")))
    }

    /// How often the context at `url` has been used since the broker started.
    pub fn usage(&self, url: &str) -> Option<Usage> {
        self.usage
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(url)
            .copied()
    }

    fn count_use(&self, local: &Value) {
        let urls: Vec<&str> = match local {
            Value::String(url) => vec![url],
            Value::Array(items) => items.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        if urls.is_empty() {
            return;
        }
        let now = Utc::now();
        let mut usage = self.usage.lock().unwrap_or_else(|p| p.into_inner());
        for url in urls {
            let entry = usage
                .entry(url.to_owned())
                .or_insert(Usage { hits: 0, last: now });
            entry.hits += 1;
            entry.last = now;
        }
    }

    /// Deletes a hosted or cached context. With `reload`, a cached context is fetched
    /// again instead of forgotten. The core context is built in: it cannot be deleted,
    /// and reloading it is a no-op.
    pub async fn delete(&self, id: &str, reload: bool) -> Result<(), NgsiError> {
        let context = match self.get(id).await {
            Err(err) if reload && err.problem == ProblemType::ResourceNotFound => {
                return Err(NgsiError::bad_request_data(format!(
                    "@context {id} cannot be reloaded: there is no cached context by that id"
                )))
            }
            other => other?,
        };
        if context.id == CORE_CONTEXT_ID {
            return if reload {
                Ok(())
            } else {
                Err(NgsiError::bad_request_data(
                    "the core @context cannot be deleted",
                ))
            };
        }
        if reload {
            if context.kind != ContextKind::Cached {
                return Err(NgsiError::bad_request_data(
                    "only cached contexts can be reloaded",
                ));
            }
            let document = self.fetch(&context.url).await?;
            let refreshed = StoredContext {
                body: document.clone(),
                created_at: Utc::now(),
                ..context.clone()
            };
            self.store
                .put_context(refreshed)
                .await
                .map_err(store_error)?;
            self.documents
                .write()
                .unwrap_or_else(|p| p.into_inner())
                .insert(context.url.clone(), Arc::new(document));
        } else {
            self.store
                .delete_context(&context.id)
                .await
                .map_err(store_error)?;
            let mut documents = self.documents.write().unwrap_or_else(|p| p.into_inner());
            documents.remove(&context.url);
            if let Some(preloaded) = self.preloaded.get(&context.url) {
                documents.insert(context.url.clone(), preloaded.clone());
            }
            // A context added again under the same URL starts counting afresh.
            self.usage
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .remove(&context.url);
        }
        // Processed contexts may include the old document.
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(())
    }
}

/// The built-in core context as `/jsonldContexts` lists it.
fn core_context_entry() -> StoredContext {
    StoredContext {
        id: CORE_CONTEXT_ID.to_owned(),
        url: jsonld::CORE_CONTEXT_URL.to_owned(),
        kind: ContextKind::Cached,
        body: jsonld::core_context_document().clone(),
        created_at: started_at(),
    }
}

/// When this process first listed a built-in or preloaded context: they have been
/// known since start-up.
fn started_at() -> DateTime<Utc> {
    static STARTED: std::sync::OnceLock<DateTime<Utc>> = std::sync::OnceLock::new();
    *STARTED.get_or_init(Utc::now)
}

/// Refuses a context URL that no fetch could ever retrieve, before any is tried: the
/// client's mistake is bad request data (400), where 503 LdContextNotAvailable would
/// have it retry, and no scheme but HTTP(S) may reach the network or the file system.
fn check_fetchable(url: &str) -> Result<(), NgsiError> {
    let scheme = url.split_once(':').map(|(scheme, _)| scheme).filter(|s| {
        s.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
            && s.chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
    });
    match scheme {
        Some(s) if s.eq_ignore_ascii_case("http") || s.eq_ignore_ascii_case("https") => Ok(()),
        Some(_) => Err(NgsiError::bad_request_data(format!(
            "@context {url}: only http and https @context URLs can be fetched"
        ))),
        None => Err(NgsiError::bad_request_data(format!(
            "@context {url}: a relative @context URL cannot be resolved"
        ))),
    }
}

/// `scheme://host:port` of a URL (the whole text when it has no path).
fn origin_of(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(0, |i| i + 3);
    match url[after_scheme..].find('/') {
        Some(slash) => &url[..after_scheme + slash],
        None => url,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Records every URL it is asked for and has none of them.
    #[derive(Default)]
    struct RecordingFetcher {
        asked: Mutex<Vec<String>>,
    }

    #[async_trait]
    impl ContextFetcher for RecordingFetcher {
        async fn fetch(&self, url: &str) -> Result<Value, String> {
            self.asked
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(url.to_owned());
            Err("unreachable in tests".into())
        }
    }

    #[test]
    fn only_absolute_http_urls_are_fetchable() {
        assert!(check_fetchable("https://example.org/ctx.jsonld").is_ok());
        assert!(check_fetchable("HTTP://example.org/ctx.jsonld").is_ok());
        for url in [
            "file:///etc/passwd",
            "gopher://127.0.0.1:6379/_INFO",
            "ftp://example.org/ctx",
        ] {
            let err = check_fetchable(url).unwrap_err();
            assert_eq!(err.problem, ProblemType::BadRequestData);
            assert!(err.detail.contains("only http and https"), "{}", err.detail);
        }
        for url in ["../../Cargo.toml", "ctx.jsonld", "1http://x"] {
            let err = check_fetchable(url).unwrap_err();
            assert!(err.detail.contains("relative"), "{}", err.detail);
        }
    }

    #[tokio::test]
    async fn unfetchable_urls_are_refused_without_a_fetch_and_http_ones_stay_503() {
        let dir = std::env::temp_dir().join(format!("renkei-contexts-{}", uuid::Uuid::new_v4()));
        let store = store_sqlite::SqliteStore::open(dir.join("store.db"))
            .await
            .unwrap();
        let fetcher = Arc::new(RecordingFetcher::default());
        let service = ContextService::new(
            Arc::new(store),
            Some(fetcher.clone()),
            HashMap::new(),
            "http://localhost:1026/ngsi-ld/v1/jsonldContexts/",
        );
        for local in [
            json!("file:///etc/passwd"),
            json!({"@import": "gopher://127.0.0.1:6379/_INFO"}),
            json!(["../../Cargo.toml"]),
        ] {
            let err = service.resolve(Some(&local)).await.unwrap_err();
            assert_eq!(err.problem, ProblemType::BadRequestData, "{local}");
        }
        assert!(fetcher
            .asked
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_empty());
        let unreachable = json!("https://example.invalid/ctx.jsonld");
        let err = service.resolve(Some(&unreachable)).await.unwrap_err();
        assert_eq!(err.problem, ProblemType::LdContextNotAvailable);
        assert!(service
            .resolve(Some(&json!(jsonld::CORE_CONTEXT_URL)))
            .await
            .is_ok());
        drop(service);
        let _ = std::fs::remove_dir_all(dir);
    }
}
