//! The stored shape written straight to JSON text, for the backends that keep the text
//! (SQLite writes every entity and every history instance so). It writes exactly what
//! serde_json writes from the `encoding` module, which stays the one source of the
//! `Value` forms; a property test holds the two to the same bytes.
//!
//! It exists for speed: serde_json escapes a string one byte at a time through a
//! table, and a stored document is mostly expanded IRIs and stamps, which need no
//! escape. Looking at sixteen bytes at a time and copying the string whole halved the
//! cost of a batch-upserted entity's document (36 k to 17 k instructions, callgrind),
//! which had been a fifth of all the work renkei does for that entity.

use super::{
    attribute_stamps, Attribute, AttributeValue, Attributes, Entity, EntityStamps,
    RelationshipObject, StampText,
};
use chrono::{DateTime, Utc};
use ngsi_ld::model::iri;
use serde_json::Value;
use std::fmt::Write as _;

/// How attribute names are written: whole (what `encoding` writes), or shortened by
/// their prefix (see [`super::entity_doc_text_shortened`]).
#[derive(Clone, Copy, PartialEq)]
pub enum Names {
    Whole,
    Shortened,
}

/// The text of `entity`'s stored document.
pub fn entity(entity: &Entity, names: Names) -> String {
    let mut out = String::with_capacity(256 + 192 * entity.attributes.len());
    out.push_str("{\"id\":");
    string(&mut out, &entity.id);
    out.push_str(",\"type\":");
    strings(&mut out, &entity.types);
    if !entity.scopes.is_empty() {
        out.push_str(",\"scope\":");
        strings(&mut out, &entity.scopes);
    }
    stamp_member(&mut out, "createdAt", entity.created_at.as_ref());
    stamp_member(&mut out, "modifiedAt", entity.modified_at.as_ref());
    out.push_str(",\"attrs\":");
    attributes(
        &mut out,
        &entity.attributes,
        Some(EntityStamps::of(entity)),
        names,
    );
    out.push('}');
    out
}

/// The text of one attribute instance; `own_keys` and `entity` as
/// `encoding::AttributeDoc` has them.
pub fn attribute(attribute: &Attribute, own_keys: bool, entity: Option<EntityStamps>) -> String {
    let mut out = String::with_capacity(128);
    write_attribute(&mut out, attribute, own_keys, entity, Names::Whole);
    out
}

fn attributes(
    out: &mut String,
    attributes: &Attributes,
    entity: Option<EntityStamps>,
    names: Names,
) {
    out.push('{');
    for (i, (name, instances)) in attributes.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        attribute_name(out, name, names);
        out.push_str(":[");
        for (j, instance) in instances.iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            write_attribute(out, instance, true, entity, names);
        }
        out.push(']');
    }
    out.push('}');
}

/// An attribute's name, shortened if asked and it can be: the number of its prefix as
/// a character (U+0001 or U+0002), then the rest. A name needing an escape after its
/// prefix is written whole (the rest is copied without one).
fn attribute_name(out: &mut String, name: &str, names: Names) {
    match iri::shorten(name)
        .filter(|(_, rest)| names == Names::Shortened && !needs_escape(rest.as_bytes()))
    {
        Some((number, rest)) => {
            out.push_str("\"\\u000");
            out.push(char::from(b'0' + number));
            out.push_str(rest);
            out.push('"');
        }
        None => string(out, name),
    }
}

fn write_attribute(
    out: &mut String,
    attribute: &Attribute,
    own_keys: bool,
    entity: Option<EntityStamps>,
    names: Names,
) {
    out.push_str("{\"type\":");
    string(out, attribute.value.kind_name());
    match &attribute.value {
        AttributeValue::Property(v) | AttributeValue::GeoProperty(v) => {
            out.push_str(",\"value\":");
            value(out, v);
        }
        AttributeValue::Relationship {
            object,
            object_type,
        } => {
            out.push_str(",\"object\":");
            match object {
                RelationshipObject::One(o) => string(out, o),
                RelationshipObject::Many(os) => strings(out, os),
            }
            if let Some(types) = object_type {
                out.push_str(",\"objectType\":");
                strings(out, types);
            }
        }
        AttributeValue::LanguageProperty(map) => {
            out.push_str(",\"languageMap\":");
            object(out, map);
        }
        AttributeValue::VocabProperty(vocab) => {
            out.push_str(",\"vocab\":");
            strings(out, vocab);
        }
        AttributeValue::ListProperty(list) => {
            out.push_str(",\"valueList\":");
            array(out, list);
        }
        AttributeValue::ListRelationship(list) => {
            out.push_str(",\"objectList\":");
            strings(out, list);
        }
        AttributeValue::JsonProperty(v) => {
            out.push_str(",\"json\":");
            value(out, v);
        }
    }
    if let Some(d) = attribute.dataset_id.as_ref().filter(|_| own_keys) {
        out.push_str(",\"datasetId\":");
        string(out, d);
    }
    stamp_member(
        out,
        "observedAt",
        attribute.observed_at.as_ref().filter(|_| own_keys),
    );
    if let Some(u) = &attribute.unit_code {
        out.push_str(",\"unitCode\":");
        string(out, u);
    }
    if own_keys {
        for (name, stamp) in attribute_stamps(attribute, entity) {
            match stamp {
                StampText::Left => {}
                StampText::Null => {
                    out.push_str(",\"");
                    out.push_str(name);
                    out.push_str("\":null");
                }
                StampText::At(t) => stamp_member(out, name, Some(t)),
            }
        }
    }
    if !attribute.sub_attributes.is_empty() {
        out.push_str(",\"sub\":");
        attributes(out, &attribute.sub_attributes, entity, names);
    }
    out.push('}');
}

/// `,"name":"stamp"` when there is a stamp. A stamp's characters need no escape.
fn stamp_member(out: &mut String, name: &str, time: Option<&DateTime<Utc>>) {
    if let Some(time) = time {
        out.push_str(",\"");
        out.push_str(name);
        out.push_str("\":\"");
        out.push_str(ngsi_ld::time::Rfc3339::micros(time).as_str());
        out.push('"');
    }
}

fn value(out: &mut String, v: &Value) {
    match v {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        // `Number`'s `Display` is what serde_json writes (itoa, ryu).
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => string(out, s),
        Value::Array(items) => array(out, items),
        Value::Object(map) => object(out, map),
    }
}

fn array(out: &mut String, items: &[Value]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        value(out, item);
    }
    out.push(']');
}

fn object<'a>(out: &mut String, members: impl IntoIterator<Item = (&'a String, &'a Value)>) {
    out.push('{');
    for (i, (name, member)) in members.into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, name);
        out.push(':');
        value(out, member);
    }
    out.push('}');
}

fn strings(out: &mut String, items: &[String]) {
    out.push('[');
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        string(out, item);
    }
    out.push(']');
}

/// `s` as a JSON string: copied whole when nothing in it needs an escape, else
/// escaped by serde_json (rare: a quote, a backslash or a control character).
fn string(out: &mut String, s: &str) {
    if needs_escape(s.as_bytes()) {
        // Writing a `&str` as JSON cannot fail.
        out.push_str(&serde_json::to_string(s).unwrap_or_default());
    } else {
        out.push('"');
        out.push_str(s);
        out.push('"');
    }
}

/// Whether `bytes` hold one JSON must escape: `"`, `\` or a control character. Each
/// sixteen-byte chunk is tested whole, without a branch per byte, which the compiler
/// turns into vector compares.
fn needs_escape(bytes: &[u8]) -> bool {
    let any_escape = |chunk: &[u8]| {
        chunk.iter().fold(false, |any, &b| {
            any | (b < 0x20) | (b == b'"') | (b == b'\\')
        })
    };
    let mut chunks = bytes.chunks_exact(16);
    chunks.by_ref().any(any_escape) || any_escape(chunks.remainder())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_exactly_what_serde_json_escapes() {
        for s in [
            "",
            "plain",
            "https://uri.etsi.org/ngsi-ld/default-context/capacity",
            "静岡県焼津市本町1丁目",
            "a\"b",
            "back\\slash",
            "tab\tand newline\n",
            "\u{1}\u{1f}\u{7f}",
            "exactly sixteen!",
            "sixteen bytes + \"",
        ] {
            let mut out = String::new();
            string(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
    }
}
