//! Access tokens: what the verifier accepts, and everything it must refuse.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use p256::ecdsa::signature::{Signer, Verifier};
use p256::ecdsa::{Signature, SigningKey, VerifyingKey};
use p256::pkcs8::{EncodePublicKey, LineEnding};
use reqwest::header::{AUTHORIZATION, WWW_AUTHENTICATE};
use serde_json::{json, Value};

use crate::helpers::*;

// ---------------------------------------------------------------------------------------------
// Forging kit, shared with the other token-related modules.
// ---------------------------------------------------------------------------------------------

/// The private key the development server generated beside its database, and its `kid`.
pub(crate) struct DevKey {
    pub kid: String,
    pub signing: SigningKey,
}

/// Reads the development key set (`<tempdir>/gatehouse-dev-jwks.json`) of a running test app.
pub(crate) fn dev_key(app: &TestApp) -> DevKey {
    let path = app.dir.path().join("gatehouse-dev-jwks.json");
    let text = std::fs::read_to_string(&path).expect("the development key file exists");
    let jwks: Value = serde_json::from_str(&text).expect("the development key file is JSON");
    let jwk = &jwks["keys"][0];
    // elliptic-curve's JWK parser refuses members it does not know (kid, alg, use).
    let bare =
        json!({"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"], "d": jwk["d"]});
    let secret = p256::SecretKey::from_jwk_str(&bare.to_string()).expect("a P-256 private JWK");
    DevKey {
        kid: jwk["kid"].as_str().expect("the key has a kid").to_owned(),
        signing: SigningKey::from(&secret),
    }
}

pub(crate) fn b64(bytes: impl AsRef<[u8]>) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

/// Decodes one base64url JSON part of a compact JWT (0 = header, 1 = claims).
pub(crate) fn jwt_part(token: &str, index: usize) -> Value {
    let part = token.split('.').nth(index).expect("a compact JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(part).expect("base64url")).expect("JSON")
}

pub(crate) fn header_of(token: &str) -> Value {
    jwt_part(token, 0)
}

pub(crate) fn claims_of(token: &str) -> Value {
    jwt_part(token, 1)
}

/// The session an access token belongs to (its `sid` claim).
pub(crate) fn session_of(access_token: &str) -> String {
    claims_of(access_token)["sid"]
        .as_str()
        .expect("an access token names its session")
        .to_owned()
}

pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn signing_input(header: &Value, claims: &Value) -> String {
    format!("{}.{}", b64(header.to_string()), b64(claims.to_string()))
}

pub(crate) fn es256_header(kid: &str) -> Value {
    json!({"alg": "ES256", "kid": kid, "typ": "JWT"})
}

/// Signs `header.claims` with an ES256 key, as a compact JWS.
pub(crate) fn sign_es256(header: &Value, claims: &Value, key: &SigningKey) -> String {
    let message = signing_input(header, claims);
    let signature: Signature = key.sign(message.as_bytes());
    format!("{message}.{}", b64(signature.to_bytes()))
}

/// Signs `header.claims` with HMAC-SHA256 under `secret`, as a compact JWS.
pub(crate) fn sign_hs256(header: &Value, claims: &Value, secret: &[u8]) -> String {
    let message = signing_input(header, claims);
    format!("{message}.{}", hmac_sha256(secret, &message))
}

/// The base64url HMAC-SHA256 of a JWS signing input.
fn hmac_sha256(secret: &[u8], message: &str) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret).expect("any key length");
    mac.update(message.as_bytes());
    b64(mac.finalize().into_bytes())
}

/// Signs `claims` with the server's own development key, under its real `kid`.
pub(crate) fn forge(app: &TestApp, claims: &Value) -> String {
    let key = dev_key(app);
    sign_es256(&es256_header(&key.kid), claims, &key.signing)
}

pub(crate) fn www_authenticate(response: &reqwest::Response) -> String {
    response
        .headers()
        .get(WWW_AUTHENTICATE)
        .map(|value| value.to_str().unwrap().to_owned())
        .unwrap_or_default()
}

/// Asserts the contract's answer to a token that was presented and rejected:
/// 401 `{"detail": "Unauthorized"}` with `WWW-Authenticate: Bearer error="invalid_token"`.
pub(crate) async fn assert_invalid_token(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 401, "{what} must be refused");
    let challenge = www_authenticate(&response);
    assert!(
        challenge.starts_with("Bearer"),
        "{what}: WWW-Authenticate is `{challenge}`"
    );
    assert!(
        challenge.contains(r#"error="invalid_token""#),
        "{what}: WWW-Authenticate is `{challenge}`"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"detail": "Unauthorized"}), "{what}");
}

/// Asserts a 401 for a request that presented no bearer token at all.
async fn assert_unauthenticated(response: reqwest::Response, what: &str) {
    assert_eq!(response.status(), 401, "{what} must be refused");
    let challenge = www_authenticate(&response);
    assert!(
        challenge.starts_with("Bearer"),
        "{what}: WWW-Authenticate is `{challenge}`"
    );
    let body: Value = response.json().await.unwrap();
    assert_eq!(body, json!({"detail": "Unauthorized"}), "{what}");
}

async fn get_with_authorization(app: &TestApp, path: &str, value: &str) -> reqwest::Response {
    app.client
        .get(app.url(path))
        .header(AUTHORIZATION, value)
        .send()
        .await
        .unwrap()
}

async fn user_id(app: &TestApp, access: &str) -> String {
    let response = app.get("/users/me", access).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    me["id"].as_str().unwrap().to_owned()
}

/// A user's genuine claims, after checking that re-signing them unchanged is accepted, so that
/// a refusal in the test that follows is caused by the change it makes, not by the forging kit.
async fn genuine_claims(app: &TestApp) -> Value {
    let tokens = app.user("forger@example.com").await;
    let claims = claims_of(&tokens.access);
    let response = app.get("/users/me", &forge(app, &claims)).await;
    assert_eq!(
        response.status(),
        200,
        "a re-signed copy of a genuine token is accepted"
    );
    claims
}

// ---------------------------------------------------------------------------------------------
// Missing and foreign credentials
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn no_authorization_header_is_401_without_an_error_code() {
    let app = spawn_app().await;

    let response = app.client.get(app.url("/users/me")).send().await.unwrap();

    assert_eq!(response.status(), 401);
    let challenge = www_authenticate(&response);
    assert!(challenge.starts_with("Bearer"), "{challenge}");
    // RFC 6750 §3.1: no error code when the request carried no credentials.
    assert!(!challenge.contains("error="), "{challenge}");
    assert_detail(response, 401, "Unauthorized").await;
}

#[tokio::test]
async fn basic_authorization_is_not_accepted() {
    let app = spawn_app().await;
    app.user("basic@example.com").await;
    let credentials = b64(format!("basic@example.com:{PASSWORD}"));

    let response = get_with_authorization(&app, "/users/me", &format!("Basic {credentials}")).await;

    assert_unauthenticated(response, "Basic credentials").await;
}

#[tokio::test]
async fn garbage_bearer_tokens_are_refused() {
    let app = spawn_app().await;

    for token in [
        "garbage",
        "null",
        "Bearer",
        "0",
        "%00",
        "eyJhbGciOiJFUzI1NiJ9",
    ] {
        assert_invalid_token(app.get("/users/me", token).await, token).await;
    }
}

#[tokio::test]
async fn malformed_jwts_are_refused() {
    let app = spawn_app().await;
    let tokens = app.user("malformed@example.com").await;
    let [header, payload, signature]: [&str; 3] = tokens
        .access
        .split('.')
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();

    let malformed = [
        "a.b.c".to_owned(),
        "..".to_owned(),
        format!("{header}.{payload}"),
        format!("{header}.{payload}.{signature}.{signature}"),
        format!("{}.{payload}.{signature}", b64("{not json")),
        format!("{header}.{}.{signature}", b64("[1, 2, 3]")),
        format!("{header}.{payload}.{}", &signature[..signature.len() - 4]),
        format!("{header}.{payload}.{signature}AA"),
        format!("{header}.{payload}.!!!!"),
    ];
    for token in &malformed {
        assert_invalid_token(app.get("/users/me", token).await, token).await;
    }
    // The genuine token still works, so the refusals above are about the damage.
    assert_eq!(app.get("/users/me", &tokens.access).await.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// Claims
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn expired_token_is_refused() {
    let app = spawn_app().await;
    let mut claims = genuine_claims(&app).await;
    claims["exp"] = json!(now() - 3600);
    claims["iat"] = json!(now() - 3600 - 1800);

    assert_invalid_token(app.get("/users/me", &forge(&app, &claims)).await, "expired").await;
}

#[tokio::test]
async fn wrong_audience_is_refused() {
    let app = spawn_app().await;
    let claims = genuine_claims(&app).await;

    for audience in [
        json!(["another-service"]),
        json!([]),
        json!("another-service"),
    ] {
        let mut claims = claims.clone();
        claims["aud"] = audience.clone();
        let what = format!("aud {audience}");
        assert_invalid_token(app.get("/users/me", &forge(&app, &claims)).await, &what).await;
    }
}

#[tokio::test]
async fn wrong_issuer_is_refused() {
    let app = spawn_app().await;
    let mut claims = genuine_claims(&app).await;
    claims["iss"] = json!("https://evil.example.com");

    assert_invalid_token(app.get("/users/me", &forge(&app, &claims)).await, "iss").await;
}

#[tokio::test]
async fn token_without_jti_is_refused() {
    let app = spawn_app().await;
    let mut claims = genuine_claims(&app).await;
    claims.as_object_mut().unwrap().remove("jti");

    assert_invalid_token(app.get("/users/me", &forge(&app, &claims)).await, "no jti").await;
}

#[tokio::test]
async fn token_without_token_use_is_refused() {
    let app = spawn_app().await;
    let mut claims = genuine_claims(&app).await;
    claims.as_object_mut().unwrap().remove("token_use");

    let what = "no token_use";
    assert_invalid_token(app.get("/users/me", &forge(&app, &claims)).await, what).await;
}

#[tokio::test]
async fn token_for_another_use_is_refused() {
    let app = spawn_app().await;
    let claims = genuine_claims(&app).await;

    for token_use in ["refresh", "reset", "verify", "Access", "", "client"] {
        let mut claims = claims.clone();
        claims["token_use"] = json!(token_use);
        let what = format!("token_use {token_use:?}");
        assert_invalid_token(app.get("/users/me", &forge(&app, &claims)).await, &what).await;
    }
}

#[tokio::test]
async fn token_missing_sub_exp_aud_or_iss_is_refused() {
    let app = spawn_app().await;
    let claims = genuine_claims(&app).await;

    for claim in ["sub", "exp", "aud", "iss"] {
        let mut claims = claims.clone();
        claims.as_object_mut().unwrap().remove(claim);
        let what = format!("no {claim}");
        assert_invalid_token(app.get("/users/me", &forge(&app, &claims)).await, &what).await;
    }
}

#[tokio::test]
async fn token_for_an_unknown_user_is_refused() {
    let app = spawn_app().await;
    let claims = genuine_claims(&app).await;

    for sub in [uuid::Uuid::new_v4().to_string(), "not-a-uuid".to_owned()] {
        let mut claims = claims.clone();
        claims["sub"] = json!(sub);
        let what = format!("sub {sub}");
        assert_invalid_token(app.get("/users/me", &forge(&app, &claims)).await, &what).await;
    }
}

#[tokio::test]
async fn tampered_payload_is_refused() {
    let app = spawn_app().await;
    let mallory = app.user("mallory@example.com").await;
    let victim = app.user("victim@example.com").await;
    let victim_id = user_id(&app, &victim.access).await;
    assert_ne!(user_id(&app, &mallory.access).await, victim_id);

    let [header, _, signature]: [&str; 3] = mallory
        .access
        .split('.')
        .collect::<Vec<_>>()
        .try_into()
        .unwrap();
    let mut claims = claims_of(&mallory.access);
    claims["sub"] = json!(victim_id);
    let tampered = format!("{header}.{}.{signature}", b64(claims.to_string()));

    assert_invalid_token(app.get("/users/me", &tampered).await, "tampered sub").await;
}

// ---------------------------------------------------------------------------------------------
// Algorithms and keys
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn alg_none_is_refused() {
    let app = spawn_app().await;
    let claims = genuine_claims(&app).await;
    let kid = dev_key(&app).kid;

    let headers = [
        json!({"alg": "none", "typ": "JWT"}),
        json!({"alg": "none", "kid": kid, "typ": "JWT"}),
        json!({"alg": "None", "kid": kid, "typ": "JWT"}),
        json!({"alg": "NONE", "kid": kid, "typ": "JWT"}),
        // The right algorithm, with the signature stripped.
        es256_header(&kid),
    ];
    for header in &headers {
        let unsigned = format!("{}.", signing_input(header, &claims));
        let what = format!("unsigned, header {header}");
        assert_invalid_token(app.get("/users/me", &unsigned).await, &what).await;
    }
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused() {
    let app = spawn_app().await;
    let claims = genuine_claims(&app).await;
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let jwk = &jwks["keys"][0];
    let kid = jwk["kid"].as_str().unwrap();
    let public_jwk = json!({"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"]});
    let public = p256::PublicKey::from_jwk_str(&public_jwk.to_string()).unwrap();
    let pem = public.to_public_key_pem(LineEnding::LF).unwrap();
    let der = public.to_public_key_der().unwrap();
    let x = URL_SAFE_NO_PAD.decode(jwk["x"].as_str().unwrap()).unwrap();
    let y = URL_SAFE_NO_PAD.decode(jwk["y"].as_str().unwrap()).unwrap();
    let sec1 = [&[4u8][..], &x, &y].concat();

    let secrets: Vec<Vec<u8>> = vec![
        pem.as_bytes().to_vec(),
        pem.trim_end().as_bytes().to_vec(),
        der.as_bytes().to_vec(),
        sec1,
        [x.clone(), y].concat(),
        x,
        jwk.to_string().into_bytes(),
        public_jwk.to_string().into_bytes(),
    ];
    for (i, secret) in secrets.iter().enumerate() {
        for header in [
            json!({"alg": "HS256", "kid": kid, "typ": "JWT"}),
            json!({"alg": "HS256", "typ": "JWT"}),
        ] {
            let token = sign_hs256(&header, &claims, secret);
            let what = format!("HS256 with public-key encoding #{i}, header {header}");
            assert_invalid_token(app.get("/users/me", &token).await, &what).await;
        }
    }
}

#[tokio::test]
async fn unknown_kid_is_refused() {
    let app = spawn_app().await;
    let claims = genuine_claims(&app).await;
    let key = dev_key(&app);

    let token = sign_es256(&es256_header("no-such-key"), &claims, &key.signing);

    assert_invalid_token(app.get("/users/me", &token).await, "unknown kid").await;
}

#[tokio::test]
async fn token_signed_by_another_key_with_the_same_kid_is_refused() {
    let app = spawn_app().await;
    let claims = genuine_claims(&app).await;
    let kid = dev_key(&app).kid;
    let stranger = SigningKey::random(&mut rand_core::OsRng);

    let token = sign_es256(&es256_header(&kid), &claims, &stranger);

    assert_invalid_token(app.get("/users/me", &token).await, "foreign key").await;
}

#[tokio::test]
async fn refresh_token_is_not_an_access_token() {
    let app = spawn_app().await;
    let tokens = app.user("refresh-as-bearer@example.com").await;

    assert_invalid_token(app.get("/users/me", &tokens.refresh).await, "refresh token").await;
    assert_invalid_token(app.get("/secret", &tokens.refresh).await, "refresh token").await;
}

// ---------------------------------------------------------------------------------------------
// The user behind the token is checked on every request
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn deleted_users_token_is_refused() {
    let app = spawn_app().await;
    let admin = app.superuser("admin@example.com").await;
    let doomed = app.user("doomed@example.com").await;
    let doomed_id = user_id(&app, &doomed.access).await;

    let response = app
        .delete(&format!("/users/{doomed_id}"), &admin.access)
        .await;
    assert_eq!(response.status(), 204);
    assert!(app.user_row("doomed@example.com").is_none());

    assert_invalid_token(app.get("/users/me", &doomed.access).await, "deleted user").await;
}

#[tokio::test]
async fn deactivated_users_token_is_refused_at_once() {
    let app = spawn_app().await;
    let tokens = app.user("sleepy@example.com").await;
    assert_eq!(app.get("/users/me", &tokens.access).await.status(), 200);

    app.execute("UPDATE users SET is_active = FALSE WHERE email = 'sleepy@example.com'");

    assert_invalid_token(app.get("/users/me", &tokens.access).await, "inactive user").await;
    assert_invalid_token(app.get("/secret", &tokens.access).await, "inactive user").await;
}

#[tokio::test]
async fn demoted_superuser_loses_superuser_access_at_once() {
    let app = spawn_app().await;
    let admin = app.superuser("boss@example.com").await;
    let other = app.user("staff@example.com").await;
    let other_id = user_id(&app, &other.access).await;
    let path = format!("/users/{other_id}");
    assert_eq!(app.get(&path, &admin.access).await.status(), 200);

    app.execute("UPDATE users SET is_superuser = FALSE WHERE email = 'boss@example.com'");

    assert_detail(app.get(&path, &admin.access).await, 403, "Forbidden").await;
    // Still a valid user, just no longer a superuser.
    assert_eq!(app.get("/users/me", &admin.access).await.status(), 200);
}

// ---------------------------------------------------------------------------------------------
// What a genuine token looks like
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn login_token_verifies_independently_against_the_published_jwks() {
    let app = spawn_app().await;
    let tokens = app.user("verify-me@example.com").await;
    let me: Value = app
        .get("/users/me", &tokens.access)
        .await
        .json()
        .await
        .unwrap();
    let jwks: Value = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();

    let header = header_of(&tokens.access);
    assert_eq!(header["alg"], "ES256");
    assert_eq!(header["typ"], "JWT");
    let kid = header["kid"].as_str().expect("the header names its key");
    let jwk = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|key| key["kid"] == kid)
        .expect("the JWKS publishes the token's kid");
    let public_jwk = json!({"kty": jwk["kty"], "crv": jwk["crv"], "x": jwk["x"], "y": jwk["y"]});
    let public = p256::PublicKey::from_jwk_str(&public_jwk.to_string()).unwrap();
    let verifying = VerifyingKey::from(&public);

    let (message, signature) = tokens.access.rsplit_once('.').unwrap();
    let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
    assert_eq!(signature.len(), 64, "a raw r||s ES256 signature");
    let signature = Signature::from_slice(&signature).unwrap();
    verifying
        .verify(message.as_bytes(), &signature)
        .expect("the signature verifies with the published key");
    assert!(verifying.verify(b"something else", &signature).is_err());

    let claims = claims_of(&tokens.access);
    assert_eq!(claims["aud"], json!(["fastapi-users:auth"]));
    assert_eq!(claims["iss"], "gatehouse");
    assert_eq!(claims["token_use"], "access");
    assert_eq!(claims["sub"], me["id"]);
    let iat = claims["iat"].as_i64().unwrap();
    assert_eq!(claims["exp"].as_i64().unwrap() - iat, 1800);
    assert!((iat - now()).abs() <= 60, "iat {iat} is now");
    uuid::Uuid::parse_str(claims["jti"].as_str().unwrap()).expect("jti is a UUID");
    uuid::Uuid::parse_str(claims["sid"].as_str().unwrap()).expect("sid is a UUID");
}

#[tokio::test]
async fn hs256_mode_signs_with_the_shared_secret() {
    let secret = "an-hs256-test-secret-of-well-over-32-bytes";
    let app = spawn_app_with(&[("JWT_ALGORITHM", "HS256"), ("JWT_SECRET", secret)]).await;
    let tokens = app.user("hs@example.com").await;

    let header = header_of(&tokens.access);
    assert_eq!(header["alg"], "HS256");
    let (message, signature) = tokens.access.rsplit_once('.').unwrap();
    assert_eq!(
        hmac_sha256(secret.as_bytes(), message),
        signature,
        "the token is an HMAC-SHA256 under JWT_SECRET"
    );
    let claims = claims_of(&tokens.access);
    assert_eq!(claims["token_use"], "access");
    assert_eq!(claims["aud"], json!(["fastapi-users:auth"]));
    let response = app.get("/users/me", &tokens.access).await;
    assert_eq!(response.status(), 200);
    let me: Value = response.json().await.unwrap();
    assert_eq!(me["email"], "hs@example.com");

    let jwks = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(jwks.status(), 200);
    assert_eq!(jwks.json::<Value>().await.unwrap(), json!({"keys": []}));
}

#[tokio::test]
async fn hs256_mode_refuses_other_algorithms_and_secrets() {
    let secret = "an-hs256-test-secret-of-well-over-32-bytes";
    let app = spawn_app_with(&[("JWT_ALGORITHM", "HS256"), ("JWT_SECRET", secret)]).await;
    let tokens = app.user("hs-strict@example.com").await;
    let claims = claims_of(&tokens.access);
    let hs_header = header_of(&tokens.access);
    // The forging kit reproduces an accepted token.
    let resigned = sign_hs256(&hs_header, &claims, secret.as_bytes());
    assert_eq!(app.get("/users/me", &resigned).await.status(), 200);

    let stranger = SigningKey::random(&mut rand_core::OsRng);
    let forged = [
        (
            "another secret",
            sign_hs256(
                &hs_header,
                &claims,
                b"another-secret-of-well-over-32-bytes!!",
            ),
        ),
        (
            "ES256",
            sign_es256(&es256_header("any"), &claims, &stranger),
        ),
        (
            "alg none",
            format!(
                "{}.",
                signing_input(&json!({"alg": "none", "typ": "JWT"}), &claims)
            ),
        ),
    ];
    for (what, token) in &forged {
        assert_invalid_token(app.get("/users/me", token).await, what).await;
    }
}

/// Finding 15: a token signed with the server's own key, with every claim right, but whose
/// header lists a critical parameter (`crit`, RFC 7515 §4.1.11) the verifier does not
/// understand, is refused; the same token without `crit` is accepted.
#[tokio::test]
async fn tokens_naming_critical_header_parameters_are_refused() {
    let app = spawn_app().await;
    let tokens = app.user("crit@example.com").await;
    let claims = claims_of(&tokens.access);
    let key = dev_key(&app);

    let plain = sign_es256(&es256_header(&key.kid), &claims, &key.signing);
    assert_eq!(app.get("/users/me", &plain).await.status(), 200);

    for (what, crit) in [
        ("an unknown extension", json!(["x-unknown"])),
        ("an unknown extension that is present", json!(["x-unknown"])),
        ("a registered parameter", json!(["exp"])),
        ("an empty list", json!([])),
    ] {
        let mut header = es256_header(&key.kid);
        header["crit"] = crit;
        if what.ends_with("present") {
            header["x-unknown"] = json!(true);
        }
        let token = sign_es256(&header, &claims, &key.signing);
        assert_invalid_token(app.get("/users/me", &token).await, what).await;
    }
}
