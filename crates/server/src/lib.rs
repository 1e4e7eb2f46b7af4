//! The renkei server: configuration, the choice of storage backend, and the HTTP faces
//! wired onto one router. `main.rs` is the command line on top of it; tests build the
//! router with [`app`] and call it without a network.
//!
//! Architecture invariant: this is the only crate that knows HTTP and JSON wire
//! shapes. Handlers parse the request into domain types, call the domain crate, and map
//! the result (or the typed error, through one table in [`problem`]) to a response.
//! Every request is authenticated by [`auth::middleware`] before routing, and every
//! face asks `identity`'s one policy table what the caller may do.

pub mod admin;
pub mod admission;
pub mod applications;
pub mod auth;
pub mod catalog_cli;
pub mod ckan;
pub mod cli;
pub mod config;
pub mod delivery;
pub mod demo;
pub mod fetcher;
pub mod localgov;
pub mod ngsi;
pub mod problem;
pub mod protect;
pub mod storage;
pub mod tls;

use axum::middleware::from_fn_with_state;
use axum::routing::get;
use axum::Router;
use broker::{Broker, ContextService};
use std::sync::Arc;
use tower::Layer;
use tower_http::normalize_path::{NormalizePath, NormalizePathLayer};

/// What every handler shares: one allocation behind an `Arc`, because axum clones the
/// state for every extractor and middleware of every request, and cloning each
/// service's handles one by one was measurable on a 2-core machine.
#[derive(Clone)]
pub struct AppState(Arc<Services>);

impl std::ops::Deref for AppState {
    type Target = Services;
    fn deref(&self) -> &Services {
        &self.0
    }
}

/// The services behind [`AppState`].
pub struct Services {
    pub broker: Broker,
    /// The temporal API's side of the broker (history).
    pub history: broker::temporal::History,
    pub identity: auth::Identity,
    pub subscriptions: store::subscriptions::SharedSubscriptionStore,
    /// Context source registrations (`/csourceRegistrations`).
    pub registrations: store::registrations::SharedRegistrationStore,
    /// The open data catalog (CKAN Action API, DCAT).
    pub catalog: catalog::service::Catalog,
    pub datastore: store::datastore::SharedDatastoreStore,
    /// Harvest sources and runs of the catalog (`harvest_*` actions, the scheduler).
    pub harvester: catalog::harvest::Harvester,
    /// Online applications (`/api/v1/procedures`).
    pub applications: procedures::service::Applications,
    /// The budget of batch bodies decoded at once.
    pub batch_admission: admission::BatchAdmission,
    pub config: Arc<config::Config>,
}

impl AppState {
    /// Builds the broker over an opened store, with the contexts the configuration
    /// preloads and, unless disabled, a fetcher for remote contexts; and identity and
    /// access over the same database.
    pub fn new(stores: storage::Stores, config: config::Config) -> anyhow::Result<AppState> {
        let mut preloaded = match &config.contexts_dir {
            Some(dir) => config::load_contexts_dir(dir)?,
            None => Default::default(),
        };
        let opendata_context = catalog::publish::context_document().clone();
        preloaded.insert(
            catalog::publish::context_url(&config.public_url),
            opendata_context,
        );
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
        let contexts =
            ContextService::new(stores.entities.clone(), fetcher, preloaded, hosted_base);
        let oidc = match &config.oidc {
            Some(oidc) => Some(auth::oidc::OidcSignIn::from_config(
                oidc,
                &config.public_url,
            )?),
            None => None,
        };
        let catalog = catalog::service::Catalog::new(stores.catalog, stores.identity.clone());
        let harvester = catalog::harvest::Harvester::new(catalog.clone(), stores.harvest)?;
        let identity = auth::Identity::new(stores.identity, &config, oidc);
        let applications = applications::setup::service(stores.applications, &config)?;
        Ok(AppState(Arc::new(Services {
            history: broker::temporal::History::new(
                stores.entities.clone(),
                stores.temporal,
                config.temporal_instance_limit,
            ),
            broker: Broker::new(stores.entities, Arc::new(contexts)),
            identity,
            subscriptions: stores.subscriptions,
            registrations: stores.registrations,
            catalog,
            datastore: stores.datastore,
            harvester,
            applications,
            batch_admission: admission::BatchAdmission::new(config.batch_bytes_in_flight),
            config: Arc::new(config),
        })))
    }
}

/// The whole HTTP surface of renkei. Layers run outside in: security headers on
/// every answer (refusals included), then rate limits before anything reads a body,
/// then authentication.
pub fn app(state: AppState) -> Router {
    let limits = Arc::new(protect::RateLimits::new(state.config.rate_limits));
    let tls = state.config.serves_tls();
    Router::new()
        .nest("/ngsi-ld/v1", ngsi::router())
        .nest("/auth", auth::routes::router())
        .nest("/admin/v1", admin::router())
        .merge(ckan::router())
        .nest("/api/v1/procedures", applications::router())
        .route("/health", get(|| async { "ok" }))
        .layer(from_fn_with_state(
            state.clone(),
            auth::middleware::authenticate,
        ))
        .layer(from_fn_with_state(limits, protect::limit_rate))
        .layer(from_fn_with_state(tls, protect::security_headers))
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
