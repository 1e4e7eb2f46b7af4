//! Identity and access for renkei: who a request comes from and what they may do.
//!
//! A prefecture and its municipalities share one renkei (県・市町村共同利用), so every
//! decision is made per tenant (a local government, by its 全国地方公共団体コード).
//! This crate holds the domain of it, free of HTTP and SQL:
//!
//! - [`tenant`]: the registry record of a tenant (name, suspension, what it makes public,
//!   whether its prefecture may read its data);
//! - [`role`] and [`principal`]: the roles a user or key holds, per tenant;
//! - [`policy`]: the one table that decides every action on every face;
//! - [`password`], [`account`]: argon2id hashes, password rules, sign-in with lockout;
//! - [`secret`]: API keys and session tokens (random, shown once, stored as hashes);
//! - [`audit`]: the hash chain of the append-only audit log and its verification.
//!
//! The server orchestrates: it loads records through `store::identity::IdentityStore`,
//! asks the functions here, and saves what they return.

pub mod account;
pub mod audit;
pub mod password;
pub mod policy;
pub mod principal;
pub mod role;
pub mod secret;
pub mod tenant;

pub use policy::{decide, Action, Decision, Settings, Target};
pub use principal::Principal;
pub use role::{Grant, Role, Scope};
pub use tenant::TenantRecord;
