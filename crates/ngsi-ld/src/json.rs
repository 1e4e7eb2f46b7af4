//! JSON as the entity decoder reads it. [`JsonNode`] is the little the decoder asks
//! of a parsed value, so that one decoder serves both serde_json's `Value` and
//! [`JsonRef`], a tree that borrows its strings from the request body.
//!
//! Why a second tree: a batch of a thousand entities parsed into `Value` allocates
//! every member name and string and builds an ordered hash map per object (SipHash
//! per member). `JsonRef` keeps member names and strings as slices of the body where
//! no escape forces a copy, and an object is one vector. Only the values the model
//! keeps (a Property's `value`, a geometry) become `Value`s, as they did before.
//!
//! `JsonRef` means what `Value` means: [`JsonRef::to_value`] of a parsed text equals
//! `serde_json::from_slice::<Value>` of it, duplicate member names included (the last
//! value wins, at the place of the first). A property test holds the two together.

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

/// The reading of a parsed JSON value the decoder needs.
pub trait JsonNode: fmt::Display + Sized {
    /// The members of an object, in document order.
    type Members<'a>: Iterator<Item = (&'a str, &'a Self)>
    where
        Self: 'a;

    fn as_str(&self) -> Option<&str>;
    fn as_array(&self) -> Option<&[Self]>;
    fn members(&self) -> Option<Self::Members<'_>>;
    fn is_null(&self) -> bool;
    /// The value as serde_json's, for the model to keep.
    fn to_value(&self) -> Value;

    fn is_object(&self) -> bool {
        self.members().is_some()
    }

    fn is_string(&self) -> bool {
        self.as_str().is_some()
    }

    /// The member `name` of an object.
    fn get(&self, name: &str) -> Option<&Self> {
        self.members()?.find_map(|(k, v)| (k == name).then_some(v))
    }
}

type ValueMembers<'a> =
    std::iter::Map<serde_json::map::Iter<'a>, fn((&'a String, &'a Value)) -> (&'a str, &'a Value)>;

impl JsonNode for Value {
    type Members<'a> = ValueMembers<'a>;

    fn as_str(&self) -> Option<&str> {
        Value::as_str(self)
    }

    fn as_array(&self) -> Option<&[Value]> {
        Value::as_array(self).map(Vec::as_slice)
    }

    fn members(&self) -> Option<ValueMembers<'_>> {
        fn as_pair<'a>((k, v): (&'a String, &'a Value)) -> (&'a str, &'a Value) {
            (k, v)
        }
        Value::as_object(self).map(|obj| obj.iter().map(as_pair as fn(_) -> _))
    }

    fn is_null(&self) -> bool {
        Value::is_null(self)
    }

    fn to_value(&self) -> Value {
        self.clone()
    }

    /// Entity and attribute objects have few members, and going through them costs
    /// less than hashing the name (serde_json's ordered map hashes with SipHash).
    fn get(&self, name: &str) -> Option<&Value> {
        const SCAN_AT_MOST: usize = 16;
        let obj = Value::as_object(self)?;
        if obj.len() <= SCAN_AT_MOST {
            obj.iter().find_map(|(k, v)| (k == name).then_some(v))
        } else {
            obj.get(name)
        }
    }
}

/// A JSON value whose strings and member names borrow from the text it was parsed
/// from, unless an escape made them differ from it.
#[derive(Debug, Clone, PartialEq)]
pub enum JsonRef<'a> {
    Null,
    Bool(bool),
    Number(Number),
    String(Cow<'a, str>),
    Array(Vec<JsonRef<'a>>),
    /// Members in document order, each name once.
    Object(Vec<(Cow<'a, str>, JsonRef<'a>)>),
}

impl<'a> JsonRef<'a> {
    /// Parses JSON text, with serde_json's grammar, errors and nesting limit.
    ///
    /// The text is checked to be UTF-8 once, with SIMD, and then read as a `str`:
    /// serde_json reading bytes checks each string on its own, which cost a quarter of
    /// the parse of an entity with Japanese names. Text that is not UTF-8 is read as
    /// bytes after all, for serde_json's own error with its line and column.
    pub fn parse(text: &'a [u8]) -> serde_json::Result<JsonRef<'a>> {
        match simdutf8::basic::from_utf8(text) {
            Ok(text) => serde_json::from_str(text),
            Err(_) => serde_json::from_slice(text),
        }
    }
}

type RefMembers<'a, 'b> = std::iter::Map<
    std::slice::Iter<'a, (Cow<'b, str>, JsonRef<'b>)>,
    fn(&'a (Cow<'b, str>, JsonRef<'b>)) -> (&'a str, &'a JsonRef<'b>),
>;

impl<'b> JsonNode for JsonRef<'b> {
    type Members<'a>
        = RefMembers<'a, 'b>
    where
        Self: 'a;

    fn as_str(&self) -> Option<&str> {
        match self {
            JsonRef::String(s) => Some(s),
            _ => None,
        }
    }

    fn as_array(&self) -> Option<&[JsonRef<'b>]> {
        match self {
            JsonRef::Array(items) => Some(items),
            _ => None,
        }
    }

    fn members(&self) -> Option<RefMembers<'_, 'b>> {
        fn as_pair<'a, 'b>((k, v): &'a (Cow<'b, str>, JsonRef<'b>)) -> (&'a str, &'a JsonRef<'b>) {
            (k, v)
        }
        match self {
            JsonRef::Object(members) => Some(members.iter().map(as_pair as fn(_) -> _)),
            _ => None,
        }
    }

    fn is_null(&self) -> bool {
        matches!(self, JsonRef::Null)
    }

    fn to_value(&self) -> Value {
        match self {
            JsonRef::Null => Value::Null,
            JsonRef::Bool(b) => Value::Bool(*b),
            JsonRef::Number(n) => Value::Number(n.clone()),
            JsonRef::String(s) => Value::String(s.as_ref().to_owned()),
            JsonRef::Array(items) => Value::Array(items.iter().map(JsonRef::to_value).collect()),
            JsonRef::Object(members) => {
                let mut obj = Map::with_capacity(members.len());
                for (k, v) in members {
                    obj.insert(k.as_ref().to_owned(), v.to_value());
                }
                Value::Object(obj)
            }
        }
    }
}

/// As serde_json writes the same value (errors quote the offending JSON).
impl fmt::Display for JsonRef<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.to_value(), f)
    }
}

impl<'de> Deserialize<'de> for JsonRef<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(RefVisitor)
    }
}

struct RefVisitor;

impl<'de> Visitor<'de> for RefVisitor {
    type Value = JsonRef<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_unit<E>(self) -> Result<Self::Value, E> {
        Ok(JsonRef::Null)
    }

    fn visit_bool<E>(self, b: bool) -> Result<Self::Value, E> {
        Ok(JsonRef::Bool(b))
    }

    fn visit_u64<E>(self, n: u64) -> Result<Self::Value, E> {
        Ok(JsonRef::Number(n.into()))
    }

    fn visit_i64<E>(self, n: i64) -> Result<Self::Value, E> {
        Ok(JsonRef::Number(n.into()))
    }

    fn visit_f64<E>(self, n: f64) -> Result<Self::Value, E> {
        // As serde_json's `Value`: a float JSON text can hold is always finite.
        Ok(Number::from_f64(n).map_or(JsonRef::Null, JsonRef::Number))
    }

    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Self::Value, E> {
        Ok(JsonRef::String(Cow::Borrowed(s)))
    }

    fn visit_str<E>(self, s: &str) -> Result<Self::Value, E> {
        Ok(JsonRef::String(Cow::Owned(s.to_owned())))
    }

    fn visit_string<E>(self, s: String) -> Result<Self::Value, E> {
        Ok(JsonRef::String(Cow::Owned(s)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(JsonRef::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut members: Vec<(Cow<'de, str>, JsonRef<'de>)> = Vec::new();
        while let Some(MemberName(name)) = map.next_key()? {
            let value = map.next_value()?;
            members.push((name, value));
        }
        Ok(JsonRef::Object(without_repeated_names(members)))
    }
}

/// Objects up to this many members look for a repeated name by comparing each pair;
/// larger ones through a hash set, so that a hostile object stays linear.
const PAIRWISE_AT_MOST: usize = 16;

/// The members with each name once, as serde_json's ordered map keeps them: the last
/// value, at the place of the first.
fn without_repeated_names<'de>(
    mut members: Vec<(Cow<'de, str>, JsonRef<'de>)>,
) -> Vec<(Cow<'de, str>, JsonRef<'de>)> {
    let repeated = if members.len() <= PAIRWISE_AT_MOST {
        (1..members.len()).any(|i| members[..i].iter().any(|(k, _)| *k == members[i].0))
    } else {
        let mut seen = std::collections::HashSet::with_capacity(members.len());
        !members.iter().all(|(k, _)| seen.insert(k.as_ref()))
    };
    if !repeated {
        return members;
    }
    let mut kept: Vec<(Cow<'de, str>, JsonRef<'de>)> = Vec::with_capacity(members.len());
    let mut place: HashMap<Cow<'de, str>, usize> = HashMap::with_capacity(members.len());
    for (name, value) in members.drain(..) {
        match place.get(&name) {
            Some(&i) => kept[i].1 = value,
            None => {
                place.insert(name.clone(), kept.len());
                kept.push((name, value));
            }
        }
    }
    kept
}

/// A member name, borrowed from the text when it has no escape.
struct MemberName<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for MemberName<'de> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct NameVisitor;
        impl<'de> Visitor<'de> for NameVisitor {
            type Value = MemberName<'de>;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a member name")
            }

            fn visit_borrowed_str<E: de::Error>(self, s: &'de str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Borrowed(s)))
            }

            fn visit_str<E: de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(s.to_owned())))
            }

            fn visit_string<E: de::Error>(self, s: String) -> Result<Self::Value, E> {
                Ok(MemberName(Cow::Owned(s)))
            }
        }
        deserializer.deserialize_str(NameVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::json;

    fn parsed(text: &str) -> JsonRef<'_> {
        JsonRef::parse(text.as_bytes()).unwrap()
    }

    #[test]
    fn strings_and_names_borrow_unless_escaped() {
        let text = r#"{"name": "焼津", "esc\"aped": "a\nb"}"#;
        let JsonRef::Object(members) = parsed(text) else {
            panic!("not an object")
        };
        assert!(matches!(members[0].0, Cow::Borrowed("name")));
        assert!(matches!(
            members[0].1,
            JsonRef::String(Cow::Borrowed("焼津"))
        ));
        assert!(matches!(&members[1].0, Cow::Owned(k) if k == "esc\"aped"));
        assert!(matches!(&members[1].1, JsonRef::String(Cow::Owned(v)) if v == "a\nb"));
    }

    #[test]
    fn a_repeated_name_keeps_the_last_value_at_the_first_place() {
        let text = r#"{"a": 1, "b": 2, "a": 3}"#;
        let expected: Value = serde_json::from_str(text).unwrap();
        assert_eq!(parsed(text).to_value(), expected);
        assert_eq!(parsed(text).to_value().to_string(), r#"{"a":3,"b":2}"#);
        // Past the pairwise limit too.
        let many: Vec<String> = (0..40).map(|i| format!("\"k{}\": {i}", i % 30)).collect();
        let text = format!("{{{}}}", many.join(","));
        let expected: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed(&text).to_value(), expected);
        assert_eq!(parsed(&text).members().unwrap().count(), 30);
    }

    #[test]
    fn reads_like_value() {
        let value = json!({"id": "urn:x", "n": [1, -2, 2.5, null, true], "o": {"k": "v"}});
        let text = value.to_string();
        let tree = parsed(&text);
        assert_eq!(tree.to_string(), text);
        assert_eq!(
            JsonNode::get(&tree, "id").and_then(JsonNode::as_str),
            Some("urn:x")
        );
        assert_eq!(
            JsonNode::get(&value, "id").and_then(JsonNode::as_str),
            Some("urn:x")
        );
        assert_eq!(
            tree.get("n").and_then(JsonNode::as_array).map(<[_]>::len),
            Some(5)
        );
        assert!(tree.get("o").is_some_and(JsonNode::is_object));
        assert!(tree.get("missing").is_none());
        assert!(JsonRef::parse(b"{\"a\": }").is_err());
    }

    #[test]
    fn errors_and_depth_limit_are_serde_jsons() {
        let bad: [&[u8]; 6] = [
            b"{\"a\": 1,}",
            b"[1 2]",
            b"\"\\x\"",
            b"tru",
            b"{\"name\": \"\xe7\x84\"}",
            b"[\"ok\", \xff]",
        ];
        for bad in bad {
            let ours = JsonRef::parse(bad).unwrap_err().to_string();
            let theirs = serde_json::from_slice::<Value>(bad)
                .unwrap_err()
                .to_string();
            assert_eq!(ours, theirs, "{}", String::from_utf8_lossy(bad));
        }
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(JsonRef::parse(deep.as_bytes()).is_err());
    }

    /// JSON values with few distinct member names (so that objects repeat some),
    /// strings with escapes and non-ASCII, and every kind of number.
    fn any_json_text() -> impl Strategy<Value = String> {
        let leaf = prop_oneof![
            Just("null".to_owned()),
            any::<bool>().prop_map(|b| b.to_string()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            any::<f64>()
                .prop_filter("finite", |f| f.is_finite())
                .prop_map(|f| Value::from(f).to_string()),
            "[a-z\"\\\\\n\u{1}é焼]{0,8}".prop_map(|s| Value::String(s).to_string()),
        ];
        leaf.prop_recursive(4, 48, 6, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6)
                    .prop_map(|items| format!("[{}]", items.join(","))),
                prop::collection::vec(("[ab\"é]{1,2}", inner), 0..24).prop_map(|members| {
                    let members: Vec<String> = members
                        .into_iter()
                        .map(|(k, v)| format!("{}:{v}", Value::String(k)))
                        .collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        })
    }

    /// Whether the tree holds the members `value` holds, in its order, each once
    /// (`to_value` alone would hide a repeated name: the map it builds drops it).
    fn same_members(tree: &JsonRef, value: &Value) -> bool {
        match (tree.as_array(), JsonNode::as_array(value)) {
            (Some(a), Some(b)) => {
                return a.len() == b.len() && a.iter().zip(b).all(|(a, b)| same_members(a, b))
            }
            (None, None) => {}
            _ => return false,
        }
        match (tree.members(), JsonNode::members(value)) {
            (Some(a), Some(b)) => {
                let (a, b): (Vec<_>, Vec<_>) = (a.collect(), b.collect());
                a.len() == b.len()
                    && a.iter()
                        .zip(&b)
                        .all(|((ka, va), (kb, vb))| ka == kb && same_members(va, vb))
            }
            (None, None) => tree.to_value() == *value,
            _ => false,
        }
    }

    proptest! {
        #[test]
        fn to_value_is_what_serde_json_parses(text in any_json_text()) {
            let expected: Value = serde_json::from_str(&text).unwrap();
            let tree = JsonRef::parse(text.as_bytes()).unwrap();
            prop_assert!(same_members(&tree, &expected), "{}", text);
            prop_assert_eq!(tree.to_value(), expected.clone());
            prop_assert_eq!(tree.to_string(), expected.to_string());
        }
    }
}
