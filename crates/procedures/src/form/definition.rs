//! The form definition as tenants write it, and the static checks that keep a broken one
//! from ever reaching a resident.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::attachment::AttachmentRequirement;
use super::formats::RenkeiType;

/// The dialect every form schema is written in.
pub const DIALECT: &str = "https://json-schema.org/draft/2020-12/schema";

/// Nesting deeper than this is refused rather than walked, so that a hostile schema or a
/// `$ref` loop cannot exhaust the stack.
pub(crate) const MAX_DEPTH: usize = 32;

/// A text shown to people, in Japanese, English and (where written) やさしい日本語.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Text {
    pub ja: String,
    pub en: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub easy: Option<String>,
}

impl Text {
    pub fn new(ja: impl Into<String>, en: impl Into<String>) -> Text {
        Text {
            ja: ja.into(),
            en: en.into(),
            easy: None,
        }
    }
}

/// A complete form: what the answers look like, how they are shown, what files come with them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FormDefinition {
    /// A JSON Schema 2020-12 object schema for the answers.
    pub schema: Value,
    #[serde(default)]
    pub ui: UiHints,
    #[serde(default)]
    pub attachments: Vec<AttachmentRequirement>,
}

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct UiHints {
    /// Steps in the order they are shown; each lists its fields in display order.
    #[serde(default)]
    pub steps: Vec<Step>,
    /// Hints per field, keyed by JSON pointer.
    #[serde(default)]
    pub fields: BTreeMap<String, FieldHint>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub id: String,
    pub title: Text,
    /// JSON pointers of the fields on this step, in display order.
    pub fields: Vec<String>,
    /// A hidden step hides all its fields.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible_when: Option<Condition>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FieldHint {
    pub label: Text,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub help: Option<Text>,
    /// Which input control the web face draws (`text`, `radio`, `select`, `textarea`, …).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub widget: Option<String>,
    /// The clear value goes to [`super::Validated::sensitive`] for sealing and the stored
    /// answers carry a mask. マイナンバー fields are sensitive whatever this says.
    #[serde(default)]
    pub sensitive: bool,
    /// Evaluated on the server: while false, the field is removed from the answers and is
    /// neither validated nor required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub visible_when: Option<Condition>,
}

/// `{"field": "/purpose", "equals": "other"}`, `{"field": …, "in": [...]}` or
/// `{"field": …, "not_empty": true}`, evaluated on the normalised answers. A controlling
/// field that is itself hidden counts as unanswered.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Condition {
    pub field: String,
    #[serde(flatten)]
    pub test: ConditionTest,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ConditionTest {
    /// The value equals this one; for an array value (checkboxes), the array contains it.
    Equals(Value),
    /// The value (or, for an array, any element) is one of these.
    In(Vec<Value>),
    /// `true`: answered with something other than an empty string, array or object;
    /// `false`: the opposite.
    NotEmpty(bool),
}

impl Condition {
    /// `value` is the controlling field's normalised answer, `None` when unanswered or hidden.
    pub fn holds(&self, value: Option<&Value>) -> bool {
        let matches = |expected: &Value| match value {
            Some(Value::Array(items)) => items.contains(expected),
            Some(v) => v == expected,
            None => false,
        };
        match &self.test {
            ConditionTest::Equals(expected) => matches(expected),
            ConditionTest::In(options) => options.iter().any(matches),
            ConditionTest::NotEmpty(want) => {
                let answered = match value {
                    None | Some(Value::Null) => false,
                    Some(Value::String(s)) => !s.is_empty(),
                    Some(Value::Array(a)) => !a.is_empty(),
                    Some(Value::Object(o)) => !o.is_empty(),
                    Some(_) => true,
                };
                answered == *want
            }
        }
    }
}

/// What is wrong with a form definition; each says where, in Japanese and English.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DefinitionError {
    #[error("スキーマが object 型のスキーマではありません / the schema is not an object schema")]
    NotObjectSchema,
    #[error(
        "スキーマの $schema「{found}」は 2020-12 ではありません / schema dialect {found:?} is not 2020-12"
    )]
    WrongDialect { found: String },
    #[error(
        "スキーマが不正です ({location}): {message} / invalid schema at {location:?}: {message}"
    )]
    InvalidSchema { location: String, message: String },
    #[error("ステップ「{id}」が重複しています / step {id:?} is defined twice")]
    DuplicateStep { id: String },
    #[error(
        "ステップ「{step}」の項目「{field}」はスキーマにありません / step {step:?} lists {field:?}, which the schema does not define"
    )]
    UnknownStepField { step: String, field: String },
    #[error(
        "項目「{field}」が複数のステップにあります / field {field:?} is on more than one step"
    )]
    FieldInTwoSteps { field: String },
    #[error("表示設定の項目「{field}」はスキーマにありません / hints name {field:?}, which the schema does not define")]
    UnknownHintField { field: String },
    #[error(
        "「{owner}」の表示条件が存在しない項目「{field}」を参照しています / the condition of {owner:?} refers to {field:?}, which the schema does not define"
    )]
    UnknownConditionField { owner: String, field: String },
    #[error("「{field}」の表示条件が循環しています / the visibility conditions around {field:?} form a cycle")]
    ConditionCycle { field: String },
    #[error(
        "項目「{field}」の型「{name}」は使えません / field {field:?} has unknown x-renkei-type {name:?}"
    )]
    UnknownRenkeiType { field: String, name: String },
    #[error("添付書類「{id}」の定義が不正です: {reason} / attachment {id:?} is invalid: {reason}")]
    InvalidAttachment { id: String, reason: String },
    #[error(
        "添付書類があるとき、最上位の項目名「attachments」は使えません / the top-level field name \"attachments\" is reserved when the form has attachments"
    )]
    ReservedAttachmentsName,
}

/// Escapes one JSON pointer segment (RFC 6901).
pub(crate) fn escape_segment(segment: &str) -> String {
    segment.replace('~', "~0").replace('/', "~1")
}

fn unescape_segment(segment: &str) -> String {
    segment.replace("~1", "/").replace("~0", "~")
}

/// The segments of a JSON pointer; `None` when it is not one (it must be empty or start
/// with `/`).
pub(crate) fn pointer_segments(pointer: &str) -> Option<Vec<String>> {
    if pointer.is_empty() {
        return Some(Vec::new());
    }
    let rest = pointer.strip_prefix('/')?;
    Some(rest.split('/').map(unescape_segment).collect())
}

/// Follows local `$ref`s (`#/$defs/name`, `#`) to the schema they name.
pub(crate) fn resolve<'a>(root: &'a Value, mut node: &'a Value) -> &'a Value {
    for _ in 0..MAX_DEPTH {
        let Some(reference) = node.get("$ref").and_then(Value::as_str) else {
            return node;
        };
        let Some(target) = reference
            .strip_prefix('#')
            .and_then(pointer_segments)
            .and_then(|segments| segments.iter().try_fold(root, |n, s| n.get(s.as_str())))
        else {
            return node;
        };
        node = target;
    }
    node
}

/// The subschema of the field at `pointer`, walking `properties` only.
pub(crate) fn field_schema<'a>(root: &'a Value, pointer: &str) -> Option<&'a Value> {
    let segments = pointer_segments(pointer)?;
    if segments.len() > MAX_DEPTH {
        return None;
    }
    let mut node = resolve(root, root);
    for segment in &segments {
        node = resolve(root, node.get("properties")?.get(segment.as_str())?);
    }
    Some(node)
}

/// The field an instance location belongs to: array indices (and whatever lies below an
/// array item) fold into the field that holds the array. `None` when the location is not
/// under any field of the schema.
pub(crate) fn field_of(root: &Value, instance_pointer: &str) -> Option<String> {
    let segments = pointer_segments(instance_pointer)?;
    let mut node = resolve(root, root);
    let mut field = String::new();
    for segment in &segments {
        let Some(next) = node.get("properties").and_then(|p| p.get(segment.as_str())) else {
            break;
        };
        node = resolve(root, next);
        field.push('/');
        field.push_str(&escape_segment(segment));
    }
    if field.is_empty() && !segments.is_empty() {
        return None;
    }
    Some(field)
}

/// Every field pointer the schema defines, parents before children.
pub(crate) fn all_fields(root: &Value) -> Vec<String> {
    fn walk(root: &Value, node: &Value, prefix: &str, depth: usize, out: &mut Vec<String>) {
        if depth >= MAX_DEPTH {
            return;
        }
        let Some(props) = resolve(root, node)
            .get("properties")
            .and_then(Value::as_object)
        else {
            return;
        };
        for (name, sub) in props {
            let pointer = format!("{prefix}/{}", escape_segment(name));
            out.push(pointer.clone());
            walk(root, sub, &pointer, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    walk(root, root, "", 0, &mut out);
    out
}

/// Whether `pointer` is `ancestor` or lies under it.
pub(crate) fn is_under(pointer: &str, ancestor: &str) -> bool {
    pointer == ancestor
        || (pointer.starts_with(ancestor) && pointer.as_bytes().get(ancestor.len()) == Some(&b'/'))
}

impl FormDefinition {
    /// The label of a field: its hint, else the schema's `title`, else its name.
    pub fn label(&self, field: &str) -> Text {
        if let Some(hint) = self.ui.fields.get(field) {
            return hint.label.clone();
        }
        let title = field_schema(&self.schema, field)
            .and_then(|s| s.get("title"))
            .and_then(Value::as_str);
        let name = pointer_segments(field)
            .and_then(|s| s.last().cloned())
            .unwrap_or_default();
        let text = title.map_or(name, str::to_string);
        Text::new(text.clone(), text)
    }

    /// Every field the schema defines, as JSON pointers, parents before children.
    pub fn fields(&self) -> Vec<String> {
        all_fields(&self.schema)
    }

    /// The fields whose values are sealed rather than stored: those the hints mark
    /// sensitive and every `my-number` field.
    pub fn sensitive_fields(&self) -> Vec<String> {
        all_fields(&self.schema)
            .into_iter()
            .filter(|f| {
                self.ui.fields.get(f).is_some_and(|h| h.sensitive)
                    || field_schema(&self.schema, f)
                        .and_then(RenkeiType::of_schema)
                        .is_some_and(RenkeiType::always_sensitive)
            })
            .collect()
    }

    /// Checks that the schema is a valid 2020-12 object schema and that the hints, steps,
    /// conditions and attachments all refer to things that exist. Every problem is reported,
    /// not just the first.
    pub fn check(&self) -> Result<(), Vec<DefinitionError>> {
        let mut errors = Vec::new();
        self.check_schema(&mut errors);
        let fields: BTreeSet<String> = all_fields(&self.schema).into_iter().collect();
        let known = |f: &str| fields.contains(f);

        let mut step_ids = BTreeSet::new();
        let mut placed = BTreeSet::new();
        for step in &self.ui.steps {
            if !step_ids.insert(step.id.as_str()) {
                errors.push(DefinitionError::DuplicateStep {
                    id: step.id.clone(),
                });
            }
            for field in &step.fields {
                if !known(field) {
                    errors.push(DefinitionError::UnknownStepField {
                        step: step.id.clone(),
                        field: field.clone(),
                    });
                } else if !placed.insert(field.as_str()) {
                    errors.push(DefinitionError::FieldInTwoSteps {
                        field: field.clone(),
                    });
                }
            }
            if let Some(cond) = &step.visible_when {
                if !known(&cond.field) {
                    errors.push(DefinitionError::UnknownConditionField {
                        owner: format!("step:{}", step.id),
                        field: cond.field.clone(),
                    });
                }
            }
        }
        for (field, hint) in &self.ui.fields {
            if !known(field) {
                errors.push(DefinitionError::UnknownHintField {
                    field: field.clone(),
                });
            }
            if let Some(cond) = &hint.visible_when {
                if !known(&cond.field) {
                    errors.push(DefinitionError::UnknownConditionField {
                        owner: field.clone(),
                        field: cond.field.clone(),
                    });
                }
            }
        }
        self.check_cycles(&mut errors);
        for field in &fields {
            if let Some(name) = field_schema(&self.schema, field)
                .and_then(|s| s.get("x-renkei-type"))
                .and_then(Value::as_str)
            {
                if RenkeiType::from_name(name).is_none() {
                    errors.push(DefinitionError::UnknownRenkeiType {
                        field: field.clone(),
                        name: name.to_string(),
                    });
                }
            }
        }
        self.check_attachments(&fields, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    fn check_schema(&self, errors: &mut Vec<DefinitionError>) {
        let Some(object) = self.schema.as_object() else {
            errors.push(DefinitionError::NotObjectSchema);
            return;
        };
        if let Some(found) = object.get("$schema") {
            if found.as_str() != Some(DIALECT) {
                errors.push(DefinitionError::WrongDialect {
                    found: found.to_string(),
                });
                return;
            }
        }
        if object.get("type").and_then(Value::as_str) != Some("object") {
            errors.push(DefinitionError::NotObjectSchema);
        }
        if let Err(e) = jsonschema::draft202012::meta::validate(&self.schema) {
            errors.push(DefinitionError::InvalidSchema {
                location: e.instance_path().as_str().to_string(),
                message: e.to_string(),
            });
            return;
        }
        if let Err(e) = super::validate::compile_schema(&self.schema) {
            errors.push(DefinitionError::InvalidSchema {
                location: e.instance_path().as_str().to_string(),
                message: e.to_string(),
            });
        }
    }

    /// The conditions that decide whether `field` is shown: its own, its ancestors' and
    /// those of the step holding it or an ancestor.
    pub(crate) fn conditions_of(&self, field: &str) -> Vec<&Condition> {
        let mut out = Vec::new();
        for (owner, hint) in &self.ui.fields {
            if let Some(cond) = &hint.visible_when {
                if is_under(field, owner) {
                    out.push(cond);
                }
            }
        }
        for step in &self.ui.steps {
            if let Some(cond) = &step.visible_when {
                if step.fields.iter().any(|f| is_under(field, f)) {
                    out.push(cond);
                }
            }
        }
        out
    }

    fn check_cycles(&self, errors: &mut Vec<DefinitionError>) {
        // A field depends on the fields its conditions read; a cycle would make visibility
        // undefined, so each chain must end within the number of conditioned fields.
        let owners: Vec<&str> = self
            .ui
            .fields
            .iter()
            .filter(|(_, h)| h.visible_when.is_some())
            .map(|(f, _)| f.as_str())
            .chain(
                self.ui
                    .steps
                    .iter()
                    .filter(|s| s.visible_when.is_some())
                    .flat_map(|s| s.fields.iter().map(String::as_str)),
            )
            .collect();
        for start in &owners {
            let mut frontier: Vec<String> = vec![start.to_string()];
            let mut seen = BTreeSet::new();
            let mut cyclic = false;
            while let Some(field) = frontier.pop() {
                for cond in self.conditions_of(&field) {
                    if is_under(&cond.field, start) {
                        cyclic = true;
                    } else if seen.insert(cond.field.clone()) {
                        frontier.push(cond.field.clone());
                    }
                }
                if cyclic {
                    break;
                }
            }
            if cyclic {
                errors.push(DefinitionError::ConditionCycle {
                    field: start.to_string(),
                });
            }
        }
    }

    fn check_attachments(&self, fields: &BTreeSet<String>, errors: &mut Vec<DefinitionError>) {
        let mut ids = BTreeSet::new();
        for req in &self.attachments {
            let invalid = |reason: &str| DefinitionError::InvalidAttachment {
                id: req.id.clone(),
                reason: reason.to_string(),
            };
            if req.id.is_empty() || req.id.contains('/') {
                errors.push(invalid("id must be non-empty and contain no '/'"));
            }
            if !ids.insert(req.id.as_str()) {
                errors.push(invalid("duplicate id"));
            }
            if req.max_bytes == 0 {
                errors.push(invalid("max_bytes must be positive"));
            }
            if req.media_types.is_empty() {
                errors.push(invalid("media_types is empty"));
            }
            for t in &req.media_types {
                if !super::attachment::is_sniffable(t) {
                    errors.push(invalid(&format!("media type {t:?} cannot be recognised")));
                }
            }
        }
        if !self.attachments.is_empty() && fields.contains("/attachments") {
            errors.push(DefinitionError::ReservedAttachmentsName);
        }
    }
}

impl FormDefinition {
    /// Whether the schema defines the field a JSON pointer names.
    pub fn has_field(&self, pointer: &str) -> bool {
        field_schema(&self.schema, pointer).is_some()
    }
}
