//! Attachments (添付書類): each requirement names the media types a procedure accepts and
//! a size limit. The type is decided from the file's first bytes, not from its name or the
//! browser's claim, so that a renamed executable is refused.

use serde::{Deserialize, Serialize};

use super::definition::{escape_segment, Text};
use super::validate::{make_error, Detail, ErrorCode, FieldError};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachmentRequirement {
    pub id: String,
    pub label: Text,
    #[serde(default)]
    pub required: bool,
    pub max_bytes: u64,
    /// Accepted media types, from those [`sniff_media_type`] recognises.
    pub media_types: Vec<String>,
}

/// A file type renkei recognises by its signature.
struct Kind {
    media_type: &'static str,
    matches: fn(&[u8]) -> bool,
    extensions: &'static [&'static str],
}

const KINDS: [Kind; 6] = [
    Kind {
        media_type: "application/pdf",
        matches: |b| b.starts_with(b"%PDF-"),
        extensions: &["pdf"],
    },
    Kind {
        media_type: "image/png",
        matches: |b| b.starts_with(b"\x89PNG\r\n\x1a\n"),
        extensions: &["png"],
    },
    Kind {
        media_type: "image/jpeg",
        matches: |b| b.starts_with(&[0xFF, 0xD8, 0xFF]),
        extensions: &["jpg", "jpeg", "jpe"],
    },
    Kind {
        media_type: "image/gif",
        matches: |b| b.starts_with(b"GIF87a") || b.starts_with(b"GIF89a"),
        extensions: &["gif"],
    },
    Kind {
        media_type: "image/webp",
        matches: |b| b.len() >= 12 && b.starts_with(b"RIFF") && &b[8..12] == b"WEBP",
        extensions: &["webp"],
    },
    // Phones save photos as HEIC; the ISO BMFF brand sits at bytes 8..12.
    Kind {
        media_type: "image/heic",
        matches: |b| {
            b.len() >= 12
                && &b[4..8] == b"ftyp"
                && matches!(&b[8..12], b"heic" | b"heix" | b"heim" | b"heis" | b"mif1")
        },
        extensions: &["heic", "heif"],
    },
];

/// Signatures of programs, refused whatever the requirement allows.
fn is_executable(b: &[u8]) -> bool {
    b.starts_with(b"MZ")
        || b.starts_with(b"\x7fELF")
        || b.starts_with(&[0xCF, 0xFA, 0xED, 0xFE])
        || b.starts_with(&[0xCE, 0xFA, 0xED, 0xFE])
        || b.starts_with(&[0xCA, 0xFE, 0xBA, 0xBE])
        || b.starts_with(b"#!")
}

pub(crate) fn is_sniffable(media_type: &str) -> bool {
    KINDS.iter().any(|k| k.media_type == media_type)
}

/// The media type the bytes really are, or `None` when not one renkei accepts.
pub fn sniff_media_type(first_bytes: &[u8]) -> Option<&'static str> {
    if is_executable(first_bytes) {
        return None;
    }
    KINDS
        .iter()
        .find(|k| (k.matches)(first_bytes))
        .map(|k| k.media_type)
}

fn pointer(req: &AttachmentRequirement) -> String {
    format!("/attachments/{}", escape_segment(&req.id))
}

fn refuse(req: &AttachmentRequirement, code: ErrorCode, detail: Detail) -> FieldError {
    let p = pointer(req);
    make_error(&p, &p, req.label.clone(), code, detail)
}

/// Checks one uploaded file against its requirement. `first_bytes` needs at least the
/// first 12 bytes of the file; `declared_type` is what the browser said, which must agree
/// with the bytes unless it is empty or `application/octet-stream`.
// The error is a plain `FieldError` so that it joins the answers' errors in one list; it is
// made once per upload, so its size does not matter.
#[allow(clippy::result_large_err)]
pub fn check_attachment(
    req: &AttachmentRequirement,
    file_name: &str,
    declared_type: &str,
    first_bytes: &[u8],
    size: u64,
) -> Result<(), FieldError> {
    if size == 0 || first_bytes.is_empty() {
        return Err(refuse(req, ErrorCode::FileEmpty, Detail::None));
    }
    if size > req.max_bytes {
        return Err(refuse(
            req,
            ErrorCode::FileTooLarge,
            Detail::Limit(req.max_bytes.to_string()),
        ));
    }
    let Some(actual) = sniff_media_type(first_bytes) else {
        return Err(refuse(req, ErrorCode::FileType, Detail::None));
    };
    if !req.media_types.iter().any(|t| t == actual) {
        return Err(refuse(req, ErrorCode::FileType, Detail::None));
    }
    let declared = declared_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let declared = if declared == "image/jpg" || declared == "image/pjpeg" {
        "image/jpeg".to_string()
    } else {
        declared
    };
    if !declared.is_empty() && declared != "application/octet-stream" && declared != actual {
        return Err(refuse(req, ErrorCode::FileTypeMismatch, Detail::None));
    }
    let extension = file_name
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    let extensions = KINDS
        .iter()
        .find(|k| k.media_type == actual)
        .map_or(&[][..], |k| k.extensions);
    if !extensions.contains(&extension.as_str()) {
        return Err(refuse(req, ErrorCode::FileExtension, Detail::None));
    }
    Ok(())
}

/// One `attachment_missing` error for each required attachment whose id is not in `present`.
pub fn check_required_attachments(
    requirements: &[AttachmentRequirement],
    present: &[&str],
) -> Vec<FieldError> {
    requirements
        .iter()
        .filter(|r| r.required && !present.contains(&r.id.as_str()))
        .map(|r| refuse(r, ErrorCode::AttachmentMissing, Detail::None))
        .collect()
}
