//! Signing keys: an ES256 JWK set (the first key signs, every key verifies) or an HS256 secret.

use std::collections::HashMap;
use std::path::Path;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey};
use p256::pkcs8::EncodePrivateKey;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::config::{JwtSettings, KeySource};

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the JWK set is not valid JSON of the form {{\"keys\": [...]}}: {0}")]
    Json(serde_json::Error),
    #[error("the JWK set has no keys")]
    Empty,
    #[error("key {index} of the JWK set is not usable: {reason}")]
    BadKey { index: usize, reason: String },
    #[error("the first key of the JWK set signs, so it needs its private part `d`")]
    FirstKeyNotPrivate,
    #[error("two keys of the JWK set share the kid `{0}`")]
    DuplicateKid(String),
    #[error("could not use the development key file {path}: {source}")]
    KeyFile {
        path: String,
        source: std::io::Error,
    },
    #[error("could not build a signing key: {0}")]
    Crypto(String),
}

/// One key of a JWK set as configured (private part optional).
#[derive(Debug, Deserialize)]
struct ConfiguredJwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    d: Option<SecretString>,
    kid: Option<String>,
    alg: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ConfiguredJwkSet {
    keys: Vec<ConfiguredJwk>,
}

/// A public verification key as published at `/.well-known/jwks.json`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[schema(example = json!({
    "kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "1", "alg": "ES256", "use": "sig"
}))]
pub struct PublicJwk {
    pub kty: String,
    pub crv: String,
    pub x: String,
    pub y: String,
    pub kid: String,
    pub alg: String,
    #[serde(rename = "use")]
    pub use_: String,
}

/// The public half of the key set: every key that verifies, no private parts.
#[derive(Debug, Clone, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct PublicJwkSet {
    pub keys: Vec<PublicJwk>,
}

/// Loaded keys, ready to sign and verify.
pub struct SigningKeys {
    pub(crate) algorithm: Algorithm,
    pub(crate) signing_kid: Option<String>,
    pub(crate) signing_key: EncodingKey,
    verifying: HashMap<Option<String>, DecodingKey>,
    public: PublicJwkSet,
    /// Set when a development key was generated now, so startup can say so.
    pub generated_at: Option<String>,
}

impl SigningKeys {
    pub fn load(settings: &JwtSettings) -> Result<SigningKeys, KeyError> {
        match &settings.keys {
            KeySource::Jwks(json) => from_jwks(json.expose_secret()),
            KeySource::SharedSecret(secret) => Ok(from_shared_secret(secret.expose_secret())),
            KeySource::GeneratedFile(path) => from_key_file(path),
        }
    }

    /// The key that checks a token whose header names `kid`.
    pub fn verifying_key(&self, kid: Option<&str>) -> Option<&DecodingKey> {
        self.verifying.get(&kid.map(str::to_owned))
    }

    pub fn public_jwks(&self) -> &PublicJwkSet {
        &self.public
    }
}

/// Makes a new HS256 shared secret: 32 random bytes, base64url without padding (the form
/// `JWT_SECRET` takes; production refuses secrets that are not random bytes).
pub fn generate_shared_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes).into()
}

/// Makes a new ES256 key; returns the private JWK set document and its public half.
pub fn generate_jwks() -> (SecretString, PublicJwkSet) {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let point = secret.public_key();
    let encoded = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&point, false);
    let x = URL_SAFE_NO_PAD.encode(encoded.x().expect("uncompressed point"));
    let y = URL_SAFE_NO_PAD.encode(encoded.y().expect("uncompressed point"));
    let kid = thumbprint(&x, &y);
    let d = URL_SAFE_NO_PAD.encode(secret.to_bytes());
    let private = serde_json::json!({
        "keys": [{
            "kty": "EC", "crv": "P-256", "x": x, "y": y, "d": d,
            "kid": kid, "alg": "ES256", "use": "sig",
        }]
    });
    let public = PublicJwkSet {
        keys: vec![public_jwk(&x, &y, &kid)],
    };
    (SecretString::from(private.to_string()), public)
}

fn from_key_file(path: &Path) -> Result<SigningKeys, KeyError> {
    let key_file_error = |source| KeyError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(json) => from_jwks(&json),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (private, _) = generate_jwks();
            write_private_file(path, private.expose_secret()).map_err(key_file_error)?;
            let mut keys = from_jwks(private.expose_secret())?;
            keys.generated_at = Some(path.display().to_string());
            Ok(keys)
        }
        Err(e) => Err(key_file_error(e)),
    }
}

fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    options.open(path)?.write_all(contents.as_bytes())
}

fn from_jwks(json: &str) -> Result<SigningKeys, KeyError> {
    let set: ConfiguredJwkSet = serde_json::from_str(json).map_err(KeyError::Json)?;
    if set.keys.is_empty() {
        return Err(KeyError::Empty);
    }
    let mut verifying = HashMap::new();
    let mut public = PublicJwkSet::default();
    let mut signer = None;
    for (index, jwk) in set.keys.iter().enumerate() {
        let bad = |reason: &str| KeyError::BadKey {
            index,
            reason: reason.to_owned(),
        };
        if jwk.kty != "EC" || jwk.crv.as_deref() != Some("P-256") {
            return Err(bad("only EC keys on P-256 (ES256) are supported"));
        }
        if jwk.alg.as_deref().is_some_and(|alg| alg != "ES256") {
            return Err(bad("`alg` must be ES256"));
        }
        let (Some(x), Some(y)) = (&jwk.x, &jwk.y) else {
            return Err(bad("`x` and `y` are required"));
        };
        let public_key = p256::PublicKey::from_jwk_str(
            &serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}).to_string(),
        )
        .map_err(|_| bad("`x` and `y` are not a point on P-256"))?;
        let kid = jwk.kid.clone().unwrap_or_else(|| thumbprint(x, y));
        let decoding = DecodingKey::from_ec_components(x, y)
            .map_err(|e| bad(&format!("cannot build a verification key: {e}")))?;
        if verifying.insert(Some(kid.clone()), decoding).is_some() {
            return Err(KeyError::DuplicateKid(kid));
        }
        public.keys.push(public_jwk(x, y, &kid));

        if index == 0 {
            let d = jwk.d.as_ref().ok_or(KeyError::FirstKeyNotPrivate)?;
            let secret = p256::SecretKey::from_jwk_str(
                &serde_json::json!({
                    "kty": "EC", "crv": "P-256", "x": x, "y": y, "d": d.expose_secret()
                })
                .to_string(),
            )
            .map_err(|_| bad("`d` is not a valid P-256 private key"))?;
            if secret.public_key() != public_key {
                return Err(bad("`d` does not belong to `x` and `y`"));
            }
            let der = secret
                .to_pkcs8_der()
                .map_err(|e| KeyError::Crypto(e.to_string()))?;
            signer = Some((kid, EncodingKey::from_ec_der(der.as_bytes())));
        }
    }
    let (kid, signing_key) = signer.ok_or(KeyError::FirstKeyNotPrivate)?;
    Ok(SigningKeys {
        algorithm: Algorithm::ES256,
        signing_kid: Some(kid),
        signing_key,
        verifying,
        public,
        generated_at: None,
    })
}

fn from_shared_secret(secret: &str) -> SigningKeys {
    SigningKeys {
        algorithm: Algorithm::HS256,
        signing_kid: None,
        signing_key: EncodingKey::from_secret(secret.as_bytes()),
        verifying: HashMap::from([(None, DecodingKey::from_secret(secret.as_bytes()))]),
        public: PublicJwkSet::default(),
        generated_at: None,
    }
}

fn public_jwk(x: &str, y: &str, kid: &str) -> PublicJwk {
    PublicJwk {
        kty: "EC".into(),
        crv: "P-256".into(),
        x: x.into(),
        y: y.into(),
        kid: kid.into(),
        alg: "ES256".into(),
        use_: "sig".into(),
    }
}

/// The RFC 7638 thumbprint of a P-256 public key: a stable `kid`.
fn thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generated_sets_load_and_publish_no_private_part() {
        let (private, public) = generate_jwks();
        let keys = from_jwks(private.expose_secret()).unwrap();
        assert_eq!(keys.public_jwks().keys, public.keys);
        let published = serde_json::to_string(keys.public_jwks()).unwrap();
        assert!(!published.contains("\"d\""));
        assert!(keys.verifying_key(keys.signing_kid.as_deref()).is_some());
    }

    #[test]
    fn accepts_the_seed_article_format() {
        // The JWK set from the ES256 seed article (mkjwk.org output, development only).
        let seed = r#"{"keys": [{"kty": "EC", "d": "jwrAjoo8YOk-ryUgQtarw4P-id8c3BD0jOoWJ3PgNyU",
            "use": "sig", "crv": "P-256", "kid": "LEu_K_tGsARSVoaGxP6nCjhYl9XB6jpuZH0vdpTEDOU",
            "x": "o4lf0hDz0oej8fsiPP5UjrO8B0X-96ssgMxh1NVAVzA",
            "y": "9LQcldbXC9e8KUzw6pVU-QFY2hVluMHc9-7s08iZEY4", "alg": "ES256"}]}"#;
        let keys = from_jwks(seed).unwrap();
        assert_eq!(
            keys.signing_kid.as_deref(),
            Some("LEu_K_tGsARSVoaGxP6nCjhYl9XB6jpuZH0vdpTEDOU")
        );
    }

    #[test]
    fn the_first_key_must_be_private_and_later_keys_may_be_public() {
        let (_, old_public) = generate_jwks();
        let (new, _) = generate_jwks();
        let mut set: serde_json::Value = serde_json::from_str(new.expose_secret()).unwrap();
        let old_public_key = serde_json::to_value(&old_public.keys[0]).unwrap();
        set["keys"].as_array_mut().unwrap().push(old_public_key);
        let keys = from_jwks(&set.to_string()).unwrap();
        assert_eq!(keys.public_jwks().keys.len(), 2);
        assert!(keys.verifying_key(Some(&old_public.keys[0].kid)).is_some());

        let public_only = serde_json::json!({"keys": [old_public.keys[0]]}).to_string();
        assert!(matches!(
            from_jwks(&public_only),
            Err(KeyError::FirstKeyNotPrivate)
        ));
    }

    #[test]
    fn rejects_mismatched_and_malformed_keys() {
        let (a, _) = generate_jwks();
        let (b, _) = generate_jwks();
        let mut a: serde_json::Value = serde_json::from_str(a.expose_secret()).unwrap();
        let b: serde_json::Value = serde_json::from_str(b.expose_secret()).unwrap();
        a["keys"][0]["d"] = b["keys"][0]["d"].clone();
        assert!(matches!(
            from_jwks(&a.to_string()),
            Err(KeyError::BadKey { .. })
        ));
        assert!(matches!(from_jwks("{\"keys\": []}"), Err(KeyError::Empty)));
        assert!(matches!(from_jwks("not json"), Err(KeyError::Json(_))));
        let rsa = r#"{"keys": [{"kty": "RSA", "n": "AQAB", "e": "AQAB"}]}"#;
        assert!(matches!(from_jwks(rsa), Err(KeyError::BadKey { .. })));
    }

    #[test]
    fn development_key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dev-jwks.json");
        let first = from_key_file(&path).unwrap();
        assert!(first.generated_at.is_some());
        let second = from_key_file(&path).unwrap();
        assert!(second.generated_at.is_none());
        assert_eq!(first.public_jwks().keys, second.public_jwks().keys);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }
}
