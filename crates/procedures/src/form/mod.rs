//! Application forms (申請フォーム): a definition is a JSON Schema (2020-12) plus renkei UI
//! hints (labels in Japanese, English and やさしい日本語, help, widgets, ordered steps and
//! conditions) and the attachments the procedure asks for. Everything a resident sends is
//! judged here on the server: Japanese inputs are normalised (kana, 郵便番号, 電話番号,
//! 和暦 dates, マイナンバー), hidden fields are dropped, and each problem comes back as a
//! [`FieldError`] naming the field by JSON pointer with a message in Japanese and English.
//! Validation never consumes or loses the applicant's answers: the caller keeps what was
//! sent and gets the normalised copy to store.
//!
//! Field references in hints, steps and conditions are JSON pointers into the answers
//! (`/applicant/postal_code`), walked through the schema's `properties` (and local `$ref`s);
//! array items are part of the field that holds the array.
//!
//! Field types are named by `format` or `x-renkei-type`: `jp-kana`, `jp-postal-code`,
//! `jp-phone`, `jp-date`, `jp-birth-date`, `my-number`, `email` (see [`RenkeiType`]).
//! Before the schema judges the answers: strings are trimmed, and an empty string or a null
//! counts as unanswered (so `required` catches it); text sent for an `integer`, `number` or
//! `boolean` field is converted when unambiguous (`"３"` → 3, `"on"` → true); properties the
//! schema does not define are dropped and listed in [`Validated::dropped`].
//!
//! 郵便番号 → 住所: the project has no postal dataset, so [`PostalDirectory`] is the seam
//! the server fills in later.

mod attachment;
mod definition;
mod formats;
mod postal;
mod validate;

pub use attachment::{
    check_attachment, check_required_attachments, sniff_media_type, AttachmentRequirement,
};
pub use definition::{
    Condition, ConditionTest, DefinitionError, FieldHint, FormDefinition, Step, Text, UiHints,
};
pub use formats::{my_number_check_digit, normalize_kana, FormatError, RenkeiType};
pub use postal::{lookup_address, PostalAddress, PostalDirectory, StaticPostalDirectory};
pub use validate::{
    validate, validate_at, CompiledForm, ErrorCode, FieldError, FormError, Scope, Validated,
};
