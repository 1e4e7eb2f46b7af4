//! Errors of the relying party. Their messages name what went wrong but never
//! carry a client secret, a private key, a code or a token.

/// Why an ID token was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdTokenRejection {
    /// The signature does not verify with the provider's key.
    Signature,
    /// `iss` is not the provider's issuer.
    Issuer,
    /// `aud` does not name this client, or `azp` is wrong when there are several audiences.
    Audience,
    /// `exp` has passed, or `iat` lies too far in the future.
    Expired,
    /// `nonce` is not the one sent with the authorization request.
    Nonce,
    /// The token names a key that the provider's JWKS does not hold (after a refetch).
    UnknownKey,
    /// The algorithm is not one of ES256, RS256, PS256 (`none` and HS* are never accepted).
    Algorithm,
    /// The token is not a well-formed JWS with the claims an ID token needs.
    Malformed,
}

impl std::fmt::Display for IdTokenRejection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let reason = match self {
            Self::Signature => "signature does not verify",
            Self::Issuer => "issuer does not match",
            Self::Audience => "audience does not name this client",
            Self::Expired => "token expired or issued in the future",
            Self::Nonce => "nonce does not match",
            Self::UnknownKey => "signing key is unknown",
            Self::Algorithm => "signing algorithm not allowed",
            Self::Malformed => "token is malformed",
        };
        f.write_str(reason)
    }
}

/// Everything that can go wrong while discovering a provider or signing in.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The discovery document or the JWKS could not be fetched or is not acceptable.
    #[error("OpenID provider discovery failed: {0}")]
    Discovery(String),
    /// The `state` the browser came back with is not the one this sign-in sent.
    #[error("state returned by the provider does not match this sign-in")]
    StateMismatch,
    /// The token endpoint refused the code exchange.
    #[error("token endpoint answered {status}{}", error.as_deref().map(|code| format!(" ({code})")).unwrap_or_default())]
    TokenEndpoint {
        /// HTTP status of the answer.
        status: u16,
        /// The OAuth `error` code of the JSON body, when there is one.
        error: Option<String>,
    },
    /// The token endpoint answered 2xx but not with a usable token response.
    #[error("token endpoint answer is not a usable token response: {0}")]
    TokenResponse(String),
    /// The ID token was refused.
    #[error("ID token refused: {0}")]
    InvalidIdToken(IdTokenRejection),
    /// The client's private key (for `private_key_jwt`) cannot be used.
    #[error("client private key cannot be used: {0}")]
    ClientKey(String),
    /// The configured issuer or redirect URI is not a usable URL.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// A request could not be sent or its answer not read.
    #[error("HTTP request to the OpenID provider failed: {0}")]
    Http(String),
}

impl From<reqwest::Error> for OidcError {
    fn from(error: reqwest::Error) -> Self {
        // Drop the URL: the code exchange URL is harmless, but a caller could pass
        // anything, and a message should never be where a secret leaks.
        Self::Http(error.without_url().to_string())
    }
}

impl From<IdTokenRejection> for OidcError {
    fn from(reason: IdTokenRejection) -> Self {
        Self::InvalidIdToken(reason)
    }
}
