//! Resolution of JSON-LD `@context`s for the broker (ETSI GS CIM 009 clause 5.13):
//! the core context built in, user contexts given inline or by `Link` header, remote
//! ones fetched once and cached in the store, contexts preloaded from a directory for
//! closed networks (LGWAN), and contexts hosted by renkei itself (`/jsonldContexts`).
//!
//! Processing a context is CPU work done once per distinct context: the processed
//! [`ActiveContext`] is cached by the context's text, because every request that uses
//! the same Link header would otherwise pay for it again.

use async_trait::async_trait;
use chrono::Utc;
use ngsi_ld::context::{ActiveContext, ContextError, ContextSource};
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
    hosted_base: String,
}

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
                return Err(NgsiError::bad_request_data(
                    "a hosted context must be a JSON object with an @context member",
                ))
            }
        }
        let id = uuid::Uuid::new_v4().to_string();
        let url = format!("{}{id}", self.hosted_base);
        // Refuse what cannot be processed now rather than at first use.
        let probe = Value::String(url.clone());
        let context = StoredContext {
            id,
            url: url.clone(),
            kind: ContextKind::Hosted,
            body: body.clone(),
            created_at: Utc::now(),
        };
        {
            let mut documents = self.documents.write().unwrap_or_else(|p| p.into_inner());
            documents.insert(url.clone(), Arc::new(body));
        }
        if let Err(err) = self.resolve(Some(&probe)).await {
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

    /// Every context known to the broker: the core context (implicit in renkei, listed
    /// as Cached), preloaded ones, and those in the store.
    pub async fn list(&self) -> Result<Vec<StoredContext>, NgsiError> {
        self.store.list_contexts().await.map_err(store_error)
    }

    pub async fn get(&self, id: &str) -> Result<StoredContext, NgsiError> {
        self.store
            .get_context(id)
            .await
            .map_err(store_error)?
            .ok_or_else(|| NgsiError::not_found(format!("@context {id} not found")))
    }

    /// Deletes a hosted or cached context. With `reload`, a cached context is fetched
    /// again instead of forgotten.
    pub async fn delete(&self, id: &str, reload: bool) -> Result<(), NgsiError> {
        let context = self.get(id).await?;
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
        }
        // Processed contexts may include the old document.
        self.active
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clear();
        Ok(())
    }
}
