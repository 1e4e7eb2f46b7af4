//! Query-string parameters of the NGSI-LD API. Values are percent-decoded without
//! turning `+` into a space, because `+` is meaningful in `scopeQ` (`/Madrid/+`) and
//! in dates (`+09:00`); NGSI-LD clients encode a space as `%20`.

use ngsi_ld::NgsiError;
use percent_encoding::percent_decode_str;

/// The decoded parameters of one request, in order.
#[derive(Debug, Clone, Default)]
pub struct Params(Vec<(String, String)>);

impl Params {
    pub fn parse(query: &str) -> Result<Params, NgsiError> {
        let mut pairs = Vec::new();
        for piece in query.split('&').filter(|p| !p.is_empty()) {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            let decode = |text: &str| {
                percent_decode_str(text)
                    .decode_utf8()
                    .map(|t| t.into_owned())
                    .map_err(|_| {
                        NgsiError::bad_request_data(format!(
                            "query parameter '{name}' is not valid UTF-8"
                        ))
                    })
            };
            let (name, value) = (decode(name)?, decode(value)?);
            // PostgreSQL text cannot hold U+0000, so both backends refuse it here alike.
            if name.contains('\0') || value.contains('\0') {
                return Err(NgsiError::bad_request_data(format!(
                    "query parameter '{}' has a NUL character (U+0000)",
                    name.escape_debug()
                )));
            }
            pairs.push((name, value));
        }
        Ok(Params(pairs))
    }

    /// Parameters given as already decoded pairs (a document's members, say).
    pub fn from_pairs(pairs: Vec<(String, String)>) -> Params {
        Params(pairs)
    }

    /// Every decoded pair, in request order.
    pub fn pairs(&self) -> &[(String, String)] {
        &self.0
    }

    /// The value of a parameter; a parameter given twice is refused rather than guessed.
    pub fn get(&self, name: &str) -> Result<Option<&str>, NgsiError> {
        let mut found = self
            .0
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.as_str());
        let first = found.next();
        if found.next().is_some() {
            return Err(NgsiError::bad_request_data(format!(
                "query parameter '{name}' is given more than once"
            )));
        }
        Ok(first)
    }

    /// Refuses parameters the operation does not know (clause 6.3.x: 400 BadRequestData).
    /// Refuses parameters the operation does not define: clause 6.3.2 makes that an
    /// InvalidRequest (the request itself is wrong, not the data it carries).
    pub fn allow_only(&self, known: &[&str]) -> Result<(), NgsiError> {
        match self.0.iter().find(|(n, _)| !known.contains(&n.as_str())) {
            Some((name, _)) => Err(NgsiError::invalid_request(format!(
                "unknown query parameter '{name}' for this operation"
            ))),
            None => Ok(()),
        }
    }

    /// A comma-separated list parameter, trimmed, empty members dropped.
    pub fn list(&self, name: &str) -> Result<Vec<String>, NgsiError> {
        Ok(self
            .get(name)?
            .map(|v| {
                v.split(',')
                    .map(str::trim)
                    .filter(|s| !s.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default())
    }

    /// A non-negative integer parameter.
    pub fn usize(&self, name: &str) -> Result<Option<usize>, NgsiError> {
        self.get(name)?
            .map(|v| {
                v.parse::<usize>().map_err(|_| {
                    NgsiError::bad_request_data(format!(
                        "query parameter '{name}' must be a non-negative integer, not '{v}'"
                    ))
                })
            })
            .transpose()
    }

    /// A boolean parameter (`true`/`false`).
    pub fn bool(&self, name: &str) -> Result<bool, NgsiError> {
        match self.get(name)? {
            None => Ok(false),
            Some("true") => Ok(true),
            Some("false") => Ok(false),
            Some(v) => Err(NgsiError::bad_request_data(format!(
                "query parameter '{name}' must be true or false, not '{v}'"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn plus_stays_a_plus_and_percent_escapes_decode() {
        let p = Params::parse("scopeQ=/Madrid/+&q=name%3D%3D%22a%20b%22&limit=5").unwrap();
        assert_eq!(p.get("scopeQ").unwrap(), Some("/Madrid/+"));
        assert_eq!(p.get("q").unwrap(), Some("name==\"a b\""));
        assert_eq!(p.usize("limit").unwrap(), Some(5));
        assert!(p.allow_only(&["scopeQ", "q"]).is_err());
        assert!(p.allow_only(&["scopeQ", "q", "limit"]).is_ok());
    }

    #[test]
    fn repeated_and_malformed_parameters_are_refused() {
        let p = Params::parse("limit=1&limit=2&count=maybe&offset=-1").unwrap();
        assert!(p.get("limit").is_err());
        assert!(p.bool("count").is_err());
        assert!(p.usize("offset").is_err());
        assert!(Params::parse("q=%FF").is_err());
    }

    #[test]
    fn nul_characters_are_refused_in_names_and_values() {
        let refused = Params::parse("type=T&attrs=%00").unwrap_err();
        assert_eq!(refused.problem, ngsi_ld::ProblemType::BadRequestData);
        assert!(refused.detail.contains("'attrs'"), "{}", refused.detail);
        assert!(Params::parse("q=name%3D%3D%22%00%22").is_err());
        assert!(Params::parse("%00=1").is_err());
        assert!(Params::parse("q=name%3D%3D%22a%22").is_ok());
    }

    proptest! {
        #[test]
        fn parsing_never_panics(query in ".*") {
            let _ = Params::parse(&query);
        }
    }
}
