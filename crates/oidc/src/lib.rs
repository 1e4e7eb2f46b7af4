//! OpenID Connect relying party for renkei: sign-in through an outside identity
//! provider with the authorization code flow, PKCE (S256), `state` and `nonce`.
//!
//! The flow is split in two so that a web server can keep the in-between state
//! in a short-lived server-side record:
//!
//! 1. [`Provider::begin`] makes the authorization URL to send the browser to and a
//!    [`PendingSignIn`] (state, nonce, PKCE verifier) to keep on the server;
//! 2. [`Provider::complete`] takes the `state` and `code` the browser came back
//!    with, exchanges the code at the token endpoint and validates the ID token,
//!    returning its [`IdTokenClaims`].
//!
//! With the cargo feature `testing`, the module `testing` holds a small but real OpenID
//! provider that tests start on 127.0.0.1, so sign-in is tested end to end.

mod client;
mod error;
mod flow;
mod id_token;
mod provider;
#[cfg(feature = "testing")]
pub mod testing;

pub use client::{ClientAuth, ClientConfig, DEFAULT_SCOPES};
pub use error::{IdTokenRejection, OidcError};
pub use flow::PendingSignIn;
pub use id_token::{IdTokenClaims, ALLOWED_ALGORITHMS, CLOCK_LEEWAY_SECONDS};
pub use provider::{Provider, ProviderMetadata};
