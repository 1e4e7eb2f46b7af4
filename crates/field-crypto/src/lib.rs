//! Field-level encryption of personal data at rest, for renkei's online-application service.
//!
//! Each sensitive field (an applicant's name, address, phone number, ...) is sealed on its own
//! with AES-256-GCM before it is written to the database, so a leaked dump, backup or log line
//! shows only ciphertext. A [`Keyring`] holds several 256-bit keys; the *current* key seals, and
//! every key in the ring can open.
//!
//! # Sealed format
//!
//! A sealed value is plain ASCII, safe for any text column:
//!
//! ```text
//! rk1.<key id>.<base64url without padding of (nonce || ciphertext || tag)>
//! ```
//!
//! * `rk1` names this format, version 1.
//! * `<key id>` is the id of the key that sealed the value (`[A-Za-z0-9_-]{1,32}`, e.g. `2026a`),
//!   so the keyring knows which key opens it without trying them all.
//! * the nonce is 96 random bits drawn from the OS for every seal, so sealing the same text twice
//!   gives two different values; the tag is GCM's 128-bit authentication tag.
//!
//! [`is_sealed`] tells whether a text has this shape, so callers never seal a value twice.
//!
//! # The context (AAD) rule
//!
//! Every seal and open takes a `context` string that is authenticated but not stored, for
//! example `"application:123:applicant_name"`: the record, its id and the field. A value opens
//! only under the context it was sealed with, so a ciphertext copied into another record or
//! another field fails with [`OpenError::Tampered`] instead of quietly showing one applicant's
//! data as another's. Pick a context that names where the value lives and never changes while
//! it lives there (not a timestamp, not a row version).
//!
//! # Key rotation
//!
//! 1. Generate a new entry ([`Keyring::generate_key_entry`]) and put it FIRST in the keyring
//!    spec; the old keys stay after it. From then on new values are sealed with the new key and
//!    old values still open with theirs.
//! 2. Walk the stored fields: where [`Keyring::is_current`] is false, replace the value with
//!    [`Keyring::reseal`] (opens with whichever key sealed it, seals with the current one).
//! 3. Only once no stored value names an old key (see [`sealed_key_id`]) drop that key from the
//!    spec. A value whose key has left the ring fails with [`OpenError::UnknownKey`] and is lost.
//!
//! ```
//! use field_crypto::Keyring;
//!
//! let spec = Keyring::generate_key_entry("2026a").expect("a valid key id");
//! let keyring = Keyring::parse(&spec).expect("a valid spec");
//! let sealed = keyring.seal_str("山田 太郎", "application:123:applicant_name");
//! assert!(field_crypto::is_sealed(&sealed));
//! let name = keyring.open_str(&sealed, "application:123:applicant_name").expect("opens");
//! assert_eq!(name, "山田 太郎");
//! assert!(keyring.open_str(&sealed, "application:124:applicant_name").is_err());
//! ```
//!
//! Key material never appears in errors or in `Debug` output, and key bytes are wiped from
//! memory when a [`Keyring`] is dropped.

mod error;
mod format;
mod keyring;

pub use error::{KeyringError, OpenError};
pub use format::{is_sealed, sealed_key_id, FORMAT_PREFIX};
pub use keyring::Keyring;
