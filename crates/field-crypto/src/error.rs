//! Errors of loading a keyring and of opening a sealed value. None of them ever carries key
//! material: a malformed entry is named by its position, and by its id only once that id is
//! known to be a well-formed key id.

use std::path::PathBuf;

/// Why a keyring spec or file was refused. Positions count entries from 1, skipping blank
/// entries and (in files) comment lines.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyringError {
    /// The spec holds no entry at all.
    #[error("the keyring spec holds no key entry")]
    Empty,
    /// An entry lacks the `:` between id and key.
    #[error("keyring entry #{position} is not of the form id:BASE64KEY")]
    MissingSeparator { position: usize },
    /// An entry's id is not `[A-Za-z0-9_-]{1,32}`. The id is not echoed, since a mangled entry
    /// may hold key bytes in that place.
    #[error(
        "keyring entry #{position} has an invalid key id (expected 1 to 32 of A-Z a-z 0-9 _ -)"
    )]
    InvalidId { position: usize },
    /// A key id was given twice.
    #[error("keyring entry #{position} repeats the key id {id:?}")]
    DuplicateId { id: String, position: usize },
    /// A key is neither standard nor URL-safe base64.
    #[error("keyring entry #{position} (id {id:?}) is not valid base64")]
    InvalidBase64 { id: String, position: usize },
    /// A key decodes to something other than 32 bytes.
    #[error("keyring entry #{position} (id {id:?}) decodes to {length} bytes, expected 32")]
    WrongKeyLength {
        id: String,
        position: usize,
        length: usize,
    },
    /// The keyring file could not be read.
    #[error("cannot read keyring file {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The keyring file is readable or writable by group or others.
    #[error(
        "keyring file {path} has mode {mode:03o}, which lets group or others access it; \
         restrict it with `chmod 600`"
    )]
    InsecurePermissions { path: PathBuf, mode: u32 },
}

/// Why a sealed value could not be opened.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum OpenError {
    /// The text is not in the `rk1.<key id>.<payload>` format at all.
    #[error("not a sealed value (expected rk1.<key id>.<payload>)")]
    Malformed,
    /// The value was sealed with a key that is not (or no longer) in the keyring.
    #[error("sealed with key {0:?}, which is not in the keyring")]
    UnknownKey(String),
    /// Authentication failed: the wrong key material under a known id, changed bytes, or a
    /// context other than the one the value was sealed with.
    #[error("sealed value failed authentication (tampered, wrong key or wrong context)")]
    Tampered,
    /// The value opened but is not UTF-8 (only from the `*_str` conveniences).
    #[error("sealed value opened but is not valid UTF-8")]
    NotUtf8,
}
