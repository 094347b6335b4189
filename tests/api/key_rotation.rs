//! Signing-key rotation across restarts: the first EC key of `JWT_JWKS` signs (or the one
//! `JWT_SIGNING_KID` names), every EC key in it verifies, and a dropped key's tokens stop
//! working. An RSA key in the set is published for RS256 ID tokens and never verifies an access
//! token.
//!
//! Each test runs successive apps on one database file, each with its own key set, as an
//! operator restarting the service with a rotated `JWT_JWKS` would.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use gatehouse::auth::keys::{generate_jwks, SigningKeys};
use gatehouse::domain::IdTokenAlgorithm;
use gatehouse::startup::Application;
use secrecy::ExposeSecret;
use serde_json::{json, Value};

use crate::helpers::*;
use crate::tokens::{assert_invalid_token, claims_of, header_of};

const USER: &str = "rotated@example.com";
const ADMIN: &str = "admin@example.com";

/// One private ES256 JWK, as `generate_jwks` makes it (the first key of its set).
struct Key {
    jwk: Value,
}

impl Key {
    fn generate() -> Key {
        let set = generated_set();
        let jwk = set["keys"][0].clone();
        assert_eq!(jwk["kty"], "EC");
        Key { jwk }
    }

    /// The key without its private part, as another instance might publish it.
    fn public(&self) -> Key {
        let mut jwk = self.jwk.clone();
        jwk.as_object_mut().unwrap().remove("d");
        Key { jwk }
    }

    fn kid(&self) -> &str {
        self.jwk["kid"].as_str().expect("a kid")
    }
}

/// A private set as `gatehouse keys generate` prints it: an EC key, then an RSA key.
fn generated_set() -> Value {
    let (private, public) = generate_jwks();
    assert_eq!(public.keys.len(), 2);
    serde_json::from_str(private.expose_secret()).unwrap()
}

/// `JWT_JWKS` for a set of keys, the first of which signs.
fn jwt_jwks(keys: &[&Key]) -> String {
    let set = json!({"keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>()});
    STANDARD.encode(set.to_string())
}

/// A database that outlives the app running on it, and the directory beside it.
struct Store {
    dir: tempfile::TempDir,
    database: TestDatabase,
}

impl Store {
    fn new() -> Store {
        let dir = tempfile::tempdir().unwrap();
        let database = TestDatabase::fresh(&dir);
        Store { dir, database }
    }
}

/// Starts an app on the store's database with the given key set.
async fn spawn_with_keys(store: Store, keys: &[&Key], extra: &[(&str, &str)]) -> TestApp {
    let Store { dir, database } = store;
    let jwks = jwt_jwks(keys);
    let mut vars = vec![("JWT_JWKS", jwks.as_str())];
    vars.extend_from_slice(extra);
    let settings = test_settings(&database.url, dir.path(), &vars);
    spawn_with_settings(settings, dir, database).await
}

/// The database of an app, for the next app to start on ("the restart").
fn restart(app: TestApp) -> Store {
    Store {
        dir: app.dir,
        database: app.database,
    }
}

async fn jwks(app: &TestApp) -> (Value, String) {
    let response = app
        .client
        .get(app.url("/.well-known/jwks.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cache = response.headers()["cache-control"]
        .to_str()
        .unwrap()
        .to_owned();
    (response.json().await.unwrap(), cache)
}

fn kids(set: &Value) -> Vec<String> {
    set["keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["kid"].as_str().unwrap().to_owned())
        .collect()
}

fn kid_of(token: &str) -> String {
    header_of(token)["kid"]
        .as_str()
        .expect("a kid header")
        .to_owned()
}

/// What app A (signing with `k1`) hands out: a user's tokens and a client with its token.
struct Issued {
    user: Tokens,
    client: ClientCredentials,
    client_token: String,
}

async fn first_run(store: Store, k1: &Key) -> (TestApp, Issued) {
    let app = spawn_with_keys(store, &[k1], &[]).await;
    let admin = app.superuser(ADMIN).await;
    let user = app.user(USER).await;
    let client = app
        .machine_client(&admin.access, "rotating", &["read"])
        .await;
    let client_token = app.client_token(&client).await;
    assert_eq!(kid_of(&user.access), k1.kid());
    assert_eq!(kid_of(&client_token), k1.kid());
    (
        app,
        Issued {
            user,
            client,
            client_token,
        },
    )
}

#[tokio::test]
async fn a_new_first_key_signs_while_the_old_one_still_verifies() {
    let (k1, k2) = (Key::generate(), Key::generate());
    let (a, issued) = first_run(Store::new(), &k1).await;

    let b = spawn_with_keys(restart(a), &[&k2, &k1], &[]).await;

    // Tokens signed with K1 before the restart still work.
    assert_eq!(b.get("/users/me", &issued.user.access).await.status(), 200);
    assert_eq!(b.get("/secret", &issued.client_token).await.status(), 200);
    // New tokens are signed with K2.
    let t2 = b.tokens(USER, PASSWORD).await;
    assert_eq!(kid_of(&t2.access), k2.kid());
    assert_eq!(b.get("/users/me", &t2.access).await.status(), 200);
    let client_token = b.client_token(&issued.client).await;
    assert_eq!(kid_of(&client_token), k2.kid());
    assert_eq!(b.get("/secret", &client_token).await.status(), 200);
}

#[tokio::test]
async fn the_jwks_publishes_every_key_of_the_set_without_private_parts() {
    let (k1, k2) = (Key::generate(), Key::generate());
    let a = spawn_with_keys(Store::new(), &[&k1], &[]).await;
    let (set, _) = jwks(&a).await;
    assert_eq!(kids(&set), [k1.kid()]);

    let b = spawn_with_keys(restart(a), &[&k2, &k1], &[]).await;
    let (set, cache_control) = jwks(&b).await;

    assert_eq!(cache_control, "public, max-age=300");
    let mut listed = kids(&set);
    listed.sort();
    let mut expected = vec![k1.kid().to_owned(), k2.kid().to_owned()];
    expected.sort();
    assert_eq!(listed, expected);
    for private in [&k1, &k2] {
        let key = set["keys"]
            .as_array()
            .unwrap()
            .iter()
            .find(|k| k["kid"] == private.kid())
            .expect("the key is published");
        assert!(key.get("d").is_none(), "a private part is published: {key}");
        for member in ["kty", "crv", "x", "y", "alg", "use"] {
            assert_eq!(key[member], private.jwk[member], "{member} of {key}");
        }
        assert_eq!(key["use"], "sig");
        assert_eq!(key["alg"], "ES256");
    }
}

#[tokio::test]
async fn dropping_the_old_key_refuses_its_tokens_and_keeps_the_new_ones() {
    let (k1, k2) = (Key::generate(), Key::generate());
    let (a, issued) = first_run(Store::new(), &k1).await;
    let b = spawn_with_keys(restart(a), &[&k2, &k1], &[]).await;
    let t2 = b.tokens(USER, PASSWORD).await;
    let client_token_2 = b.client_token(&issued.client).await;

    let c = spawn_with_keys(restart(b), &[&k2], &[]).await;

    assert_invalid_token(
        c.get("/users/me", &issued.user.access).await,
        "T1 under [K2]",
    )
    .await;
    assert_invalid_token(
        c.get("/secret", &issued.client_token).await,
        "a K1 client token under [K2]",
    )
    .await;
    assert_eq!(c.get("/users/me", &t2.access).await.status(), 200);
    assert_eq!(c.get("/secret", &client_token_2).await.status(), 200);
    let (set, _) = jwks(&c).await;
    assert_eq!(kids(&set), [k2.kid()]);
}

#[tokio::test]
async fn a_refresh_token_issued_under_the_old_key_still_refreshes() {
    let (k1, k2) = (Key::generate(), Key::generate());
    let (a, issued) = first_run(Store::new(), &k1).await;

    let b = spawn_with_keys(restart(a), &[&k2, &k1], &[]).await;
    let response = b.refresh(&issued.user.refresh).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(kid_of(access), k2.kid());
    assert_eq!(b.get("/users/me", access).await.status(), 200);
    // Its successor refreshes again, at either refresh endpoint.
    let successor = body["refresh_token"].as_str().unwrap();
    let response = b
        .token_request(&[
            ("grant_type", "refresh_token"),
            ("refresh_token", successor),
        ])
        .await;
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn refresh_tokens_survive_dropping_the_key_they_were_issued_under() {
    let (k1, k2) = (Key::generate(), Key::generate());
    let (a, issued) = first_run(Store::new(), &k1).await;
    let b = spawn_with_keys(restart(a), &[&k2, &k1], &[]).await;

    // Refresh tokens are opaque: no key signs them, so no key rotation ends a session.
    let c = spawn_with_keys(restart(b), &[&k2], &[]).await;
    let response = c.refresh(&issued.user.refresh).await;

    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    let access = body["access_token"].as_str().unwrap();
    assert_eq!(kid_of(access), k2.kid());
    assert_eq!(c.get("/users/me", access).await.status(), 200);
}

/// The control for the test below: a restart alone (same keys) keeps a retried refresh working.
#[tokio::test]
async fn a_refresh_replayed_within_the_grace_window_after_a_plain_restart_keeps_the_session() {
    let grace = [("REFRESH_REUSE_GRACE", "300")];
    let k1 = Key::generate();
    let a = spawn_with_keys(Store::new(), &[&k1], &grace).await;
    let login = a.user(USER).await;
    let response = a.refresh(&login.refresh).await;
    assert_eq!(response.status(), 200);
    let lost: Value = response.json().await.unwrap();

    let b = spawn_with_keys(restart(a), &[&k1], &grace).await;
    let retry = b.refresh(&login.refresh).await;

    assert_eq!(retry.status(), 200);
    let body: Value = retry.json().await.unwrap();
    assert_eq!(body["refresh_token"], lost["refresh_token"]);
}

#[tokio::test]
async fn a_refresh_replayed_within_the_grace_window_across_a_rotation_keeps_the_session() {
    let grace = [("REFRESH_REUSE_GRACE", "300")];
    let k1 = Key::generate();
    let k2 = Key::generate();
    let a = spawn_with_keys(Store::new(), &[&k1], &grace).await;
    let login = a.user(USER).await;
    // The client refreshes, but loses the response (the server has rotated the token) ...
    let response = a.refresh(&login.refresh).await;
    assert_eq!(response.status(), 200);
    let lost: Value = response.json().await.unwrap();
    let lost_refresh = lost["refresh_token"].as_str().unwrap().to_owned();

    // ... the service restarts with a new first key, and the client retries at once.
    let b = spawn_with_keys(restart(a), &[&k2, &k1], &grace).await;
    let retry = b.refresh(&login.refresh).await;

    // Within the grace window a retry is not theft: it gets the same successor, and the
    // session goes on, as it does without a rotation.
    let status = retry.status();
    let body: Value = retry.json().await.unwrap();
    assert_eq!(status, 200, "the retry within the grace window: {body}");
    assert_eq!(body["refresh_token"], lost_refresh.as_str());
    assert_eq!(b.refresh(&lost_refresh).await.status(), 200);
}

#[tokio::test]
async fn jwt_signing_kid_rotates_in_three_steps_while_every_published_key_verifies() {
    let (k1, k2) = (Key::generate(), Key::generate());
    let (a, issued) = first_run(Store::new(), &k1).await;

    // 1. K2 is published after K1: K1 still signs.
    let b = spawn_with_keys(restart(a), &[&k1, &k2], &[]).await;
    let (set, _) = jwks(&b).await;
    assert_eq!(kids(&set), [k1.kid(), k2.kid()]);
    let published = b.tokens(USER, PASSWORD).await;
    assert_eq!(kid_of(&published.access), k1.kid());

    // 2. JWT_SIGNING_KID names K2, the second key: it signs, and both keys verify.
    let selected = [("JWT_SIGNING_KID", k2.kid())];
    let c = spawn_with_keys(restart(b), &[&k1, &k2], &selected).await;
    let (set, _) = jwks(&c).await;
    assert_eq!(kids(&set), [k1.kid(), k2.kid()]);
    let switched = c.tokens(USER, PASSWORD).await;
    assert_eq!(kid_of(&switched.access), k2.kid());
    assert_eq!(header_of(&switched.access)["alg"], "ES256");
    for (token, what) in [
        (&switched.access, "signed with K2"),
        (&published.access, "signed with K1 after K2 was published"),
        (&issued.user.access, "signed with K1 before"),
    ] {
        assert_eq!(c.get("/users/me", token).await.status(), 200, "{what}");
    }
    let client_token = c.client_token(&issued.client).await;
    assert_eq!(kid_of(&client_token), k2.kid());
    assert_eq!(c.get("/secret", &client_token).await.status(), 200);
    assert_eq!(c.get("/secret", &issued.client_token).await.status(), 200);

    // 3. K1 is removed: its tokens stop working, K2's go on.
    let d = spawn_with_keys(restart(c), &[&k2], &selected).await;
    assert_invalid_token(
        d.get("/users/me", &published.access).await,
        "a K1 token under [K2]",
    )
    .await;
    assert_eq!(d.get("/users/me", &switched.access).await.status(), 200);
    let (set, _) = jwks(&d).await;
    assert_eq!(kids(&set), [k2.kid()]);
}

#[tokio::test]
async fn the_key_jwt_signing_kid_names_may_be_any_private_key_and_the_others_public() {
    let (k1, k2) = (Key::generate(), Key::generate());
    // Another instance's key, published without its private part, comes first.
    let app = spawn_with_keys(
        Store::new(),
        &[&k1.public(), &k2],
        &[("JWT_SIGNING_KID", k2.kid())],
    )
    .await;
    let tokens = app.user(USER).await;
    assert_eq!(kid_of(&tokens.access), k2.kid());
    let (set, _) = jwks(&app).await;
    assert_eq!(kids(&set), [k1.kid(), k2.kid()]);
}

#[tokio::test]
async fn a_jwt_signing_kid_that_cannot_sign_refuses_to_start_naming_the_variable() {
    let k1 = Key::generate();
    let k2 = Key::generate().public();
    let rsa = Key {
        jwk: generated_set()["keys"][1].clone(),
    };
    for (kid, why) in [
        ("no-such-kid", "no key has it"),
        (rsa.kid(), "the RSA key"),
        (k2.kid(), "a key without `d`"),
    ] {
        let Store { dir, database } = Store::new();
        let jwks = jwt_jwks(&[&k1, &k2, &rsa]);
        let vars = [("JWT_JWKS", jwks.as_str()), ("JWT_SIGNING_KID", kid)];
        let settings = test_settings(&database.url, dir.path(), &vars);
        let Err(error) = Application::build(settings).await else {
            panic!("{why}: the application started");
        };
        let error = error.to_string();
        assert!(error.contains("JWT_SIGNING_KID"), "{why}: {error}");
        assert!(error.contains(kid), "{why}: {error}");
    }
    // Without JWT_SIGNING_KID the same set starts, signing with K1.
    let app = spawn_with_keys(Store::new(), &[&k1, &k2, &rsa], &[]).await;
    assert_eq!(kid_of(&app.user(USER).await.access), k1.kid());
}

#[tokio::test]
async fn an_rsa_key_is_published_for_id_tokens_and_never_verifies_an_access_token() {
    let set = generated_set();
    let (ec, rsa) = (
        Key {
            jwk: set["keys"][0].clone(),
        },
        Key {
            jwk: set["keys"][1].clone(),
        },
    );
    let store = Store::new();
    let jwks_var = jwt_jwks(&[&ec, &rsa]);
    let settings = test_settings(
        &store.database.url,
        store.dir.path(),
        &[("JWT_JWKS", jwks_var.as_str())],
    );
    let keys = SigningKeys::load(&settings.jwt).unwrap();
    let app = spawn_with_keys(store, &[&ec, &rsa], &[]).await;

    let (published, _) = jwks(&app).await;
    assert_eq!(kids(&published), [ec.kid(), rsa.kid()]);
    let rsa_public = &published["keys"][1];
    let mut members: Vec<&str> = rsa_public
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
    assert_eq!(rsa_public["kty"], "RSA");
    assert_eq!(rsa_public["alg"], "RS256");
    assert_eq!(rsa_public["use"], "sig");
    assert_eq!(rsa_public["n"], rsa.jwk["n"]);
    assert_eq!(rsa_public["e"], rsa.jwk["e"]);

    // Access tokens are ES256, signed by the EC key.
    let tokens = app.user(USER).await;
    assert_eq!(header_of(&tokens.access)["alg"], "ES256");
    assert_eq!(kid_of(&tokens.access), ec.kid());
    // The same claims signed with the set's RSA key are refused; with its EC key, accepted.
    let claims = claims_of(&tokens.access);
    let rs256 = keys
        .sign_as(IdTokenAlgorithm::Rs256, "JWT", &claims)
        .unwrap();
    assert_eq!(header_of(&rs256)["alg"], "RS256");
    assert_eq!(kid_of(&rs256), rsa.kid());
    assert_invalid_token(
        app.get("/users/me", &rs256).await,
        "an access token signed with the RSA key",
    )
    .await;
    let es256 = keys
        .sign_as(IdTokenAlgorithm::Es256, "JWT", &claims)
        .unwrap();
    assert_eq!(app.get("/users/me", &es256).await.status(), 200);
}
