//! Server-side validation of answers against a form: normalise, drop hidden fields, check
//! against the schema, seal what is sensitive, and say per field what is wrong.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::definition::{
    all_fields, escape_segment, field_of, field_schema, is_under, pointer_segments, resolve,
    FormDefinition, Text, MAX_DEPTH,
};
use super::formats::{is_mask, mask, FormatError, RenkeiType};

/// Which part of the form a validation judges.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Only the fields of this step: for "save as draft" and "next".
    Step(String),
    /// Every field: for submission.
    Full,
}

/// Stable error codes; clients and the server's tests match on these, never on messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    Required,
    Type,
    Format,
    CheckDigit,
    FutureDate,
    MinLength,
    MaxLength,
    Minimum,
    Maximum,
    Enum,
    Const,
    Pattern,
    MinItems,
    MaxItems,
    UniqueItems,
    MultipleOf,
    /// Any other schema rule (combinators, dependent fields, …).
    Invalid,
    AttachmentMissing,
    FileEmpty,
    FileTooLarge,
    FileType,
    FileTypeMismatch,
    FileExtension,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::Required => "required",
            ErrorCode::Type => "type",
            ErrorCode::Format => "format",
            ErrorCode::CheckDigit => "check_digit",
            ErrorCode::FutureDate => "future_date",
            ErrorCode::MinLength => "min_length",
            ErrorCode::MaxLength => "max_length",
            ErrorCode::Minimum => "minimum",
            ErrorCode::Maximum => "maximum",
            ErrorCode::Enum => "enum",
            ErrorCode::Const => "const",
            ErrorCode::Pattern => "pattern",
            ErrorCode::MinItems => "min_items",
            ErrorCode::MaxItems => "max_items",
            ErrorCode::UniqueItems => "unique_items",
            ErrorCode::MultipleOf => "multiple_of",
            ErrorCode::Invalid => "invalid",
            ErrorCode::AttachmentMissing => "attachment_missing",
            ErrorCode::FileEmpty => "file_empty",
            ErrorCode::FileTooLarge => "file_too_large",
            ErrorCode::FileType => "file_type",
            ErrorCode::FileTypeMismatch => "file_type_mismatch",
            ErrorCode::FileExtension => "file_extension",
        }
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one field. Messages never quote the value (it may be personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Where in the answers: `/applicant/postal_code`, `/children/1/name`; for attachments
    /// `/attachments/{id}`; `""` only when the answers are not an object at all.
    pub pointer: String,
    /// The field the pointer belongs to (array indices folded away), for looking up hints.
    pub field: String,
    pub label: Text,
    pub code: ErrorCode,
    pub message_ja: String,
    pub message_en: String,
}

/// The outcome of a validation. `Debug` hides the sealed values.
#[derive(Clone, PartialEq)]
pub struct Validated {
    /// What to store: normalised, hidden and unknown fields removed, sensitive values masked.
    pub answers: Value,
    /// Pointer → clear normalised value, for the caller to seal; never store these in clear.
    pub sensitive: BTreeMap<String, Value>,
    /// Empty when the scope judged is valid.
    pub errors: Vec<FieldError>,
    /// Fields removed because their conditions hide them.
    pub hidden: Vec<String>,
    /// Properties the schema does not define, removed (worth a log line: a client bug).
    pub dropped: Vec<String>,
    /// Sensitive fields whose answer was the mask of a value sealed before: keep that one.
    pub kept_sealed: Vec<String>,
}

impl Validated {
    pub fn is_valid(&self) -> bool {
        self.errors.is_empty()
    }
}

impl fmt::Debug for Validated {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Validated")
            .field("answers", &self.answers)
            .field("sensitive", &self.sensitive.keys().collect::<Vec<_>>())
            .field("errors", &self.errors)
            .field("hidden", &self.hidden)
            .field("dropped", &self.dropped)
            .field("kept_sealed", &self.kept_sealed)
            .finish()
    }
}

/// Why validation could not run at all (as opposed to the answers being wrong).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormError {
    #[error("ステップ「{0}」はこのフォームにありません / the form has no step {0:?}")]
    UnknownStep(String),
    #[error("フォーム定義が不正です: {0} / the form definition is invalid: {0}")]
    Definition(String),
}

/// Every renkei type is registered with the schema validator as always passing: the
/// normaliser has already judged those values, with better messages.
pub(crate) fn compile_schema(
    schema: &Value,
) -> Result<jsonschema::Validator, jsonschema::ValidationError<'static>> {
    let mut options = jsonschema::options()
        .with_draft(jsonschema::Draft::Draft202012)
        .should_validate_formats(true);
    for kind in RenkeiType::ALL {
        if kind != RenkeiType::Email {
            options = options.with_format(kind.name(), |_: &str| true);
        }
    }
    options.build(schema)
}

/// A definition with its schema compiled once, for validating many answers.
pub struct CompiledForm {
    definition: FormDefinition,
    validator: jsonschema::Validator,
}

impl fmt::Debug for CompiledForm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CompiledForm")
            .field("definition", &self.definition)
            .finish_non_exhaustive()
    }
}

/// Today's date in Japan, where every procedure's deadlines and birth dates live.
fn today_in_japan() -> NaiveDate {
    crate::in_japan(chrono::Utc::now()).date_naive()
}

/// Validates `answers` against `definition` as of today in Japan.
pub fn validate(
    definition: &FormDefinition,
    answers: &Value,
    scope: &Scope,
) -> Result<Validated, FormError> {
    validate_at(definition, answers, scope, today_in_japan())
}

/// [`validate`] with an explicit "today" (for `jp-birth-date`), so results are reproducible.
pub fn validate_at(
    definition: &FormDefinition,
    answers: &Value,
    scope: &Scope,
    today: NaiveDate,
) -> Result<Validated, FormError> {
    CompiledForm::new(definition.clone())?.validate_at(answers, scope, today)
}

impl CompiledForm {
    /// Checks the definition and compiles its schema.
    pub fn new(definition: FormDefinition) -> Result<CompiledForm, FormError> {
        if let Err(errors) = definition.check() {
            let text: Vec<String> = errors.iter().map(ToString::to_string).collect();
            return Err(FormError::Definition(text.join("; ")));
        }
        let validator =
            compile_schema(&definition.schema).map_err(|e| FormError::Definition(e.to_string()))?;
        Ok(CompiledForm {
            definition,
            validator,
        })
    }

    pub fn definition(&self) -> &FormDefinition {
        &self.definition
    }

    pub fn validate(&self, answers: &Value, scope: &Scope) -> Result<Validated, FormError> {
        self.validate_at(answers, scope, today_in_japan())
    }

    pub fn validate_at(
        &self,
        answers: &Value,
        scope: &Scope,
        today: NaiveDate,
    ) -> Result<Validated, FormError> {
        let def = &self.definition;
        let step_fields: Option<&[String]> = match scope {
            Scope::Full => None,
            Scope::Step(id) => Some(
                def.ui
                    .steps
                    .iter()
                    .find(|s| &s.id == id)
                    .map(|s| s.fields.as_slice())
                    .ok_or_else(|| FormError::UnknownStep(id.clone()))?,
            ),
        };
        let mut result = Validated {
            answers: Value::Object(Map::new()),
            sensitive: BTreeMap::new(),
            errors: Vec::new(),
            hidden: Vec::new(),
            dropped: Vec::new(),
            kept_sealed: Vec::new(),
        };
        if !answers.is_object() {
            // Nothing can be kept from answers that are not an object, so this is the one
            // error not tied to a field.
            result.errors.push(make_error(
                "",
                "",
                Text::new("回答", "answers"),
                ErrorCode::Type,
                Detail::Type("object"),
            ));
            return Ok(result);
        }

        let mut walk = Walk {
            root: &def.schema,
            today,
            sensitive_fields: def
                .ui
                .fields
                .iter()
                .filter(|(_, h)| h.sensitive)
                .map(|(f, _)| f.clone())
                .collect(),
            format_errors: Vec::new(),
            dropped: Vec::new(),
            to_seal: Vec::new(),
            kept_sealed: Vec::new(),
        };
        let mut normalised = walk
            .node(&def.schema, answers.clone(), "", "", 0)
            .unwrap_or_else(|| Value::Object(Map::new()));

        let hidden = hidden_fields(def, &normalised);
        for field in &hidden {
            remove_pointer(&mut normalised, field);
        }
        let is_hidden = |p: &str| hidden.iter().any(|h| is_under(p, h));

        let mut errors: Vec<FieldError> = Vec::new();
        let mut seen: BTreeSet<String> = BTreeSet::new();
        for (pointer, err) in &walk.format_errors {
            if is_hidden(pointer) || !seen.insert(pointer.clone()) {
                continue;
            }
            let field = field_of(&def.schema, pointer).unwrap_or_default();
            let code = match err {
                FormatError::MyNumberCheckDigit => ErrorCode::CheckDigit,
                FormatError::FutureDate => ErrorCode::FutureDate,
                _ => ErrorCode::Format,
            };
            errors.push(make_error(
                pointer,
                &field,
                def.label(&field),
                code,
                Detail::Format(err.clone()),
            ));
        }
        for err in self.validator.iter_errors(&normalised) {
            let Some((pointer, code, detail)) = map_schema_error(&err) else {
                continue;
            };
            if is_hidden(&pointer)
                || walk.kept_sealed.iter().any(|k| is_under(&pointer, k))
                || !seen.insert(pointer.clone())
            {
                continue;
            }
            let field = field_of(&def.schema, &pointer).unwrap_or_default();
            errors.push(make_error(
                &pointer,
                &field,
                def.label(&field),
                code,
                detail,
            ));
        }
        if let Some(fields) = step_fields {
            errors.retain(|e| fields.iter().any(|f| is_under(&e.field, f)));
        }

        let mut sealed: Vec<String> = Vec::new();
        for pointer in &walk.to_seal {
            if is_hidden(pointer) || sealed.iter().any(|s| is_under(pointer, s)) {
                continue;
            }
            let kind = field_schema(
                &def.schema,
                &field_of(&def.schema, pointer).unwrap_or_default(),
            )
            .and_then(RenkeiType::of_schema);
            if let Some(slot) = lookup_mut(&mut normalised, pointer) {
                let valid = !walk.format_errors.iter().any(|(p, _)| p == pointer);
                let clear = std::mem::replace(slot, mask(kind, slot, valid));
                result.sensitive.insert(pointer.clone(), clear);
                sealed.push(pointer.clone());
            }
        }

        result.answers = normalised;
        result.errors = errors;
        result.hidden = hidden;
        result.dropped = walk.dropped;
        result.kept_sealed = walk.kept_sealed;
        Ok(result)
    }
}

struct Walk<'a> {
    root: &'a Value,
    today: NaiveDate,
    sensitive_fields: BTreeSet<String>,
    format_errors: Vec<(String, FormatError)>,
    dropped: Vec<String>,
    to_seal: Vec<String>,
    kept_sealed: Vec<String>,
}

impl Walk<'_> {
    /// Normalises one value; `None` removes it (null, or a string that is only white space:
    /// an unanswered field, which `required` must then catch). `field` is the field the
    /// value belongs to, which array items share with their array.
    fn node(
        &mut self,
        schema: &Value,
        value: Value,
        pointer: &str,
        field: &str,
        depth: usize,
    ) -> Option<Value> {
        let root = self.root;
        let schema = resolve(root, schema);
        if depth > MAX_DEPTH {
            return Some(value);
        }
        let kind = RenkeiType::of_schema(schema);
        let sensitive =
            kind.is_some_and(RenkeiType::always_sensitive) || self.sensitive_fields.contains(field);
        if sensitive && is_mask(kind, &value) {
            self.kept_sealed.push(pointer.to_string());
            return Some(value);
        }
        let out = match value {
            Value::Null => None,
            Value::String(s) => self.string(schema, kind, &s, pointer),
            Value::Object(map) => {
                let Some(props) = schema.get("properties").and_then(Value::as_object) else {
                    return Some(Value::Object(map));
                };
                let keep_unknown = schema
                    .get("additionalProperties")
                    .is_some_and(|v| v != &Value::Bool(false))
                    || schema.get("patternProperties").is_some();
                let mut out = Map::new();
                for (key, v) in map {
                    let child = format!("{pointer}/{}", escape_segment(&key));
                    match props.get(&key) {
                        Some(sub) => {
                            if let Some(n) = self.node(sub, v, &child, &child, depth + 1) {
                                out.insert(key, n);
                            }
                        }
                        None if keep_unknown => {
                            out.insert(key, v);
                        }
                        None => self.dropped.push(child),
                    }
                }
                Some(Value::Object(out))
            }
            Value::Array(items) => match schema.get("items") {
                Some(item_schema) if item_schema.is_object() => {
                    let mut out = Vec::with_capacity(items.len());
                    for item in items {
                        let child = format!("{pointer}/{}", out.len());
                        if let Some(n) = self.node(item_schema, item, &child, field, depth + 1) {
                            out.push(n);
                        }
                    }
                    Some(Value::Array(out))
                }
                _ => Some(Value::Array(items)),
            },
            other => Some(other),
        };
        if sensitive && out.is_some() {
            self.to_seal.push(pointer.to_string());
        }
        out
    }

    fn string(
        &mut self,
        schema: &Value,
        kind: Option<RenkeiType>,
        raw: &str,
        pointer: &str,
    ) -> Option<Value> {
        let text = raw.trim();
        if text.is_empty() {
            return None;
        }
        if let Some(kind) = kind {
            return Some(Value::String(match kind.normalize(text, self.today) {
                Ok(n) => n,
                Err(e) => {
                    self.format_errors.push((pointer.to_string(), e));
                    text.to_string()
                }
            }));
        }
        // HTML forms send every answer as text; turn it into the type the schema asks for
        // when that is unambiguous, and leave it for a type error otherwise.
        let types = schema_types(schema);
        if !types.contains(&"string") {
            let digits = jp::width::normalize_digits(text);
            if types.contains(&"integer") {
                if let Ok(n) = digits.parse::<i64>() {
                    return Some(Value::from(n));
                }
            }
            if types.contains(&"number") {
                if let Some(n) = digits
                    .parse::<f64>()
                    .ok()
                    .and_then(serde_json::Number::from_f64)
                {
                    return Some(Value::Number(n));
                }
            }
            if types.contains(&"boolean") {
                match text {
                    "true" | "on" => return Some(Value::Bool(true)),
                    "false" | "off" => return Some(Value::Bool(false)),
                    _ => {}
                }
            }
        }
        Some(Value::String(text.to_string()))
    }
}

fn schema_types(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
}

fn lookup<'v>(value: &'v Value, pointer: &str) -> Option<&'v Value> {
    pointer_segments(pointer)?
        .iter()
        .try_fold(value, |v, s| match v {
            Value::Object(m) => m.get(s.as_str()),
            Value::Array(a) => s.parse::<usize>().ok().and_then(|i| a.get(i)),
            _ => None,
        })
}

fn lookup_mut<'v>(value: &'v mut Value, pointer: &str) -> Option<&'v mut Value> {
    pointer_segments(pointer)?
        .iter()
        .try_fold(value, |v, s| match v {
            Value::Object(m) => m.get_mut(s.as_str()),
            Value::Array(a) => s.parse::<usize>().ok().and_then(|i| a.get_mut(i)),
            _ => None,
        })
}

fn remove_pointer(value: &mut Value, pointer: &str) {
    let Some(mut segments) = pointer_segments(pointer) else {
        return;
    };
    let Some(last) = segments.pop() else {
        return;
    };
    let parent_pointer: String = segments
        .iter()
        .map(|s| format!("/{}", escape_segment(s)))
        .collect();
    if let Some(Value::Object(parent)) = lookup_mut(value, &parent_pointer) {
        parent.shift_remove(&last);
    }
}

/// The fields whose conditions (or whose ancestors' or step's conditions) do not hold,
/// judged on the normalised answers. A field whose controlling field is hidden sees it as
/// unanswered.
fn hidden_fields(def: &FormDefinition, answers: &Value) -> Vec<String> {
    fn visible(
        def: &FormDefinition,
        answers: &Value,
        field: &str,
        memo: &mut BTreeMap<String, bool>,
        depth: usize,
    ) -> bool {
        if let Some(&v) = memo.get(field) {
            return v;
        }
        // Cycles are refused by `check`; the depth bound only keeps this total.
        if depth > MAX_DEPTH {
            return true;
        }
        let result = def.conditions_of(field).into_iter().all(|cond| {
            let value = if visible(def, answers, &cond.field, memo, depth + 1) {
                lookup(answers, &cond.field)
            } else {
                None
            };
            cond.holds(value)
        });
        memo.insert(field.to_string(), result);
        result
    }
    let mut memo = BTreeMap::new();
    let mut hidden: Vec<String> = Vec::new();
    for field in all_fields(&def.schema) {
        if hidden.iter().any(|h| is_under(&field, h)) {
            continue;
        }
        if !visible(def, answers, &field, &mut memo, 0) {
            hidden.push(field);
        }
    }
    hidden
}

/// What a message needs beyond the label.
pub(crate) enum Detail {
    None,
    Type(&'static str),
    Limit(String),
    Format(FormatError),
}

fn map_schema_error(err: &jsonschema::ValidationError<'_>) -> Option<(String, ErrorCode, Detail)> {
    use jsonschema::error::ValidationErrorKind as K;
    let base = err.instance_path().as_str().to_string();
    let limit = |v: &dyn fmt::Display| Detail::Limit(v.to_string());
    let (pointer, code, detail) = match err.kind() {
        K::Required { property } => {
            let name = property.as_str()?;
            (
                format!("{base}/{}", escape_segment(name)),
                ErrorCode::Required,
                Detail::None,
            )
        }
        K::Type { .. } => (base, ErrorCode::Type, Detail::None),
        K::Format { .. } => (base, ErrorCode::Format, Detail::None),
        K::MinLength { limit: l } => (base, ErrorCode::MinLength, limit(l)),
        K::MaxLength { limit: l } => (base, ErrorCode::MaxLength, limit(l)),
        K::Minimum { limit: l } | K::ExclusiveMinimum { limit: l } => {
            (base, ErrorCode::Minimum, limit(l))
        }
        K::Maximum { limit: l } | K::ExclusiveMaximum { limit: l } => {
            (base, ErrorCode::Maximum, limit(l))
        }
        K::Enum { .. } => (base, ErrorCode::Enum, Detail::None),
        K::Constant { .. } => (base, ErrorCode::Const, Detail::None),
        K::Pattern { .. } => (base, ErrorCode::Pattern, Detail::None),
        K::MinItems { limit: l } => (base, ErrorCode::MinItems, limit(l)),
        K::MaxItems { limit: l } => (base, ErrorCode::MaxItems, limit(l)),
        K::UniqueItems => (base, ErrorCode::UniqueItems, Detail::None),
        K::MultipleOf { .. } => (base, ErrorCode::MultipleOf, Detail::None),
        _ => (base, ErrorCode::Invalid, Detail::None),
    };
    Some((pointer, code, detail))
}

pub(crate) fn make_error(
    pointer: &str,
    field: &str,
    label: Text,
    code: ErrorCode,
    detail: Detail,
) -> FieldError {
    let (ja, en) = messages(&label, code, &detail);
    FieldError {
        pointer: pointer.to_string(),
        field: field.to_string(),
        label,
        code,
        message_ja: ja,
        message_en: en,
    }
}

fn messages(label: &Text, code: ErrorCode, detail: &Detail) -> (String, String) {
    let (l_ja, l_en) = (&label.ja, &label.en);
    let n = match detail {
        Detail::Limit(n) => n.as_str(),
        _ => "",
    };
    match (code, detail) {
        (_, Detail::Format(e)) => format_messages(l_ja, l_en, e),
        (ErrorCode::Type, Detail::Type(t)) => (
            format!("「{l_ja}」の形式が正しくありません"),
            format!("{l_en} must be a JSON {t}"),
        ),
        (ErrorCode::Required, _) => (
            format!("「{l_ja}」を入力してください"),
            format!("Enter {l_en}"),
        ),
        (ErrorCode::Type, _) => (
            format!("「{l_ja}」の入力の形式が正しくありません"),
            format!("{l_en} has the wrong kind of value"),
        ),
        (ErrorCode::MinLength, _) => (
            format!("「{l_ja}」は{n}文字以上で入力してください"),
            format!("{l_en} must be at least {n} characters"),
        ),
        (ErrorCode::MaxLength, _) => (
            format!("「{l_ja}」は{n}文字以内で入力してください"),
            format!("{l_en} must be at most {n} characters"),
        ),
        (ErrorCode::Minimum, _) => (
            format!("「{l_ja}」は{n}以上にしてください"),
            format!("{l_en} must be at least {n}"),
        ),
        (ErrorCode::Maximum, _) => (
            format!("「{l_ja}」は{n}以下にしてください"),
            format!("{l_en} must be at most {n}"),
        ),
        (ErrorCode::MinItems, _) => (
            format!("「{l_ja}」は{n}つ以上選んでください"),
            format!("Choose at least {n} for {l_en}"),
        ),
        (ErrorCode::MaxItems, _) => (
            format!("「{l_ja}」は{n}つまで選べます"),
            format!("Choose at most {n} for {l_en}"),
        ),
        (ErrorCode::Enum | ErrorCode::Const, _) => (
            format!("「{l_ja}」は選択肢の中から選んでください"),
            format!("Choose {l_en} from the options"),
        ),
        (ErrorCode::Format | ErrorCode::Pattern, _) => (
            format!("「{l_ja}」の形式が正しくありません"),
            format!("{l_en} is not in the expected format"),
        ),
        (ErrorCode::UniqueItems, _) => (
            format!("「{l_ja}」に同じものが重複しています"),
            format!("{l_en} contains duplicates"),
        ),
        (ErrorCode::AttachmentMissing, _) => (
            format!("「{l_ja}」を添付してください"),
            format!("Attach {l_en}"),
        ),
        (ErrorCode::FileEmpty, _) => (
            format!("「{l_ja}」のファイルが空です"),
            format!("The file for {l_en} is empty"),
        ),
        (ErrorCode::FileTooLarge, _) => (
            format!("「{l_ja}」のファイルが大きすぎます ({n}バイトまで)"),
            format!("The file for {l_en} is too large (at most {n} bytes)"),
        ),
        (ErrorCode::FileType, _) => (
            format!("「{l_ja}」には受け付けていない種類のファイルです"),
            format!("The file for {l_en} is of a type that is not accepted"),
        ),
        (ErrorCode::FileTypeMismatch | ErrorCode::FileExtension, _) => (
            format!("「{l_ja}」のファイルの中身と種類 (拡張子) が一致しません"),
            format!("The content of the file for {l_en} does not match its type or extension"),
        ),
        _ => (
            format!("「{l_ja}」の入力内容を確認してください"),
            format!("Check {l_en}"),
        ),
    }
}

fn format_messages(l_ja: &str, l_en: &str, e: &FormatError) -> (String, String) {
    let (ja, en) = match e {
        FormatError::Kana => (
            "はカタカナで入力してください",
            "must be written in katakana",
        ),
        FormatError::PostalCode => (
            "は7桁の郵便番号 (例: 123-4567) で入力してください",
            "must be a 7-digit postal code such as 123-4567",
        ),
        FormatError::Phone => (
            "は市外局番からの電話番号で入力してください",
            "must be a Japanese phone number including the area code",
        ),
        FormatError::Date => (
            "は日付 (例: 令和5年4月1日, 2023-04-01) で入力してください",
            "must be a date such as 令和5年4月1日 or 2023-04-01",
        ),
        FormatError::FutureDate => ("に未来の日付は入力できません", "cannot be in the future"),
        FormatError::MyNumberFormat => ("は12桁の数字で入力してください", "must be 12 digits"),
        FormatError::MyNumberCheckDigit => (
            "の番号が正しくありません。もう一度確認してください",
            "is not a valid number (check digit mismatch); please check it",
        ),
        FormatError::Email => (
            "はメールアドレスの形で入力してください",
            "must be an email address",
        ),
    };
    (format!("「{l_ja}」{ja}"), format!("{l_en} {en}"))
}
