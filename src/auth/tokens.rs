//! Access tokens: JWTs signed with the configured key, checked claim by claim.

use std::time::Duration;

use jsonwebtoken::{decode, decode_header, encode, Header, Validation};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::keys::SigningKeys;
use super::verified_tokens::{self, VerifiedTokens};
use crate::config::JwtSettings;
use crate::domain::{AuthMethods, ClientId, Scopes, UserId};

/// The value of the token-type claim on access tokens; every other token the service makes
/// carries another value (or no JWT at all), so none of them passes as an access token.
pub const ACCESS_TOKEN_USE: &str = "access";
/// The `typ` header of an application's access token (RFC 9068 §2.1): what keeps it from
/// passing as a user's token, and a user's from passing as an application's.
pub const APP_TOKEN_TYP: &str = "at+jwt";
/// Header parameters this verifier understands when a token lists them as critical
/// (RFC 7515 §4.1.11): none, so a token with any `crit` is refused.
const UNDERSTOOD_CRITICAL: &[&str] = &[];

#[derive(Debug, Serialize, Deserialize)]
struct AccessClaims {
    sub: String,
    aud: Vec<String>,
    exp: u64,
    iat: u64,
    iss: String,
    jti: String,
    token_use: String,
    /// The session of a user's token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sid: Option<String>,
    /// A user's token: the generation (place in the session's chain) of the refresh token it
    /// was issued with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    rgen: Option<i64>,
    /// A user's token: how the session's login was proved (RFC 8176).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    amr: Option<Vec<String>>,
    /// A user's token: when the session's login happened (Unix seconds).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth_time: Option<i64>,
    /// The client of a machine client's token (RFC 9068); `sub` names the client too.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    /// A machine client's or an application's granted scopes, space-separated (RFC 9068).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    scope: Option<String>,
}

/// A freshly issued access token.
#[derive(Debug)]
pub struct AccessToken {
    pub token: String,
    pub expires_in: u64,
}

/// What a user's access token grants: the user, in one session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AccessGrant {
    pub user_id: UserId,
    pub session_id: Uuid,
    /// The generation of the session's refresh token issued with this access token: the first
    /// request the access token authenticates shows that this refresh token reached its
    /// client. `None` on tokens issued before generations were recorded.
    pub refresh_generation: Option<i64>,
    /// How the session's login was proved; a password, on tokens from before this was recorded.
    pub methods: AuthMethods,
    /// When the session's login happened (Unix seconds).
    pub auth_time: i64,
}

/// What a machine client's access token grants: the client, with some of its scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientGrant {
    pub client_id: ClientId,
    pub scopes: Scopes,
}

/// What an application's access token grants (OpenID Connect): a user, through the
/// application's own session, with the scopes the user allowed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AppGrant {
    pub user_id: UserId,
    pub session_id: Uuid,
    pub client_id: ClientId,
    pub scopes: Scopes,
    /// As a user's: the generation of the refresh token issued with this access token.
    pub refresh_generation: i64,
}

/// Who a valid access token speaks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Grant {
    User(AccessGrant),
    Client(ClientGrant),
    App(AppGrant),
}

#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the token is not valid: {0}")]
    Invalid(&'static str),
    #[error("could not sign the token: {0}")]
    Signing(jsonwebtoken::errors::Error),
}

/// Issues and verifies access tokens with one pinned algorithm.
pub struct AccessTokens {
    keys: SigningKeys,
    issuer: String,
    audience: Vec<String>,
    ttl: Duration,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`, in seconds.
    leeway: u64,
    validation: Validation,
    /// The issuer of applications' tokens: the OpenID Connect issuer (`PUBLIC_URL`).
    app_issuer: String,
    /// Applications' tokens name the application as their audience; it is checked by hand.
    app_validation: Validation,
    /// Tokens `verify` has verified, each once; tied to these keys.
    verified: VerifiedTokens<Grant>,
}

impl AccessTokens {
    /// `app_issuer` is the OpenID Connect issuer, which applications' tokens name.
    pub fn new(keys: SigningKeys, settings: &JwtSettings, app_issuer: &str) -> AccessTokens {
        let mut app_validation = Validation::new(keys.algorithm);
        app_validation.validate_aud = false;
        app_validation.set_issuer(&[app_issuer]);
        app_validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
        app_validation.leeway = settings.leeway.as_secs();
        let mut validation = Validation::new(keys.algorithm);
        validation.set_audience(&settings.audience);
        validation.set_issuer(&[&settings.issuer]);
        validation.set_required_spec_claims(&["exp", "iat", "sub", "aud", "iss"]);
        validation.leeway = settings.leeway.as_secs();
        validation.validate_exp = true;
        validation.validate_nbf = true;
        AccessTokens {
            keys,
            issuer: settings.issuer.clone(),
            audience: settings.audience.clone(),
            ttl: settings.access_token_ttl,
            leeway: settings.leeway.as_secs(),
            verified: VerifiedTokens::new(verified_tokens::CAPACITY),
            validation,
            app_issuer: app_issuer.to_owned(),
            app_validation,
        }
    }

    pub fn keys(&self) -> &SigningKeys {
        &self.keys
    }

    /// A user's access token for one session.
    pub fn issue(&self, grant: AccessGrant) -> Result<AccessToken, TokenError> {
        self.sign(grant.user_id.to_string(), |claims| {
            claims.sid = Some(grant.session_id.to_string());
            claims.rgen = grant.refresh_generation;
            claims.amr = Some(
                grant
                    .methods
                    .names()
                    .into_iter()
                    .map(String::from)
                    .collect(),
            );
            claims.auth_time = Some(grant.auth_time);
        })
    }

    /// A machine client's access token.
    pub fn issue_for_client(&self, grant: &ClientGrant) -> Result<AccessToken, TokenError> {
        self.sign(grant.client_id.to_string(), |claims| {
            claims.client_id = Some(grant.client_id.to_string());
            claims.scope = Some(grant.scopes.to_space_separated());
        })
    }

    /// An application's access token (RFC 9068): `typ: at+jwt`, issued by the OpenID
    /// Connect issuer to the application.
    pub fn issue_for_app(&self, grant: &AppGrant) -> Result<AccessToken, TokenError> {
        self.sign(grant.user_id.to_string(), |claims| {
            claims.iss = self.app_issuer.clone();
            claims.aud = vec![grant.client_id.to_string()];
            claims.sid = Some(grant.session_id.to_string());
            claims.rgen = Some(grant.refresh_generation);
            claims.client_id = Some(grant.client_id.to_string());
            claims.scope = Some(grant.scopes.to_space_separated());
        })
    }

    fn sign(
        &self,
        subject: String,
        specific: impl FnOnce(&mut AccessClaims),
    ) -> Result<AccessToken, TokenError> {
        let now = jsonwebtoken::get_current_timestamp();
        let mut claims = AccessClaims {
            sub: subject,
            aud: self.audience.clone(),
            exp: now + self.ttl.as_secs(),
            iat: now,
            iss: self.issuer.clone(),
            jti: Uuid::new_v4().to_string(),
            token_use: ACCESS_TOKEN_USE.into(),
            sid: None,
            rgen: None,
            amr: None,
            auth_time: None,
            client_id: None,
            scope: None,
        };
        specific(&mut claims);
        let mut header = Header::new(self.keys.algorithm);
        header.kid = self.keys.signing_kid.clone();
        header.typ = Some(if claims.client_id.is_some() && claims.sid.is_some() {
            APP_TOKEN_TYP.into()
        } else {
            "JWT".into()
        });
        let token =
            encode(&header, &claims, &self.keys.signing_key).map_err(TokenError::Signing)?;
        Ok(AccessToken {
            token,
            expires_in: self.ttl.as_secs(),
        })
    }

    /// Checks signature (with the pinned algorithm and the key named by `kid`), audience,
    /// issuer, expiry, issue time, token type and the identifiers.
    ///
    /// A token verified before and not yet expired is answered from memory, without
    /// checking its signature again (see [`VerifiedTokens`]).
    pub fn verify(&self, token: &str) -> Result<Grant, TokenError> {
        let now = jsonwebtoken::get_current_timestamp();
        if let Some(grant) = self.verified.get(token, now) {
            return Ok(grant);
        }
        let (claims, app_token) = self.verify_claims(token)?;
        let usable_until = claims.exp.saturating_add(self.leeway);
        let grant = if app_token {
            app_grant(claims)?
        } else {
            user_or_client_grant(claims)?
        };
        self.verified.insert(token, grant.clone(), usable_until);
        Ok(grant)
    }

    /// An application's token, and when it expires (Unix seconds).
    pub fn verify_app(&self, token: &str) -> Result<(AppGrant, u64), TokenError> {
        let (claims, app_token) = self.verify_claims(token)?;
        let exp = claims.exp;
        match (app_token, app_grant(claims)?) {
            (true, Grant::App(grant)) => Ok((grant, exp)),
            _ => Err(TokenError::Invalid("not an application's token")),
        }
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// The claims of a token whose signature, fixed claims and type check out, and whether
    /// it is an application's.
    fn verify_claims(&self, token: &str) -> Result<(AccessClaims, bool), TokenError> {
        let header = decode_header(token).map_err(|_| TokenError::Invalid("malformed"))?;
        if header.alg != self.keys.algorithm {
            return Err(TokenError::Invalid("unexpected algorithm"));
        }
        if let Some(critical) = &header.crit {
            // An empty list is malformed (RFC 7515 §4.1.11); an unknown name must not be
            // ignored, as its issuer meant it to change how the token is read.
            let understood = |name: &String| UNDERSTOOD_CRITICAL.contains(&name.as_str());
            if critical.is_empty() || !critical.iter().all(understood) {
                return Err(TokenError::Invalid(
                    "a critical header parameter is not understood",
                ));
            }
        }
        let key = self
            .keys
            .verifying_key(header.kid.as_deref())
            .ok_or(TokenError::Invalid("unknown key id"))?;
        let app_token = header
            .typ
            .as_deref()
            .is_some_and(|typ| typ.eq_ignore_ascii_case(APP_TOKEN_TYP));
        let validation = if app_token {
            &self.app_validation
        } else {
            &self.validation
        };
        let claims = decode::<AccessClaims>(token, key, validation)
            .map_err(|_| TokenError::Invalid("signature or claims rejected"))?
            .claims;
        if claims.token_use != ACCESS_TOKEN_USE {
            return Err(TokenError::Invalid("not an access token"));
        }
        if claims.iat > jsonwebtoken::get_current_timestamp() + self.leeway {
            return Err(TokenError::Invalid("issued in the future"));
        }
        Uuid::parse_str(&claims.jti).map_err(|_| TokenError::Invalid("bad jti"))?;
        Ok((claims, app_token))
    }
}

/// The grant of a user's or a machine client's token.
fn user_or_client_grant(claims: AccessClaims) -> Result<Grant, TokenError> {
    match (claims.sid, claims.client_id) {
        (Some(sid), None) => Ok(Grant::User(AccessGrant {
            user_id: claims
                .sub
                .parse()
                .map_err(|_| TokenError::Invalid("bad subject"))?,
            session_id: Uuid::parse_str(&sid).map_err(|_| TokenError::Invalid("bad session id"))?,
            refresh_generation: claims.rgen,
            methods: match &claims.amr {
                Some(amr) => AuthMethods::from_names(amr.iter().map(String::as_str)),
                None => AuthMethods::PASSWORD,
            },
            auth_time: claims.auth_time.unwrap_or(0),
        })),
        (None, Some(client_id)) if claims.rgen.is_none() => {
            let client_id =
                ClientId::parse(&client_id).ok_or(TokenError::Invalid("bad client id"))?;
            if claims.sub != client_id.as_str() {
                return Err(TokenError::Invalid("subject is not the client"));
            }
            let scopes = Scopes::parse_space_separated(claims.scope.as_deref().unwrap_or(""))
                .map_err(|_| TokenError::Invalid("bad scope"))?;
            Ok(Grant::Client(ClientGrant { client_id, scopes }))
        }
        _ => Err(TokenError::Invalid("neither a user's nor a client's token")),
    }
}

/// The grant of an application's token, whose audience must be the application alone.
fn app_grant(claims: AccessClaims) -> Result<Grant, TokenError> {
    let (Some(sid), Some(client_id), Some(refresh_generation)) =
        (claims.sid, claims.client_id, claims.rgen)
    else {
        return Err(TokenError::Invalid("not an application's token"));
    };
    let client_id = ClientId::parse(&client_id).ok_or(TokenError::Invalid("bad client id"))?;
    if claims.aud != [client_id.as_str()] {
        return Err(TokenError::Invalid("the audience is not the application"));
    }
    Ok(Grant::App(AppGrant {
        user_id: claims
            .sub
            .parse()
            .map_err(|_| TokenError::Invalid("bad subject"))?,
        session_id: Uuid::parse_str(&sid).map_err(|_| TokenError::Invalid("bad session id"))?,
        client_id,
        scopes: Scopes::parse_space_separated(claims.scope.as_deref().unwrap_or(""))
            .map_err(|_| TokenError::Invalid("bad scope"))?,
        refresh_generation,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::keys::generate_jwks;
    use crate::config::{JwtAlgorithm, KeySource};
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    use secrecy::ExposeSecret;

    fn settings(keys: KeySource, algorithm: JwtAlgorithm) -> JwtSettings {
        JwtSettings {
            algorithm,
            keys,
            signing_kid: None,
            issuer: "gatehouse".into(),
            audience: vec!["fastapi-users:auth".into()],
            access_token_ttl: Duration::from_secs(1800),
            leeway: Duration::from_secs(5),
        }
    }

    fn es256() -> AccessTokens {
        let (private, _) = generate_jwks();
        let settings = settings(
            KeySource::Jwks(private.expose_secret().to_owned().into()),
            JwtAlgorithm::Es256,
        );
        AccessTokens::new(SigningKeys::load(&settings).unwrap(), &settings, ISSUER)
    }

    const ISSUER: &str = "https://auth.example.com";

    fn grant() -> AccessGrant {
        AccessGrant {
            user_id: UserId::new(),
            session_id: Uuid::new_v4(),
            refresh_generation: Some(3),
            methods: AuthMethods::PASSWORD.with(AuthMethods::ONE_TIME_CODE),
            auth_time: 1_700_000_000,
        }
    }

    fn claims_of(token: &str) -> serde_json::Value {
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    #[test]
    fn a_verified_token_is_remembered_and_a_changed_one_is_not() {
        let tokens = es256();
        let grant = grant();
        let token = tokens.issue(grant).unwrap().token;
        assert_eq!(tokens.verify(&token).unwrap(), Grant::User(grant));
        assert_eq!(tokens.verified.len(), 1);
        assert_eq!(tokens.verify(&token).unwrap(), Grant::User(grant), "a hit");

        // The same claims under a signature one bit off: no hit, and refused.
        let mut forged = token.clone().into_bytes();
        let last = forged.len() - 2;
        forged[last] = if forged[last] == b'A' { b'B' } else { b'A' };
        let forged = String::from_utf8(forged).unwrap();
        assert!(tokens.verify(&forged).is_err());
        assert!(tokens.verify("not a token").is_err());
        assert_eq!(tokens.verified.len(), 1, "refused tokens are not kept");

        // Another set of keys (a restart with rotated keys) knows nothing of it.
        assert!(es256().verify(&token).is_err());
    }

    #[test]
    fn round_trips_with_every_claim() {
        let tokens = es256();
        let grant = grant();
        let issued = tokens.issue(grant).unwrap();
        assert_eq!(tokens.verify(&issued.token).unwrap(), Grant::User(grant));
        let claims = claims_of(&issued.token);
        assert_eq!(claims["aud"], serde_json::json!(["fastapi-users:auth"]));
        assert_eq!(claims["token_use"], "access");
        assert_eq!(claims["rgen"], 3);
        assert_eq!(
            claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
            1800
        );
        let header = decode_header(&issued.token).unwrap();
        assert_eq!(header.kid, tokens.keys().signing_kid);
    }

    #[test]
    fn client_tokens_name_the_client_and_carry_its_scopes() {
        let tokens = es256();
        let grant = ClientGrant {
            client_id: ClientId::generate(),
            scopes: Scopes::parse_space_separated("read:reports write:reports").unwrap(),
        };
        let issued = tokens.issue_for_client(&grant).unwrap();
        assert_eq!(
            tokens.verify(&issued.token).unwrap(),
            Grant::Client(grant.clone())
        );
        let claims = claims_of(&issued.token);
        assert_eq!(claims["sub"], grant.client_id.as_str());
        assert_eq!(claims["client_id"], grant.client_id.as_str());
        assert_eq!(claims["scope"], "read:reports write:reports");
        assert!(claims.get("sid").is_none());
        assert!(claims.get("rgen").is_none());
    }

    #[test]
    fn app_tokens_are_at_jwt_for_the_application_alone() {
        let tokens = es256();
        let grant = AppGrant {
            user_id: UserId::new(),
            session_id: Uuid::new_v4(),
            client_id: ClientId::generate(),
            scopes: Scopes::parse_space_separated("openid email").unwrap(),
            refresh_generation: 2,
        };
        let issued = tokens.issue_for_app(&grant).unwrap();
        assert_eq!(
            tokens.verify(&issued.token).unwrap(),
            Grant::App(grant.clone())
        );
        let header = decode_header(&issued.token).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        let claims = claims_of(&issued.token);
        assert_eq!(claims["iss"], ISSUER);
        assert_eq!(claims["aud"], serde_json::json!([grant.client_id.as_str()]));
        assert_eq!(claims["client_id"], grant.client_id.as_str());
        assert_eq!(claims["scope"], "email openid");

        // The same claims under a plain `JWT` header are nobody's token; a user's token under
        // `at+jwt` is not an application's.
        let mut header = Header::new(tokens.keys.algorithm);
        header.kid = tokens.keys.signing_kid.clone();
        let claims: AccessClaims = serde_json::from_value(claims).unwrap();
        let relabelled = encode(&header, &claims, &tokens.keys.signing_key).unwrap();
        assert!(tokens.verify(&relabelled).is_err());
        let user_token = tokens.issue(self::grant()).unwrap().token;
        let user_claims: AccessClaims = serde_json::from_value(claims_of(&user_token)).unwrap();
        header.typ = Some("at+jwt".into());
        let relabelled = encode(&header, &user_claims, &tokens.keys.signing_key).unwrap();
        assert!(tokens.verify(&relabelled).is_err());
    }

    #[test]
    fn a_token_from_another_key_set_is_refused() {
        let issued = es256().issue(grant()).unwrap();
        assert!(es256().verify(&issued.token).is_err());
    }

    #[test]
    fn hs256_tokens_do_not_pass_an_es256_verifier() {
        let secret = "0123456789abcdef0123456789abcdef";
        let hs = settings(KeySource::SharedSecret(secret.into()), JwtAlgorithm::Hs256);
        let hs = AccessTokens::new(SigningKeys::load(&hs).unwrap(), &hs, ISSUER);
        let issued = hs.issue(grant()).unwrap();
        assert!(hs.verify(&issued.token).is_ok());
        assert!(es256().verify(&issued.token).is_err());
    }

    #[test]
    fn the_leeway_is_the_configured_one() {
        let hs256 = |leeway| {
            let mut settings = settings(
                KeySource::SharedSecret("0123456789abcdef0123456789abcdef".into()),
                JwtAlgorithm::Hs256,
            );
            settings.leeway = Duration::from_secs(leeway);
            AccessTokens::new(SigningKeys::load(&settings).unwrap(), &settings, ISSUER)
        };
        let (strict, lenient) = (hs256(5), hs256(30));
        let now = jsonwebtoken::get_current_timestamp();
        let signed = |exp: u64, iat: u64| {
            let grant = grant();
            let claims = AccessClaims {
                sub: grant.user_id.to_string(),
                aud: vec!["fastapi-users:auth".into()],
                exp,
                iat,
                iss: "gatehouse".into(),
                jti: Uuid::new_v4().to_string(),
                token_use: ACCESS_TOKEN_USE.into(),
                sid: Some(grant.session_id.to_string()),
                rgen: None,
                amr: None,
                auth_time: None,
                client_id: None,
                scope: None,
            };
            let header = Header::new(strict.keys.algorithm);
            encode(&header, &claims, &strict.keys.signing_key).unwrap()
        };

        let expired_20s_ago = signed(now - 20, now - 1800);
        assert!(strict.verify(&expired_20s_ago).is_err());
        assert!(lenient.verify(&expired_20s_ago).is_ok());
        let issued_in_20s = signed(now + 1800, now + 20);
        assert!(strict.verify(&issued_in_20s).is_err());
        assert!(lenient.verify(&issued_in_20s).is_ok());
    }

    #[test]
    fn tokens_with_critical_parameters_are_refused() {
        let tokens = es256();
        let issued = tokens.issue(grant()).unwrap();
        let claims: AccessClaims = serde_json::from_value(claims_of(&issued.token)).unwrap();
        for crit in [vec!["x-unknown".to_owned()], vec!["exp".to_owned()], vec![]] {
            let mut header = Header::new(tokens.keys.algorithm);
            header.kid = tokens.keys.signing_kid.clone();
            header.crit = Some(crit.clone());
            let token = encode(&header, &claims, &tokens.keys.signing_key).unwrap();
            assert!(tokens.verify(&token).is_err(), "crit {crit:?}");
        }
    }

    #[test]
    fn garbage_is_refused_without_panicking() {
        let tokens = es256();
        for garbage in [
            "",
            ".",
            "..",
            "a.b.c",
            "eyJhbGciOiJub25lIn0.e30.",
            &"x".repeat(10_000),
        ] {
            assert!(tokens.verify(garbage).is_err(), "{garbage}");
        }
    }
}
