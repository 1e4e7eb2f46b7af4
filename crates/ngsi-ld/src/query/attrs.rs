//! `pick` and `omit` projections (ETSI GS CIM 009 V1.8 clause 4.21): which attributes
//! of each entity a response shows. Both parameters are comma-separated attribute
//! names; `id` and `type` may be among them and are kept as names, because whether
//! they can be left out is the renderer's business.
use crate::NgsiError;

/// Which attributes of the entity to show.
#[derive(Debug, Clone, PartialEq)]
pub enum Projection {
    All,
    Pick(Vec<String>),
    Omit(Vec<String>),
}

impl Projection {
    /// Reads the `pick` and `omit` query parameters (already percent-decoded).
    pub fn parse(pick: Option<&str>, omit: Option<&str>) -> Result<Projection, NgsiError> {
        match (pick, omit) {
            (Some(_), Some(_)) => Err(NgsiError::bad_request_data(
                "pick and omit cannot be used together",
            )),
            (Some(list), None) => names("pick", list).map(Projection::Pick),
            (None, Some(list)) => names("omit", list).map(Projection::Omit),
            (None, None) => Ok(Projection::All),
        }
    }
}

/// The names of a comma-separated list, in order, without repeats.
fn names(parameter: &str, list: &str) -> Result<Vec<String>, NgsiError> {
    let mut names: Vec<String> = Vec::new();
    for (index, item) in list.split(',').enumerate() {
        if item.is_empty() {
            return Err(NgsiError::bad_request_data(format!(
                "invalid {parameter}: attribute name number {} is empty",
                index + 1
            )));
        }
        if let Some(bad) = item.chars().find(|c| c.is_whitespace() || c.is_control()) {
            return Err(NgsiError::bad_request_data(format!(
                "invalid {parameter}: attribute name {item:?} contains {bad:?}"
            )));
        }
        if !names.iter().any(|n| n == item) {
            names.push(item.to_string());
        }
    }
    Ok(names)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(names: &[&str]) -> Vec<String> {
        names.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn neither_means_all() {
        assert_eq!(Projection::parse(None, None).unwrap(), Projection::All);
    }

    #[test]
    fn pick_and_omit_lists() {
        assert_eq!(
            Projection::parse(Some("id,type,name,https://example.org/speed"), None).unwrap(),
            Projection::Pick(strings(&[
                "id",
                "type",
                "name",
                "https://example.org/speed"
            ]))
        );
        assert_eq!(
            Projection::parse(None, Some("location,name,location")).unwrap(),
            Projection::Omit(strings(&["location", "name"]))
        );
    }

    #[test]
    fn both_at_once_is_refused() {
        let err = Projection::parse(Some("a"), Some("b")).unwrap_err();
        assert_eq!(err.detail, "pick and omit cannot be used together");
        assert_eq!(err.problem, crate::ProblemType::BadRequestData);
    }

    #[test]
    fn empty_or_blank_names_are_refused() {
        for (pick, expected) in [
            ("", "invalid pick: attribute name number 1 is empty"),
            ("a,,b", "invalid pick: attribute name number 2 is empty"),
            ("a,", "invalid pick: attribute name number 2 is empty"),
            ("a, b", "invalid pick: attribute name \" b\" contains ' '"),
        ] {
            assert_eq!(
                Projection::parse(Some(pick), None).unwrap_err().detail,
                expected,
                "{pick:?}"
            );
        }
        assert_eq!(
            Projection::parse(None, Some(",a")).unwrap_err().detail,
            "invalid omit: attribute name number 1 is empty"
        );
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
                prop_assert_eq!(
                    Projection::parse(Some(&names.join(",")), None),
                    Ok(Projection::Pick(unique))
                );
            }
        }
    }
}
