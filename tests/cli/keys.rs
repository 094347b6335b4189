//! `gatehouse keys generate`: a fresh P-256 key each time, and a production server that
//! publishes and signs with exactly the key it is given.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::{json, Value};

use crate::harness::*;

/// The decoded header of a JWT.
fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().expect("a JWT has a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url header"))
        .expect("JSON header")
}

#[test]
fn keys_generate_prints_a_private_p256_key_and_its_public_half() {
    let dir = tempfile::tempdir().unwrap();
    let (out, keys) = keys_generate(dir.path());

    let private = only_key(&keys.private);
    assert_eq!(private["kty"], "EC", "{private}");
    assert_eq!(private["crv"], "P-256", "{private}");
    assert_eq!(private["alg"], "ES256", "{private}");
    let (d, x, y, kid) = (
        str_of(private, "d"),
        str_of(private, "x"),
        str_of(private, "y"),
        str_of(private, "kid"),
    );
    // d is really the private half of (x, y).
    let secret = p256::SecretKey::from_jwk_str(
        &json!({"kty": "EC", "crv": "P-256", "x": x, "y": y, "d": d}).to_string(),
    )
    .expect("d, x, y form a P-256 key");
    let point =
        p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&secret.public_key(), false);
    assert_eq!(URL_SAFE_NO_PAD.encode(point.x().unwrap()), x);
    assert_eq!(URL_SAFE_NO_PAD.encode(point.y().unwrap()), y);

    let public = only_key(&keys.public);
    assert!(public.get("d").is_none(), "public key leaks d: {public}");
    assert!(
        !out.stdout
            .lines()
            .filter(|line| line.starts_with('#'))
            .any(|line| line.contains(d)),
        "a comment line carries the private key\n{}",
        out.stdout
    );
    assert_eq!(str_of(public, "kid"), kid);
    assert_eq!(str_of(public, "x"), x);
    assert_eq!(str_of(public, "y"), y);
    assert_eq!(public["kty"], "EC");
    assert_eq!(public["crv"], "P-256");

    let left_behind: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
    assert!(
        left_behind.is_empty(),
        "keys generate wrote files: {left_behind:?}"
    );
}

#[test]
fn keys_generate_makes_a_new_key_each_time() {
    let dir = tempfile::tempdir().unwrap();
    let (_, first) = keys_generate(dir.path());
    let (_, second) = keys_generate(dir.path());
    assert_ne!(first.encoded, second.encoded);
    assert_ne!(
        str_of(only_key(&first.private), "kid"),
        str_of(only_key(&second.private), "kid")
    );
}

#[tokio::test]
async fn production_serve_publishes_exactly_the_configured_key_and_signs_with_it() {
    let sandbox = Sandbox::new();
    let (_, keys) = keys_generate(sandbox.path());
    let configured = only_key(&keys.private);
    let jwt_jwks = keys.encoded.clone();
    // Production never creates its database implicitly.
    sandbox.run(&["migrate"], &[], None).assert_success();

    let mut server = sandbox
        .serve(&[
            ("GATEHOUSE_ENV", "production"),
            ("MFA_KEY", MFA_KEY),
            ("MFA_KEY", MFA_KEY),
            ("JWT_JWKS", jwt_jwks.as_str()),
            ("ARGON2_MEMORY_KIB", "19456"),
            ("ARGON2_ITERATIONS", "2"),
            ("PUBLIC_URL", "https://auth.example.com"),
        ])
        .await;

    let published = server.jwks().await;
    let key = only_key(&published);
    assert!(key.get("d").is_none(), "the JWKS publishes d: {published}");
    assert_eq!(str_of(key, "kid"), str_of(configured, "kid"));
    assert_eq!(str_of(key, "x"), str_of(configured, "x"));
    assert_eq!(str_of(key, "y"), str_of(configured, "y"));
    assert_eq!(key["kty"], "EC");
    assert_eq!(key["crv"], "P-256");

    server.register("signer@example.com", PASSWORD).await;
    let (access, _) = server.login("signer@example.com", PASSWORD).await;
    let header = jwt_header(&access);
    assert_eq!(header["alg"], "ES256", "{header}");
    assert_eq!(header["kid"].as_str(), Some(str_of(configured, "kid")));

    let logs = server.stop();
    assert!(
        sandbox.files_named(KEY_FILE).is_empty(),
        "a key file was generated although JWT_JWKS was set\n{logs}"
    );
    assert!(
        !logs.contains(str_of(configured, "d")),
        "the private key was logged\n{logs}"
    );
}

/// Finding 12: production refuses an HS256 secret that is long enough but not random (40
/// a's, a repeated pattern, a passphrase), naming `JWT_SECRET` without echoing it.
#[test]
fn production_refuses_a_shared_secret_that_is_not_random() {
    let sandbox = Sandbox::new();
    let forty_a = "a".repeat(40);
    let pattern = "0123456789abcdef".repeat(4);
    for weak in [
        forty_a.as_str(),
        pattern.as_str(),
        "correct horse battery staple and then some",
    ] {
        let finished = sandbox.run(
            &["migrate"],
            &[
                ("GATEHOUSE_ENV", "production"),
                ("MFA_KEY", MFA_KEY),
                ("MFA_KEY", MFA_KEY),
                ("MFA_KEY", MFA_KEY),
                ("JWT_ALGORITHM", "HS256"),
                ("JWT_SECRET", weak),
                ("ARGON2_MEMORY_KIB", "19456"),
                ("ARGON2_ITERATIONS", "2"),
                ("PUBLIC_URL", "https://auth.example.com"),
            ],
            None,
        );
        finished.assert_failure();
        assert!(
            finished.stderr.contains("JWT_SECRET"),
            "{weak}: {}",
            finished.describe()
        );
        assert!(!finished.stderr.contains(weak), "{}", finished.describe());
        assert!(
            !sandbox.db_path().exists(),
            "{weak}: a database was created"
        );
    }
}

/// Finding 12: `keys generate --hs256` prints a fresh secret of 32 random bytes each time,
/// which a production server accepts and signs with.
#[tokio::test]
async fn keys_generate_hs256_prints_a_secret_production_accepts() {
    let sandbox = Sandbox::new();
    let generate = || {
        let finished = run(
            bare_command(sandbox.path(), &["keys", "generate", "--hs256"]),
            None,
            COMMAND_TIMEOUT,
        );
        finished.assert_success();
        assert!(
            finished.stdout.lines().any(|l| l == "JWT_ALGORITHM=HS256"),
            "{}",
            finished.describe()
        );
        finished
            .stdout
            .lines()
            .find_map(|line| line.strip_prefix("JWT_SECRET="))
            .unwrap_or_else(|| panic!("no JWT_SECRET= line\n{}", finished.describe()))
            .to_owned()
    };
    let secret = generate();
    assert_ne!(secret, generate(), "a new secret each time");
    let bytes = URL_SAFE_NO_PAD
        .decode(&secret)
        .unwrap_or_else(|e| panic!("JWT_SECRET is not base64url ({e}): {secret}"));
    assert_eq!(bytes.len(), 32);

    sandbox.run(&["migrate"], &[], None).assert_success();
    let mut server = sandbox
        .serve(&[
            ("GATEHOUSE_ENV", "production"),
            ("MFA_KEY", MFA_KEY),
            ("MFA_KEY", MFA_KEY),
            ("JWT_ALGORITHM", "HS256"),
            ("JWT_SECRET", secret.as_str()),
            ("ARGON2_MEMORY_KIB", "19456"),
            ("ARGON2_ITERATIONS", "2"),
            ("PUBLIC_URL", "https://auth.example.com"),
        ])
        .await;
    server.register("hs@example.com", PASSWORD).await;
    let (access, _) = server.login("hs@example.com", PASSWORD).await;
    assert_eq!(jwt_header(&access)["alg"], "HS256");
    let logs = server.stop();
    assert!(!logs.contains(&secret), "the secret was logged\n{logs}");
}
