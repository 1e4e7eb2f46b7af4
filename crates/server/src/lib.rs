//! The renkei server: configuration, the choice of storage backend, and the HTTP faces
//! wired onto one router. `main.rs` is the command line on top of it; tests build the
//! router with [`app`] and call it without a network.
//!
//! Architecture invariant: this is the only crate that knows HTTP and JSON wire
//! shapes. Handlers parse the request into domain types, call the domain crate, and map
//! the result (or the typed error, through one table in [`problem`]) to a response.

pub mod config;
pub mod demo;
pub mod fetcher;
pub mod ngsi;
pub mod problem;
pub mod storage;

use axum::routing::get;
use axum::Router;
use broker::{Broker, ContextService};
use std::sync::Arc;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

/// What every handler shares.
#[derive(Clone)]
pub struct AppState {
    pub broker: Broker,
    pub config: Arc<config::Config>,
}

impl AppState {
    /// Builds the broker over an opened store, with the contexts the configuration
    /// preloads and, unless disabled, a fetcher for remote contexts.
    pub fn new(store: store::SharedStore, config: config::Config) -> anyhow::Result<AppState> {
        let preloaded = match &config.contexts_dir {
            Some(dir) => config::load_contexts_dir(dir)?,
            None => Default::default(),
        };
        let fetcher: Option<Arc<dyn broker::ContextFetcher>> = if config.remote_contexts {
            Some(Arc::new(fetcher::HttpContextFetcher::new(
                config.context_fetch_timeout,
            )?))
        } else {
            None
        };
        let hosted_base = format!(
            "{}/ngsi-ld/v1/jsonldContexts/",
            config.public_url.trim_end_matches('/')
        );
        let contexts = ContextService::new(store.clone(), fetcher, preloaded, hosted_base);
        Ok(AppState {
            broker: Broker::new(store, Arc::new(contexts)),
            config: Arc::new(config),
        })
    }
}

/// The whole HTTP surface of renkei.
pub fn app(state: AppState) -> Router {
    Router::new()
        .nest("/ngsi-ld/v1", ngsi::router())
        .route("/health", get(|| async { "ok" }))
        .with_state(state)
}

/// The router behind path normalisation, as served.
pub type HttpService = NormalizePath<Router>;

/// [`app`] as `renkei serve` serves it. Clients (ETSI's suite among them) write
/// `/entities/` as often as `/entities`; the trailing slash is trimmed before routing
/// so both reach the same handler.
pub fn service(state: AppState) -> HttpService {
    NormalizePathLayer::trim_trailing_slash().layer(app(state))
}
