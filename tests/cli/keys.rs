//! `gatehouse keys generate`: a fresh P-256 key and RSA key each time, and a production server
//! that publishes exactly the keys it is given and signs access tokens with the EC one.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{json, Value};

use crate::harness::*;

/// The decoded header of a JWT.
fn jwt_header(token: &str) -> Value {
    let header = token.split('.').next().expect("a JWT has a header");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(header).expect("base64url header"))
        .expect("JSON header")
}

/// The PKCS#1 DER of an RSA private JWK (what a relying party's library would build from it).
fn rsa_private_der(jwk: &Value) -> Vec<u8> {
    use pkcs1::der::Encode as _;
    let decoded: Vec<Vec<u8>> = ["n", "e", "d", "p", "q", "dp", "dq", "qi"]
        .iter()
        .map(|member| {
            URL_SAFE_NO_PAD
                .decode(str_of(jwk, member))
                .expect("base64url")
        })
        .collect();
    let uint = |i: usize| pkcs1::UintRef::new(&decoded[i]).unwrap();
    pkcs1::RsaPrivateKey {
        modulus: uint(0),
        public_exponent: uint(1),
        private_exponent: uint(2),
        prime1: uint(3),
        prime2: uint(4),
        exponent1: uint(5),
        exponent2: uint(6),
        coefficient: uint(7),
        other_prime_infos: None,
    }
    .to_der()
    .unwrap()
}

#[test]
fn keys_generate_prints_a_private_p256_key_an_rsa_key_and_their_public_half() {
    let dir = tempfile::tempdir().unwrap();
    let (out, keys) = keys_generate(dir.path());

    let (private, private_rsa) = ec_and_rsa(&keys.private);
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

    let (public, public_rsa) = ec_and_rsa(&keys.public);
    assert!(public.get("d").is_none(), "public key leaks d: {public}");
    let comments: Vec<&str> = out
        .stdout
        .lines()
        .filter(|line| line.starts_with('#'))
        .collect();
    assert!(
        !comments.iter().any(|line| line.contains(d)),
        "a comment line carries the private key\n{}",
        out.stdout
    );
    assert_eq!(str_of(public, "kid"), kid);
    assert_eq!(str_of(public, "x"), x);
    assert_eq!(str_of(public, "y"), y);
    assert_eq!(public["kty"], "EC");
    assert_eq!(public["crv"], "P-256");

    // The RSA key: RS256, every private member, 2048 bits, published without them.
    assert_eq!(private_rsa["kty"], "RSA", "{private_rsa}");
    assert_eq!(private_rsa["alg"], "RS256", "{private_rsa}");
    assert_eq!(private_rsa["use"], "sig", "{private_rsa}");
    let n = URL_SAFE_NO_PAD.decode(str_of(private_rsa, "n")).unwrap();
    assert_eq!(n.len(), 256, "a 2048-bit modulus");
    assert!(n[0] >= 0x80, "a 2048-bit modulus");
    let mut members: Vec<&str> = public_rsa
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    members.sort_unstable();
    assert_eq!(members, ["alg", "e", "kid", "kty", "n", "use"]);
    for member in ["n", "e", "kid"] {
        assert_eq!(str_of(public_rsa, member), str_of(private_rsa, member));
    }
    for member in ["d", "p", "q", "dp", "dq", "qi"] {
        let secret = str_of(private_rsa, member);
        assert!(
            !comments.iter().any(|line| line.contains(secret)),
            "a comment line carries the RSA key's `{member}`\n{}",
            out.stdout
        );
    }
    assert_ne!(str_of(public_rsa, "kid"), kid);
    // The private members really are the key of (n, e): RS256 signed with them verifies with
    // the published n and e alone.
    let claims = json!({"sub": "someone", "exp": 4_000_000_000u64});
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(str_of(public_rsa, "kid").to_owned());
    let token = jsonwebtoken::encode(
        &header,
        &claims,
        &EncodingKey::from_rsa_der(&rsa_private_der(private_rsa)),
    )
    .expect("the private RSA key signs");
    let verifying =
        DecodingKey::from_rsa_components(str_of(public_rsa, "n"), str_of(public_rsa, "e")).unwrap();
    let mut validation = Validation::new(Algorithm::RS256);
    validation.required_spec_claims.clear();
    let verified = jsonwebtoken::decode::<Value>(&token, &verifying, &validation)
        .expect("the published RSA key verifies it");
    assert_eq!(verified.claims, claims);

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
    let (first_ec, first_rsa) = ec_and_rsa(&first.private);
    let (second_ec, second_rsa) = ec_and_rsa(&second.private);
    assert_ne!(str_of(first_ec, "kid"), str_of(second_ec, "kid"));
    assert_ne!(str_of(first_rsa, "n"), str_of(second_rsa, "n"));
}

#[tokio::test]
async fn production_serve_publishes_exactly_the_configured_keys_and_signs_with_the_ec_one() {
    let sandbox = Sandbox::new();
    let (_, keys) = keys_generate(sandbox.path());
    let (configured, configured_rsa) = ec_and_rsa(&keys.private);
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
    assert_eq!(published, keys.public, "the JWKS is the printed public set");
    let (key, rsa) = ec_and_rsa(&published);
    assert!(key.get("d").is_none(), "the JWKS publishes d: {published}");
    assert!(rsa.get("d").is_none(), "the JWKS publishes d: {published}");
    assert_eq!(str_of(rsa, "kid"), str_of(configured_rsa, "kid"));
    assert_eq!(str_of(rsa, "n"), str_of(configured_rsa, "n"));
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
    assert!(
        !logs.contains(str_of(configured_rsa, "d")),
        "the private RSA key was logged\n{logs}"
    );
    assert!(
        !logs.contains("RS256 ID tokens are unavailable"),
        "a set with an RSA key is said to lack one\n{logs}"
    );
}

/// A set of EC keys alone still serves (access tokens need nothing else); the start says that
/// RS256 ID tokens are unavailable.
#[tokio::test]
async fn a_jwk_set_without_an_rsa_key_serves_and_warns_that_rs256_is_unavailable() {
    let sandbox = Sandbox::new();
    let (_, keys) = keys_generate(sandbox.path());
    let (ec, _) = ec_and_rsa(&keys.private);
    let ec_only = STANDARD.encode(json!({"keys": [ec]}).to_string());
    let mut server = sandbox.serve(&[("JWT_JWKS", ec_only.as_str())]).await;
    let published = server.jwks().await;
    assert_eq!(published["keys"].as_array().map(Vec::len), Some(1));
    server.register("ec@example.com", PASSWORD).await;
    let (access, _) = server.login("ec@example.com", PASSWORD).await;
    assert_eq!(jwt_header(&access)["kid"].as_str(), Some(str_of(ec, "kid")));
    let logs = server.stop();
    let warnings: Vec<&str> = logs
        .lines()
        .filter(|line| line.contains("RS256 ID tokens are unavailable"))
        .collect();
    assert_eq!(warnings.len(), 1, "{logs}");
    assert!(warnings[0].contains("WARN"), "{logs}");
}

/// `JWT_SIGNING_KID` must name a private EC key of the set; the refusal names the variable.
#[test]
fn serve_refuses_a_jwt_signing_kid_that_cannot_sign() {
    let sandbox = Sandbox::new();
    let (_, keys) = keys_generate(sandbox.path());
    let (_, rsa) = ec_and_rsa(&keys.private);
    for kid in ["not-a-kid-of-the-set", str_of(rsa, "kid")] {
        let finished = sandbox.run(
            &["serve"],
            &[
                ("JWT_JWKS", keys.encoded.as_str()),
                ("JWT_SIGNING_KID", kid),
            ],
            None,
        );
        finished.assert_failure();
        assert!(
            finished.stderr.contains("JWT_SIGNING_KID") && finished.stderr.contains(kid),
            "{}",
            finished.describe()
        );
    }
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
