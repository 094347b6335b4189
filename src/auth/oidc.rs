//! The cryptography of the OpenID Connect provider: PKCE (RFC 7636), `at_hash`, ID tokens and
//! the ID-token hints of logout requests.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{decode, decode_header, encode, DecodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::keys::SigningKeys;
use super::tokens::TokenError;
use crate::domain::IdTokenAlgorithm;

/// Whether `challenge` has the shape of an S256 code challenge: the unpadded base64url of a
/// SHA-256 digest.
pub fn is_s256_challenge(challenge: &str) -> bool {
    challenge.len() == 43 && is_base64url(challenge)
}

/// Whether `verifier` (43 to 128 unreserved characters, RFC 7636 §4.1) hashes to `challenge`.
pub fn pkce_verifies(verifier: &str, challenge: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    well_formed && bool::from(computed.as_bytes().ct_eq(challenge.as_bytes()))
}

/// `at_hash` (OpenID Connect Core §3.1.3.6): the left half of the access token's SHA-256
/// (the hash of both ES256 and RS256), base64url.
pub fn at_hash(access_token: &str) -> String {
    let digest = Sha256::digest(access_token.as_bytes());
    URL_SAFE_NO_PAD.encode(&digest[..16])
}

fn is_base64url(text: &str) -> bool {
    text.bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The claims of an ID token (OpenID Connect Core §2, §5.1).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct IdTokenClaims {
    pub iss: String,
    pub sub: String,
    pub aud: String,
    /// The party the token was issued to: the application, as `aud`.
    pub azp: String,
    pub exp: u64,
    pub iat: u64,
    pub auth_time: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub nonce: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub at_hash: Option<String>,
    pub amr: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email_verified: Option<bool>,
}

/// Signs an ID token with the key of `alg`.
pub fn sign_id_token(
    keys: &SigningKeys,
    alg: IdTokenAlgorithm,
    claims: &IdTokenClaims,
) -> Result<String, TokenError> {
    if alg != IdTokenAlgorithm::Es256 || keys.algorithm != jsonwebtoken::Algorithm::ES256 {
        return Err(TokenError::Invalid("no key for this ID token algorithm"));
    }
    let mut header = Header::new(keys.algorithm);
    header.kid = keys.signing_kid.clone();
    header.typ = Some("JWT".into());
    encode(&header, claims, &keys.signing_key).map_err(TokenError::Signing)
}

/// Who an ID token this server issued names, for a logout request's `id_token_hint`: its
/// signature and issuer are checked, not its expiry (a hint is often an old token).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    pub subject: String,
    pub audience: String,
}

pub fn read_hint(keys: &SigningKeys, issuer: &str, token: &str) -> Option<Hint> {
    let header = decode_header(token).ok()?;
    let algorithm = match header.alg {
        jsonwebtoken::Algorithm::ES256 => "ES256",
        jsonwebtoken::Algorithm::RS256 => "RS256",
        _ => return None,
    };
    // The key the header names, used only with the algorithm it is published for.
    let published = keys
        .public_jwks()
        .keys
        .iter()
        .find(|jwk| Some(&jwk.kid) == header.kid.as_ref() && jwk.alg == algorithm)?;
    let jwk: jsonwebtoken::jwk::Jwk =
        serde_json::from_value(serde_json::to_value(published).ok()?).ok()?;
    let key = DecodingKey::from_jwk(&jwk).ok()?;
    let mut validation = Validation::new(header.alg);
    validation.validate_exp = false;
    validation.validate_aud = false;
    validation.set_issuer(&[issuer]);
    validation.set_required_spec_claims(&["sub", "aud", "iss"]);
    let claims = decode::<IdTokenClaims>(token, &key, &validation)
        .ok()?
        .claims;
    Some(Hint {
        subject: claims.sub,
        audience: claims.aud,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_matches_rfc_7636_appendix_b() {
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(is_s256_challenge(challenge));
        assert!(pkce_verifies(verifier, challenge));
        assert!(!pkce_verifies(&verifier.replace('d', "e"), challenge));
        assert!(!pkce_verifies(challenge, challenge));
        assert!(!pkce_verifies("short", challenge));
        assert!(!is_s256_challenge("plain-text-challenge"));
    }

    #[test]
    fn at_hash_is_the_left_half_of_sha256() {
        // OpenID Connect Core, Appendix A.3's access token and at_hash use RS256: SHA-256.
        assert_eq!(
            at_hash("jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y"),
            "77QmUPtjPfzWtF2AnpK9RQ"
        );
    }
}
