//! The old fastapi-users backend's access tokens, accepted while clients move to Gatehouse
//! (`LEGACY_JWT_SECRET`): HS256 JWTs whose claims are `sub` (the user's id), `aud`
//! (`fastapi-users:auth`) and `exp`, as fastapi-users' `JWTStrategy` writes them. Every claim
//! is checked as on Gatehouse's own tokens but the issuer, which they do not carry. This
//! verifier never signs anything: tokens Gatehouse issues never use this secret.

use std::time::Duration;

use jsonwebtoken::{decode, decode_header, Algorithm, DecodingKey, Validation};
use secrecy::ExposeSecret;
use serde::Deserialize;
use uuid::Uuid;

use super::tokens::{AccessGrant, TokenError};
use crate::config::LegacyJwtSettings;
use crate::domain::UserId;

/// The session of a grant made from an old-backend token: none (the nil id).
pub const NO_SESSION: Uuid = Uuid::nil();

/// Whether a grant comes from an old-backend token, and so has no session.
pub fn is_sessionless(grant: &AccessGrant) -> bool {
    grant.session_id == NO_SESSION
}

/// Below this length a shared secret is guessable offline from any one token it signed.
pub const SHORT_SECRET_BYTES: usize = 32;

#[derive(Debug, Deserialize)]
struct LegacyClaims {
    sub: String,
    /// fastapi-users does not write it; a token that has it is judged by it.
    #[serde(default)]
    iat: Option<i64>,
}

/// What an old-backend token grants: a user, since an instant when it says so.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LegacyGrant {
    pub user_id: UserId,
    /// The token's `iat`, when it has one (fastapi-users' tokens have none).
    pub issued_at: Option<i64>,
}

/// Verifies the old backend's access tokens with its secret, HS256 pinned.
pub struct LegacyTokens {
    key: DecodingKey,
    validation: Validation,
    leeway: u64,
    /// Whether the secret is shorter than [`SHORT_SECRET_BYTES`] (worth a warning, not a
    /// refusal: fastapi-users takes any string).
    pub short_secret: bool,
}

impl LegacyTokens {
    pub fn new(settings: &LegacyJwtSettings, leeway: Duration) -> LegacyTokens {
        let mut validation = Validation::new(Algorithm::HS256);
        validation.set_audience(&settings.audience);
        validation.set_required_spec_claims(&["exp", "sub", "aud"]);
        validation.leeway = leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        let secret = settings.secret.expose_secret().as_bytes();
        LegacyTokens {
            key: DecodingKey::from_secret(secret),
            validation,
            leeway: leeway.as_secs(),
            short_secret: secret.len() < SHORT_SECRET_BYTES,
        }
    }

    /// Checks the signature (HS256 only), audience, expiry, `nbf` and `iat` when present, and
    /// that the subject is a user id.
    pub fn verify(&self, token: &str) -> Result<LegacyGrant, TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Invalid("malformed"))?;
        if header.alg != Algorithm::HS256 {
            return Err(TokenError::Invalid("unexpected algorithm"));
        }
        if header.crit.is_some() {
            return Err(TokenError::Invalid(
                "a critical header parameter is not understood",
            ));
        }
        let claims = decode::<LegacyClaims>(token, &self.key, &self.validation)
            .map_err(|_| TokenError::Invalid("signature or claims rejected"))?
            .claims;
        let now = jsonwebtoken::get_current_timestamp() as i64;
        if claims.iat.is_some_and(|iat| iat > now + self.leeway as i64) {
            return Err(TokenError::Invalid("issued in the future"));
        }
        Ok(LegacyGrant {
            user_id: claims
                .sub
                .parse()
                .map_err(|_| TokenError::Invalid("bad subject"))?,
            issued_at: claims.iat,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{encode, EncodingKey, Header};
    use serde_json::json;

    const SECRET: &str = "SECRET";

    fn verifier() -> LegacyTokens {
        let settings = LegacyJwtSettings {
            secret: SECRET.into(),
            audience: vec!["fastapi-users:auth".into()],
        };
        LegacyTokens::new(&settings, Duration::from_secs(5))
    }

    fn signed(claims: serde_json::Value, secret: &str) -> String {
        encode(
            &Header::new(Algorithm::HS256),
            &claims,
            &EncodingKey::from_secret(secret.as_bytes()),
        )
        .unwrap()
    }

    fn now() -> i64 {
        jsonwebtoken::get_current_timestamp() as i64
    }

    #[test]
    fn accepts_fastapi_users_tokens_without_an_issuer() {
        let id = UserId::new();
        // What JWTStrategy.write_token signs: sub, aud as a list, exp.
        let token = signed(
            json!({"sub": id.to_string(), "aud": ["fastapi-users:auth"], "exp": now() + 3600}),
            SECRET,
        );
        let grant = verifier().verify(&token).unwrap();
        assert_eq!(grant.user_id, id);
        assert_eq!(grant.issued_at, None);
        assert!(verifier().short_secret);
    }

    #[test]
    fn refuses_every_other_token() {
        let id = UserId::new().to_string();
        let fine = json!({"sub": id, "aud": ["fastapi-users:auth"], "exp": now() + 3600});
        let with = |key: &str, value: serde_json::Value| {
            let mut claims = fine.clone();
            claims[key] = value;
            claims
        };
        let without = |key: &str| {
            let mut claims = fine.clone();
            claims.as_object_mut().unwrap().remove(key);
            claims
        };
        let refused = [
            ("another secret", signed(fine.clone(), "ANOTHER")),
            ("expired", signed(with("exp", json!(now() - 60)), SECRET)),
            // fastapi-users' reset and verify tokens, which may share the secret.
            (
                "reset token",
                signed(with("aud", json!("fastapi-users:reset")), SECRET),
            ),
            ("no exp", signed(without("exp"), SECRET)),
            ("no aud", signed(without("aud"), SECRET)),
            ("not a user id", signed(with("sub", json!("17")), SECRET)),
            (
                "future iat",
                signed(with("iat", json!(now() + 600)), SECRET),
            ),
            (
                "not yet valid",
                signed(with("nbf", json!(now() + 600)), SECRET),
            ),
        ];
        for (what, token) in refused {
            assert!(verifier().verify(&token).is_err(), "{what}");
        }
        let hs512 = encode(
            &Header::new(Algorithm::HS512),
            &fine,
            &EncodingKey::from_secret(SECRET.as_bytes()),
        )
        .unwrap();
        assert!(verifier().verify(&hs512).is_err(), "HS512");
        let iat = now() - 10;
        let with_iat = signed(with("iat", json!(iat)), SECRET);
        assert_eq!(verifier().verify(&with_iat).unwrap().issued_at, Some(iat));
    }
}
