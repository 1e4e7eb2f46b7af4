//! Validation of the ID token returned by the token endpoint (OpenID Connect
//! Core 3.1.3.7): signature by a provider key, issuer, audience, time, nonce.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use serde_json::Value;

use crate::client::{unix_now, ClientConfig};
use crate::error::{IdTokenRejection, OidcError};
use crate::flow::constant_time_eq;
use crate::provider::Provider;

/// The only signing algorithms accepted for ID tokens: asymmetric ones, so that
/// neither `none` nor an HMAC keyed with something public can forge a token.
pub const ALLOWED_ALGORITHMS: [&str; 3] = ["ES256", "RS256", "PS256"];

/// Tolerated clock difference with the provider.
pub const CLOCK_LEEWAY_SECONDS: u64 = 60;

/// The claims of a validated ID token that renkei uses, and all of them raw.
#[derive(Debug, Clone, PartialEq)]
pub struct IdTokenClaims {
    /// The user's stable identifier at this issuer.
    pub sub: String,
    /// The issuer (equal to the provider's).
    pub iss: String,
    /// The user's email address, when the provider shares it.
    pub email: Option<String>,
    /// Whether the provider verified the email address.
    pub email_verified: Option<bool>,
    /// The user's full name.
    pub name: Option<String>,
    /// The user's preferred user name (not unique, not stable).
    pub preferred_username: Option<String>,
    /// Every claim of the token, as sent.
    pub raw: Value,
}

pub(crate) async fn validate_id_token(
    provider: &Provider,
    client: &ClientConfig,
    expected_nonce: &str,
    token: &str,
    http: &reqwest::Client,
) -> Result<IdTokenClaims, OidcError> {
    let header = decode_header(token)?;
    let algorithm_name = header
        .get("alg")
        .and_then(Value::as_str)
        .ok_or(IdTokenRejection::Malformed)?;
    let algorithm = allowed_algorithm(algorithm_name)?;
    let key_id = header.get("kid").and_then(Value::as_str);

    let key = match provider.cached_key(key_id) {
        Some(key) => key,
        None => {
            // The provider may have rotated its keys since they were cached.
            provider.refresh_keys(http).await?;
            provider
                .cached_key(key_id)
                .ok_or(IdTokenRejection::UnknownKey)?
        }
    };
    check_key_fits_algorithm(&key, algorithm)?;
    let decoding_key = DecodingKey::from_jwk(&key).map_err(|_| IdTokenRejection::UnknownKey)?;

    // The library checks the signature only; claims are checked below so that
    // each failure gets its own typed reason.
    let mut validation = Validation::new(algorithm);
    validation.validate_exp = false;
    validation.validate_nbf = false;
    validation.validate_aud = false;
    validation.required_spec_claims.clear();
    let claims = jsonwebtoken::decode::<Value>(token, &decoding_key, &validation)
        .map_err(|error| match error.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidSignature => IdTokenRejection::Signature,
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm => IdTokenRejection::Algorithm,
            _ => IdTokenRejection::Malformed,
        })?
        .claims;

    check_claims(
        &claims,
        provider.issuer(),
        &client.client_id,
        expected_nonce,
        unix_now(),
    )?;
    Ok(IdTokenClaims {
        sub: string_claim(&claims, "sub").ok_or(IdTokenRejection::Malformed)?,
        iss: string_claim(&claims, "iss").ok_or(IdTokenRejection::Malformed)?,
        email: string_claim(&claims, "email"),
        email_verified: match claims.get("email_verified") {
            Some(Value::Bool(verified)) => Some(*verified),
            // Some providers send it as a string.
            Some(Value::String(verified)) => verified.parse().ok(),
            _ => None,
        },
        name: string_claim(&claims, "name"),
        preferred_username: string_claim(&claims, "preferred_username"),
        raw: claims,
    })
}

/// Reads the JOSE header without trusting it yet: only to pick the algorithm and key.
fn decode_header(token: &str) -> Result<Value, IdTokenRejection> {
    let mut parts = token.split('.');
    let (Some(header), Some(_payload), Some(_signature), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(IdTokenRejection::Malformed);
    };
    let bytes = URL_SAFE_NO_PAD
        .decode(header)
        .map_err(|_| IdTokenRejection::Malformed)?;
    let header: Value = serde_json::from_slice(&bytes).map_err(|_| IdTokenRejection::Malformed)?;
    if header.is_object() {
        Ok(header)
    } else {
        Err(IdTokenRejection::Malformed)
    }
}

fn allowed_algorithm(name: &str) -> Result<Algorithm, IdTokenRejection> {
    match name {
        "ES256" => Ok(Algorithm::ES256),
        "RS256" => Ok(Algorithm::RS256),
        "PS256" => Ok(Algorithm::PS256),
        _ => Err(IdTokenRejection::Algorithm),
    }
}

/// The header's algorithm must suit the key: its type, its curve, and its `alg` when it names one.
fn check_key_fits_algorithm(key: &Jwk, algorithm: Algorithm) -> Result<(), IdTokenRejection> {
    let fits = match (&key.algorithm, algorithm) {
        (AlgorithmParameters::EllipticCurve(params), Algorithm::ES256) => {
            params.curve == EllipticCurve::P256
        }
        (AlgorithmParameters::RSA(_), Algorithm::RS256 | Algorithm::PS256) => true,
        _ => false,
    };
    let declared = key
        .common
        .key_algorithm
        .map(|declared| format!("{declared:?}"));
    let declared_matches = declared.is_none_or(|declared| declared == format!("{algorithm:?}"));
    if fits && declared_matches {
        Ok(())
    } else {
        Err(IdTokenRejection::Algorithm)
    }
}

fn check_claims(
    claims: &Value,
    issuer: &str,
    client_id: &str,
    nonce: &str,
    now: u64,
) -> Result<(), IdTokenRejection> {
    if claims.get("iss").and_then(Value::as_str) != Some(issuer) {
        return Err(IdTokenRejection::Issuer);
    }
    let audiences: Vec<&str> = match claims.get("aud") {
        Some(Value::String(audience)) => vec![audience.as_str()],
        Some(Value::Array(audiences)) => audiences.iter().filter_map(Value::as_str).collect(),
        _ => return Err(IdTokenRejection::Audience),
    };
    if !audiences.contains(&client_id) {
        return Err(IdTokenRejection::Audience);
    }
    if audiences.len() > 1 && claims.get("azp").and_then(Value::as_str) != Some(client_id) {
        return Err(IdTokenRejection::Audience);
    }
    let expires_at = claims
        .get("exp")
        .and_then(Value::as_u64)
        .ok_or(IdTokenRejection::Malformed)?;
    if now >= expires_at.saturating_add(CLOCK_LEEWAY_SECONDS) {
        return Err(IdTokenRejection::Expired);
    }
    let issued_at = claims
        .get("iat")
        .and_then(Value::as_u64)
        .ok_or(IdTokenRejection::Malformed)?;
    if issued_at > now.saturating_add(CLOCK_LEEWAY_SECONDS) {
        return Err(IdTokenRejection::Expired);
    }
    let token_nonce = claims
        .get("nonce")
        .and_then(Value::as_str)
        .ok_or(IdTokenRejection::Nonce)?;
    if !constant_time_eq(token_nonce.as_bytes(), nonce.as_bytes()) {
        return Err(IdTokenRejection::Nonce);
    }
    if string_claim(claims, "sub").is_none_or(|sub| sub.is_empty()) {
        return Err(IdTokenRejection::Malformed);
    }
    Ok(())
}

fn string_claim(claims: &Value, name: &str) -> Option<String> {
    claims.get(name).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const NOW: u64 = 1_700_000_000;

    fn good_claims() -> Value {
        json!({
            "iss": "https://idp.example", "sub": "user-1", "aud": "renkei",
            "exp": NOW + 300, "iat": NOW, "nonce": "n-1"
        })
    }

    fn check(claims: &Value) -> Result<(), IdTokenRejection> {
        check_claims(claims, "https://idp.example", "renkei", "n-1", NOW)
    }

    fn with(field: &str, value: Value) -> Value {
        let mut claims = good_claims();
        claims[field] = value;
        claims
    }

    #[test]
    fn good_claims_pass() {
        assert_eq!(check(&good_claims()), Ok(()));
    }

    #[test]
    fn each_bad_claim_has_its_reason() {
        assert_eq!(
            check(&with("iss", json!("https://idp.example/"))),
            Err(IdTokenRejection::Issuer)
        );
        assert_eq!(
            check(&with("aud", json!("other"))),
            Err(IdTokenRejection::Audience)
        );
        assert_eq!(
            check(&with("aud", json!(["other", "renkei"]))),
            Err(IdTokenRejection::Audience)
        );
        assert_eq!(
            check(&with("exp", json!(NOW - CLOCK_LEEWAY_SECONDS))),
            Err(IdTokenRejection::Expired)
        );
        assert_eq!(
            check(&with("iat", json!(NOW + CLOCK_LEEWAY_SECONDS + 1))),
            Err(IdTokenRejection::Expired)
        );
        assert_eq!(
            check(&with("nonce", json!("n-2"))),
            Err(IdTokenRejection::Nonce)
        );
        assert_eq!(
            check(&with("sub", json!(""))),
            Err(IdTokenRejection::Malformed)
        );
    }

    #[test]
    fn several_audiences_need_azp_naming_the_client() {
        let mut claims = with("aud", json!(["other", "renkei"]));
        claims["azp"] = json!("renkei");
        assert_eq!(check(&claims), Ok(()));
    }

    #[test]
    fn expiry_within_leeway_is_tolerated() {
        assert_eq!(
            check(&with("exp", json!(NOW - CLOCK_LEEWAY_SECONDS + 1))),
            Ok(())
        );
    }

    #[test]
    fn only_asymmetric_algorithms_are_allowed() {
        for name in ["none", "HS256", "HS512", "EdDSA", "ES384", ""] {
            assert_eq!(
                allowed_algorithm(name),
                Err(IdTokenRejection::Algorithm),
                "{name}"
            );
        }
    }
}
