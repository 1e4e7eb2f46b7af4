//! `pick` and `omit` projections (ETSI GS CIM 009 V1.8 clause 4.21): which members of
//! each entity a response shows. Both parameters are comma-separated entity member
//! names (`id`, `type`, attribute names); a Relationship name may carry a braced list
//! (`locatedAt{id,name}`) that projects the entity it links to when linked entities
//! are retrieved (clause 4.5.23). Names are kept as the client wrote them, because
//! expanding them with the `@context` is the caller's business.
use crate::NgsiError;

/// One member named by `pick` or `omit`, with the projection of its linked entity.
#[derive(Debug, Clone, PartialEq)]
pub struct Member {
    pub name: String,
    /// The braced list after a Relationship name, applied to the linked entity.
    pub nested: Option<Vec<Member>>,
}

/// Which members of the entity to show.
#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    All,
    Pick(Vec<Member>),
    Omit(Vec<Member>),
}

impl Projection {
    /// Reads the `pick` and `omit` query parameters (already percent-decoded).
    pub fn parse(pick: Option<&str>, omit: Option<&str>) -> Result<Projection, NgsiError> {
        match (pick, omit) {
            (Some(_), Some(_)) => Err(NgsiError::bad_request_data(
                "pick and omit cannot be used together",
            )),
            (Some(list), None) => parse_list("pick", list).map(Projection::Pick),
            (None, Some(list)) => parse_list("omit", list).map(Projection::Omit),
            (None, None) => Ok(Projection::All),
        }
    }

    /// Whether the entity member `name` (as written, or `id` / `type`) is shown.
    /// An omitted name followed by braces only projects the linked entity: the
    /// relationship itself stays.
    pub fn shows(&self, name: &str) -> bool {
        match self {
            Projection::All => true,
            Projection::Pick(members) => members.iter().any(|m| m.name == name),
            Projection::Omit(members) => {
                !members.iter().any(|m| m.name == name && m.nested.is_none())
            }
        }
    }

    /// The projection of the entity linked through the relationship `name`: the
    /// braced list after it, else everything.
    pub fn linked(&self, name: &str) -> Projection {
        let nested = |members: &[Member]| {
            members
                .iter()
                .find(|m| m.name == name)
                .and_then(|m| m.nested.clone())
        };
        match self {
            Projection::All => Projection::All,
            Projection::Pick(members) => nested(members).map_or(Projection::All, Projection::Pick),
            Projection::Omit(members) => nested(members).map_or(Projection::All, Projection::Omit),
        }
    }

    /// The same projection with every attribute name passed through `f` (normally
    /// `@context` expansion); `id` and `type` are entity members and stay as they are.
    pub fn map_names(&self, f: &dyn Fn(&str) -> String) -> Projection {
        fn map(members: &[Member], f: &dyn Fn(&str) -> String) -> Vec<Member> {
            members
                .iter()
                .map(|m| Member {
                    name: if matches!(m.name.as_str(), "id" | "type") {
                        m.name.clone()
                    } else {
                        f(&m.name)
                    },
                    nested: m.nested.as_deref().map(|n| map(n, f)),
                })
                .collect()
        }
        match self {
            Projection::All => Projection::All,
            Projection::Pick(members) => Projection::Pick(map(members, f)),
            Projection::Omit(members) => Projection::Omit(map(members, f)),
        }
    }
}

/// Characters a member name may hold besides letters and digits: enough for terms,
/// compact IRIs and absolute IRIs, but not the separators of the syntax or of `q`.
fn is_name_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | ':' | '/' | '#' | '@' | '%' | '~' | '+')
}

/// Parses `a,b{c,d{e}},f` into members, refusing empty names, stray or unbalanced
/// braces and characters outside names.
fn parse_list(parameter: &str, text: &str) -> Result<Vec<Member>, NgsiError> {
    let chars: Vec<char> = text.chars().collect();
    let mut pos = 0;
    let members = parse_members(parameter, &chars, &mut pos, 0)?;
    match chars.get(pos) {
        None => Ok(members),
        Some(c) => Err(syntax(
            parameter,
            pos,
            &format!("unexpected {c:?} (a '}}' without its '{{'?)"),
        )),
    }
}

fn syntax(parameter: &str, pos: usize, what: &str) -> NgsiError {
    NgsiError::bad_request_data(format!(
        "invalid {parameter}: {what} at character {}",
        pos + 1
    ))
}

/// Braces nest at most this deep: each level is one more linked entity hop, and a
/// deeper expression is more likely an attack than a query.
const MAX_DEPTH: usize = 16;

fn parse_members(
    parameter: &str,
    chars: &[char],
    pos: &mut usize,
    depth: usize,
) -> Result<Vec<Member>, NgsiError> {
    if depth > MAX_DEPTH {
        return Err(syntax(parameter, *pos, "braces nested too deeply"));
    }
    let mut members: Vec<Member> = Vec::new();
    loop {
        let start = *pos;
        while chars.get(*pos).is_some_and(|c| is_name_char(*c)) {
            *pos += 1;
        }
        let name: String = chars.get(start..*pos).unwrap_or_default().iter().collect();
        if name.is_empty() {
            return Err(match chars.get(*pos) {
                None | Some(',') | Some('}') => syntax(parameter, *pos, "an empty member name"),
                Some(c) => syntax(parameter, *pos, &format!("{c:?} is not allowed")),
            });
        }
        let nested = if chars.get(*pos) == Some(&'{') {
            *pos += 1;
            let inner = parse_members(parameter, chars, pos, depth + 1)?;
            if chars.get(*pos) != Some(&'}') {
                return Err(syntax(parameter, *pos, "a '{' is not closed"));
            }
            *pos += 1;
            Some(inner)
        } else {
            None
        };
        match members.iter_mut().find(|m| m.name == name) {
            // A repeated name adds nothing, but a braced list it brings is kept.
            Some(existing) => {
                if existing.nested.is_none() {
                    existing.nested = nested;
                }
            }
            None => members.push(Member { name, nested }),
        }
        match chars.get(*pos) {
            Some(',') => *pos += 1,
            None | Some('}') => return Ok(members),
            Some(c) => return Err(syntax(parameter, *pos, &format!("{c:?} is not allowed"))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(names: &[&str]) -> Vec<Member> {
        names
            .iter()
            .map(|s| Member {
                name: s.to_string(),
                nested: None,
            })
            .collect()
    }

    #[test]
    fn neither_means_all() {
        assert_eq!(Projection::parse(None, None).unwrap(), Projection::All);
    }

    #[test]
    fn pick_and_omit_lists() {
        assert_eq!(
            Projection::parse(Some("id,type,name,https://example.org/speed"), None).unwrap(),
            Projection::Pick(flat(&["id", "type", "name", "https://example.org/speed"]))
        );
        assert_eq!(
            Projection::parse(None, Some("location,name,location")).unwrap(),
            Projection::Omit(flat(&["location", "name"]))
        );
    }

    #[test]
    fn braces_project_linked_entities() {
        let p = Projection::parse(Some("id,locatedAt{id,name,isInCountry{description}}"), None)
            .unwrap();
        assert!(p.shows("id") && p.shows("locatedAt") && !p.shows("type"));
        let city = p.linked("locatedAt");
        assert!(city.shows("name") && !city.shows("locatedAt"));
        assert_eq!(
            city.linked("isInCountry"),
            Projection::Pick(flat(&["description"]))
        );
        assert_eq!(p.linked("id"), Projection::All);
    }

    #[test]
    fn omit_with_braces_keeps_the_relationship() {
        let p = Projection::parse(None, Some("type,locatedAt{name}")).unwrap();
        assert!(!p.shows("type") && p.shows("locatedAt") && p.shows("id"));
        assert!(!p.linked("locatedAt").shows("name"));
        assert!(p.linked("locatedAt").shows("type"));
    }

    #[test]
    fn names_are_mapped_except_core_members() {
        let p = Projection::parse(Some("id,name{type,x}"), None).unwrap();
        let mapped = p.map_names(&|n| format!("https://ex.org/{n}"));
        assert!(mapped.shows("id") && mapped.shows("https://ex.org/name"));
        let linked = mapped.linked("https://ex.org/name");
        assert!(linked.shows("type") && linked.shows("https://ex.org/x"));
    }

    #[test]
    fn both_at_once_is_refused() {
        let err = Projection::parse(Some("a"), Some("b")).unwrap_err();
        assert_eq!(err.detail, "pick and omit cannot be used together");
        assert_eq!(err.problem, crate::ProblemType::BadRequestData);
    }

    #[test]
    fn malformed_expressions_are_refused() {
        for (pick, expected) in [
            ("", "invalid pick: an empty member name at character 1"),
            ("a,,b", "invalid pick: an empty member name at character 3"),
            ("a,", "invalid pick: an empty member name at character 3"),
            ("a, b", "invalid pick: ' ' is not allowed at character 3"),
            ("id;name", "invalid pick: ';' is not allowed at character 3"),
            (
                "id,locatedAt{name",
                "invalid pick: a '{' is not closed at character 18",
            ),
            (
                "id,locatedAt{{name}",
                "invalid pick: '{' is not allowed at character 14",
            ),
            (
                "id,locatedAt{,name}",
                "invalid pick: an empty member name at character 14",
            ),
            (
                "id,locatedAt{}",
                "invalid pick: an empty member name at character 14",
            ),
            (
                "id}",
                "invalid pick: unexpected '}' (a '}' without its '{'?) at character 3",
            ),
        ] {
            assert_eq!(
                Projection::parse(Some(pick), None).unwrap_err().detail,
                expected,
                "{pick:?}"
            );
        }
        assert_eq!(
            Projection::parse(None, Some(",a")).unwrap_err().detail,
            "invalid omit: an empty member name at character 1"
        );
    }

    #[test]
    fn deep_nesting_is_refused_without_overflow() {
        let deep = format!("{}x{}", "a{".repeat(10_000), "}".repeat(10_000));
        assert!(Projection::parse(Some(&deep), None).is_err());
    }

    mod properties {
        use super::*;
        use proptest::prelude::*;

        proptest! {
            #[test]
            fn arbitrary_text_never_panics(pick in any::<Option<String>>(), omit in any::<Option<String>>()) {
                let _ = Projection::parse(pick.as_deref(), omit.as_deref());
            }

            #[test]
            fn joined_names_come_back(names in prop::collection::vec("[A-Za-z:/._-]{1,10}", 1..6)) {
                let mut unique: Vec<String> = Vec::new();
                for n in &names {
                    if !unique.contains(n) {
                        unique.push(n.clone());
                    }
                }
                let expected: Vec<&str> = unique.iter().map(String::as_str).collect();
                prop_assert_eq!(
                    Projection::parse(Some(&names.join(",")), None),
                    Ok(Projection::Pick(flat(&expected)))
                );
            }
        }
    }
}
