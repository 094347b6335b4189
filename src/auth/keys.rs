//! Signing keys: a JWK set or an HS256 secret.
//!
//! A JWK set holds EC P-256 keys (ES256) and RSA keys (RS256). One EC key signs access tokens
//! (the first, or the one `JWT_SIGNING_KID` names) and every EC key verifies them; their
//! algorithm stays pinned, so an RSA key never signs or verifies an access token. The first
//! RSA key with its private part signs OpenID Connect ID tokens of applications registered
//! for RS256; every key is published at `/.well-known/jwks.json` without its private part.
//!
//! No crypto is done here by hand: aws-lc-rs makes and checks the RSA key, and the RustCrypto
//! `pkcs1`/`pkcs8` crates only move its numbers between DER and the JWK's base64url.

use std::collections::{HashMap, HashSet};
use std::path::Path;

use aws_lc_rs::encoding::{AsDer, Pkcs8V1Der};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header};
use p256::pkcs8::EncodePrivateKey;
use pkcs1::der::{Encode as _, SecretDocument};
use pkcs1::UintRef;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

use crate::config::{JwtSettings, KeySource};
use crate::domain::IdTokenAlgorithm;

/// The smallest RSA modulus accepted, in bits.
const MIN_RSA_BITS: usize = 2048;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the JWK set is not valid JSON of the form {{\"keys\": [...]}}: {0}")]
    Json(serde_json::Error),
    #[error("the JWK set has no keys")]
    Empty,
    #[error("key {index} of the JWK set is not usable: {reason}")]
    BadKey { index: usize, reason: String },
    #[error(
        "the JWK set has no EC P-256 key to sign access tokens (an RSA key signs only ID tokens)"
    )]
    NoEcKey,
    #[error(
        "the first EC key of the JWK set (`{0}`) signs access tokens, so it needs its private \
         part `d` (or set JWT_SIGNING_KID to the kid of a private EC key)"
    )]
    SigningKeyNotPrivate(String),
    #[error("JWT_SIGNING_KID {0}")]
    SigningKid(String),
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

/// The JWS algorithm of an OpenID Connect token: the EC key that signs access tokens signs
/// ES256, the set's RSA key RS256.
fn jwt_algorithm(alg: IdTokenAlgorithm) -> Algorithm {
    match alg {
        IdTokenAlgorithm::Es256 => Algorithm::ES256,
        IdTokenAlgorithm::Rs256 => Algorithm::RS256,
    }
}

#[derive(Debug, thiserror::Error)]
pub enum SignError {
    #[error("no key for {0} is configured")]
    Unavailable(&'static str),
    #[error("could not sign: {0}")]
    Signing(jsonwebtoken::errors::Error),
}

/// One key of a JWK set as configured (private parts optional).
#[derive(Debug, Deserialize)]
struct ConfiguredJwk {
    kty: String,
    crv: Option<String>,
    x: Option<String>,
    y: Option<String>,
    n: Option<String>,
    e: Option<String>,
    d: Option<SecretString>,
    p: Option<SecretString>,
    q: Option<SecretString>,
    dp: Option<SecretString>,
    dq: Option<SecretString>,
    qi: Option<SecretString>,
    oth: Option<serde_json::Value>,
    kid: Option<String>,
    alg: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ConfiguredJwkSet {
    keys: Vec<ConfiguredJwk>,
}

/// A public key as published at `/.well-known/jwks.json`: an EC P-256 key (ES256: access
/// tokens and ID tokens) or an RSA key (RS256: ID tokens only). Never a private part.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, utoipa::ToSchema)]
#[serde(tag = "kty")]
#[schema(example = json!({
    "kty": "EC", "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
    "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0", "kid": "1", "alg": "ES256", "use": "sig"
}))]
pub enum PublicJwk {
    /// An EC key on P-256, `alg` ES256.
    #[serde(rename = "EC")]
    Ec {
        crv: String,
        x: String,
        y: String,
        kid: String,
        alg: String,
        #[serde(rename = "use")]
        use_: String,
    },
    /// An RSA key, `alg` RS256 (base64url modulus `n` and exponent `e`).
    #[serde(rename = "RSA")]
    Rsa {
        n: String,
        e: String,
        kid: String,
        alg: String,
        #[serde(rename = "use")]
        use_: String,
    },
}

impl PublicJwk {
    pub fn kid(&self) -> &str {
        match self {
            PublicJwk::Ec { kid, .. } | PublicJwk::Rsa { kid, .. } => kid,
        }
    }

    pub fn alg(&self) -> &str {
        match self {
            PublicJwk::Ec { alg, .. } | PublicJwk::Rsa { alg, .. } => alg,
        }
    }
}

/// The public half of the key set: every key, no private parts.
#[derive(Debug, Clone, Serialize, Deserialize, Default, utoipa::ToSchema)]
pub struct PublicJwkSet {
    pub keys: Vec<PublicJwk>,
}

/// The RSA key that signs RS256 ID tokens.
struct RsaSigner {
    kid: String,
    key: EncodingKey,
}

/// Loaded keys, ready to sign and verify.
pub struct SigningKeys {
    pub(crate) algorithm: Algorithm,
    pub(crate) signing_kid: Option<String>,
    pub(crate) signing_key: EncodingKey,
    /// The keys that verify access tokens: the EC keys by kid (or the HS256 secret).
    verifying: HashMap<Option<String>, DecodingKey>,
    /// The RSA keys by kid: they verify RS256 ID tokens only.
    rsa_verifying: HashMap<String, DecodingKey>,
    rsa_signer: Option<RsaSigner>,
    public: PublicJwkSet,
    /// Set when a development key set was generated now, so startup can say so.
    pub generated_at: Option<String>,
    /// Set when an RSA key was added now to an existing development key file.
    pub rsa_added_to: Option<String>,
}

impl SigningKeys {
    pub fn load(settings: &JwtSettings) -> Result<SigningKeys, KeyError> {
        let signing_kid = settings.signing_kid.as_deref();
        match &settings.keys {
            KeySource::Jwks(json) => from_jwks(json.expose_secret(), signing_kid),
            KeySource::SharedSecret(secret) => Ok(from_shared_secret(secret.expose_secret())),
            KeySource::GeneratedFile(path) => from_key_file(path, signing_kid),
        }
    }

    /// The key that checks an access token whose header names `kid` (never an RSA key).
    pub fn verifying_key(&self, kid: Option<&str>) -> Option<&DecodingKey> {
        self.verifying.get(&kid.map(str::to_owned))
    }

    pub fn public_jwks(&self) -> &PublicJwkSet {
        &self.public
    }

    /// The algorithms OpenID Connect tokens can be signed with (ES256 when the access-token
    /// key is EC; RS256 when the set has an RSA key). Under HS256: none.
    pub fn oidc_algorithms(&self) -> Vec<IdTokenAlgorithm> {
        if self.algorithm != Algorithm::ES256 {
            return Vec::new();
        }
        let mut algorithms = vec![IdTokenAlgorithm::Es256];
        if self.rsa_signer.is_some() {
            algorithms.push(IdTokenAlgorithm::Rs256);
        }
        algorithms
    }

    /// Signs `claims` as a JWS with header `typ` and the signing key's `kid`.
    pub fn sign_as(
        &self,
        alg: IdTokenAlgorithm,
        typ: &str,
        claims: &impl Serialize,
    ) -> Result<String, SignError> {
        let (kid, key) = match alg {
            IdTokenAlgorithm::Es256 if self.algorithm == Algorithm::ES256 => {
                (self.signing_kid.clone(), &self.signing_key)
            }
            IdTokenAlgorithm::Rs256 if self.algorithm == Algorithm::ES256 => match &self.rsa_signer
            {
                Some(signer) => (Some(signer.kid.clone()), &signer.key),
                None => return Err(SignError::Unavailable(alg.as_str())),
            },
            _ => return Err(SignError::Unavailable(alg.as_str())),
        };
        let mut header = Header::new(jwt_algorithm(alg));
        header.typ = Some(typ.to_owned());
        header.kid = kid;
        jsonwebtoken::encode(&header, claims, key).map_err(SignError::Signing)
    }

    /// The key that checks an OpenID Connect token signed here with `alg` under `kid` (an ID
    /// token handed back as `id_token_hint`): an EC key of the set for ES256, an RSA key for
    /// RS256. Under HS256: none.
    pub fn oidc_verifying_key(&self, alg: IdTokenAlgorithm, kid: &str) -> Option<&DecodingKey> {
        if self.algorithm != Algorithm::ES256 {
            return None;
        }
        match alg {
            IdTokenAlgorithm::Es256 => self.verifying.get(&Some(kid.to_owned())),
            IdTokenAlgorithm::Rs256 => self.rsa_verifying.get(kid),
        }
    }
}

/// Makes a new HS256 shared secret: 32 random bytes, base64url without padding (the form
/// `JWT_SECRET` takes; production refuses secrets that are not random bytes).
pub fn generate_shared_secret() -> SecretString {
    let mut bytes = [0u8; 32];
    rand_core::RngCore::fill_bytes(&mut rand_core::OsRng, &mut bytes);
    URL_SAFE_NO_PAD.encode(bytes).into()
}

/// Makes a new key set, as `gatehouse keys generate` prints it: an ES256 key first (it signs
/// access tokens and ES256 ID tokens) and an RS256 key (RSA-2048, for RS256 ID tokens).
/// Returns the private JWK set document and its public half.
pub fn generate_jwks() -> (SecretString, PublicJwkSet) {
    let private = serde_json::json!({ "keys": [generate_ec_jwk(), generate_rsa_jwk()] });
    let private = SecretString::from(private.to_string());
    let public = from_jwks(private.expose_secret(), None)
        .expect("a generated key set loads")
        .public;
    (private, public)
}

/// A new private ES256 JWK (`kid`: its RFC 7638 thumbprint).
fn generate_ec_jwk() -> serde_json::Value {
    let secret = p256::SecretKey::random(&mut rand_core::OsRng);
    let point = secret.public_key();
    let encoded = p256::elliptic_curve::sec1::ToEncodedPoint::to_encoded_point(&point, false);
    let x = URL_SAFE_NO_PAD.encode(encoded.x().expect("uncompressed point"));
    let y = URL_SAFE_NO_PAD.encode(encoded.y().expect("uncompressed point"));
    let kid = ec_thumbprint(&x, &y);
    let d = Zeroizing::new(URL_SAFE_NO_PAD.encode(secret.to_bytes()));
    serde_json::json!({
        "kty": "EC", "crv": "P-256", "x": x, "y": y, "d": d.as_str(),
        "kid": kid, "alg": "ES256", "use": "sig",
    })
}

/// A new private RS256 JWK: an RSA-2048 key made by aws-lc-rs, its numbers read from the
/// PKCS#8 DER it exports (`kid`: its RFC 7638 thumbprint).
fn generate_rsa_jwk() -> serde_json::Value {
    let pair = aws_lc_rs::rsa::KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
        .expect("aws-lc-rs generates an RSA-2048 key");
    let pkcs8: Pkcs8V1Der<'static> = pair.as_der().expect("an RSA key exports as PKCS#8");
    let info = pkcs8::PrivateKeyInfo::try_from(pkcs8.as_ref()).expect("aws-lc-rs writes PKCS#8");
    assert_eq!(
        info.algorithm.oid,
        pkcs1::ALGORITHM_OID,
        "an rsaEncryption key"
    );
    let key = pkcs1::RsaPrivateKey::try_from(info.private_key).expect("a PKCS#1 RSAPrivateKey");
    let b64 = |uint: UintRef<'_>| Zeroizing::new(URL_SAFE_NO_PAD.encode(uint.as_bytes()));
    let (n, e) = (b64(key.modulus), b64(key.public_exponent));
    let kid = rsa_thumbprint(&n, &e);
    let (d, p, q) = (b64(key.private_exponent), b64(key.prime1), b64(key.prime2));
    let (dp, dq, qi) = (b64(key.exponent1), b64(key.exponent2), b64(key.coefficient));
    serde_json::json!({
        "kty": "RSA", "n": n.as_str(), "e": e.as_str(), "d": d.as_str(), "p": p.as_str(),
        "q": q.as_str(), "dp": dp.as_str(), "dq": dq.as_str(), "qi": qi.as_str(),
        "kid": kid, "alg": "RS256", "use": "sig",
    })
}

/// The development key file: made on first use (an EC and an RSA key), and given an RSA key
/// if it was made before RS256 ID tokens existed.
fn from_key_file(path: &Path, signing_kid: Option<&str>) -> Result<SigningKeys, KeyError> {
    let key_file_error = |source| KeyError::KeyFile {
        path: path.display().to_string(),
        source,
    };
    match std::fs::read_to_string(path) {
        Ok(json) => {
            let json = Zeroizing::new(json);
            let keys = from_jwks(&json, signing_kid)?;
            if !keys.rsa_verifying.is_empty() {
                return Ok(keys);
            }
            let mut set: serde_json::Value = serde_json::from_str(&json).map_err(KeyError::Json)?;
            set["keys"]
                .as_array_mut()
                .ok_or(KeyError::Empty)?
                .push(generate_rsa_jwk());
            let updated = Zeroizing::new(set.to_string());
            replace_private_file(path, &updated).map_err(key_file_error)?;
            let mut keys = from_jwks(&updated, signing_kid)?;
            keys.rsa_added_to = Some(path.display().to_string());
            Ok(keys)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let (private, _) = generate_jwks();
            write_private_file(path, private.expose_secret()).map_err(key_file_error)?;
            let mut keys = from_jwks(private.expose_secret(), signing_kid)?;
            keys.generated_at = Some(path.display().to_string());
            Ok(keys)
        }
        Err(e) => Err(key_file_error(e)),
    }
}

/// Writes a new file readable by its owner only (0600); refuses to replace one.
fn write_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    create_private_file(path, contents)
}

fn create_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path)?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()
}

/// Replaces a private file at once: the new contents go to a temporary file (0600) beside it,
/// which is then renamed over it, so a reader sees the old file or the new one, never half.
fn replace_private_file(path: &Path, contents: &str) -> std::io::Result<()> {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    let temporary = path.with_file_name(format!(".{name}.{}.tmp", uuid::Uuid::new_v4()));
    let replaced =
        create_private_file(&temporary, contents).and_then(|()| std::fs::rename(&temporary, path));
    if replaced.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    replaced
}

/// One key of the set, loaded.
struct LoadedKey {
    public: PublicJwk,
    verifying: DecodingKey,
    /// Present when the JWK has its private part.
    signing: Option<EncodingKey>,
}

fn from_jwks(json: &str, signing_kid: Option<&str>) -> Result<SigningKeys, KeyError> {
    let set: ConfiguredJwkSet = serde_json::from_str(json).map_err(KeyError::Json)?;
    if set.keys.is_empty() {
        return Err(KeyError::Empty);
    }
    let mut kids = HashSet::new();
    let mut ec_keys: Vec<(String, LoadedKey)> = Vec::new();
    let mut rsa_verifying = HashMap::new();
    let mut rsa_signer = None;
    let mut public = PublicJwkSet::default();
    for (index, jwk) in set.keys.iter().enumerate() {
        let key = match jwk.kty.as_str() {
            "EC" => ec_key(jwk, index)?,
            "RSA" => rsa_key(jwk, index)?,
            _ => {
                return Err(KeyError::BadKey {
                    index,
                    reason: "only EC keys on P-256 (ES256) and RSA keys (RS256) are supported"
                        .into(),
                })
            }
        };
        let kid = key.public.kid().to_owned();
        if !kids.insert(kid.clone()) {
            return Err(KeyError::DuplicateKid(kid));
        }
        public.keys.push(key.public.clone());
        match key.public {
            PublicJwk::Ec { .. } => ec_keys.push((kid, key)),
            PublicJwk::Rsa { .. } => {
                if let (None, Some(signing)) = (&rsa_signer, key.signing) {
                    rsa_signer = Some(RsaSigner {
                        kid: kid.clone(),
                        key: signing,
                    });
                }
                rsa_verifying.insert(kid, key.verifying);
            }
        }
    }

    let (signing_kid, signing_key) = match signing_kid {
        None => {
            let (kid, key) = ec_keys.first_mut().ok_or(KeyError::NoEcKey)?;
            let signing = key.signing.take();
            (
                kid.clone(),
                signing.ok_or_else(|| KeyError::SigningKeyNotPrivate(kid.clone()))?,
            )
        }
        Some(wanted) => {
            if ec_keys.is_empty() {
                return Err(KeyError::NoEcKey);
            }
            let Some((kid, key)) = ec_keys.iter_mut().find(|(kid, _)| kid == wanted) else {
                return Err(KeyError::SigningKid(
                    if rsa_verifying.contains_key(wanted) {
                        format!(
                            "names the RSA key `{wanted}`; an RSA key signs only ID tokens, so \
                         JWT_SIGNING_KID must name an EC key"
                        )
                    } else {
                        format!("names `{wanted}`, which is not the kid of any key in the JWK set")
                    },
                ));
            };
            let signing = key.signing.take().ok_or_else(|| {
                KeyError::SigningKid(format!(
                    "names `{wanted}`, which has no private part `d`, so it cannot sign"
                ))
            })?;
            (kid.clone(), signing)
        }
    };
    let verifying = ec_keys
        .into_iter()
        .map(|(kid, key)| (Some(kid), key.verifying))
        .collect();
    Ok(SigningKeys {
        algorithm: Algorithm::ES256,
        signing_kid: Some(signing_kid),
        signing_key,
        verifying,
        rsa_verifying,
        rsa_signer,
        public,
        generated_at: None,
        rsa_added_to: None,
    })
}

/// An EC P-256 key: it verifies access tokens, and signs them when it is the signing key.
fn ec_key(jwk: &ConfiguredJwk, index: usize) -> Result<LoadedKey, KeyError> {
    let bad = |reason: &str| KeyError::BadKey {
        index,
        reason: reason.to_owned(),
    };
    if jwk.crv.as_deref() != Some("P-256") {
        return Err(bad("only EC keys on P-256 (ES256) are supported"));
    }
    if jwk.alg.as_deref().is_some_and(|alg| alg != "ES256") {
        return Err(bad("`alg` of an EC key must be ES256"));
    }
    let (Some(x), Some(y)) = (&jwk.x, &jwk.y) else {
        return Err(bad("`x` and `y` are required"));
    };
    let public_key = p256::PublicKey::from_jwk_str(
        &serde_json::json!({"kty": "EC", "crv": "P-256", "x": x, "y": y}).to_string(),
    )
    .map_err(|_| bad("`x` and `y` are not a point on P-256"))?;
    let kid = jwk.kid.clone().unwrap_or_else(|| ec_thumbprint(x, y));
    let verifying = DecodingKey::from_ec_components(x, y)
        .map_err(|e| bad(&format!("cannot build a verification key: {e}")))?;
    let signing = match &jwk.d {
        None => None,
        Some(d) => {
            let private = Zeroizing::new(
                serde_json::json!({
                    "kty": "EC", "crv": "P-256", "x": x, "y": y, "d": d.expose_secret()
                })
                .to_string(),
            );
            let secret = p256::SecretKey::from_jwk_str(&private)
                .map_err(|_| bad("`d` is not a valid P-256 private key"))?;
            if secret.public_key() != public_key {
                return Err(bad("`d` does not belong to `x` and `y`"));
            }
            let der = secret
                .to_pkcs8_der()
                .map_err(|e| KeyError::Crypto(e.to_string()))?;
            Some(EncodingKey::from_ec_der(der.as_bytes()))
        }
    };
    Ok(LoadedKey {
        public: PublicJwk::Ec {
            crv: "P-256".into(),
            x: x.clone(),
            y: y.clone(),
            kid,
            alg: "ES256".into(),
            use_: "sig".into(),
        },
        verifying,
        signing,
    })
}

/// An RSA key: it verifies RS256 ID tokens, and signs them when it has its private part (the
/// first such key of the set signs).
fn rsa_key(jwk: &ConfiguredJwk, index: usize) -> Result<LoadedKey, KeyError> {
    let bad = |reason: String| KeyError::BadKey { index, reason };
    if jwk.alg.as_deref().is_some_and(|alg| alg != "RS256") {
        return Err(bad(
            "`alg` of an RSA key must be RS256 (RSA keys sign only ID tokens)".into(),
        ));
    }
    if jwk.oth.is_some() {
        return Err(bad(
            "RSA keys with more than two primes (`oth`) are not supported".into(),
        ));
    }
    let (Some(n), Some(e)) = (&jwk.n, &jwk.e) else {
        return Err(bad("`n` and `e` are required for an RSA key".into()));
    };
    let n = base64url_integer(n).ok_or_else(|| bad("`n` is not base64url".into()))?;
    let e = base64url_integer(e).ok_or_else(|| bad("`e` is not base64url".into()))?;
    let bits = bit_length(&n);
    if bits < MIN_RSA_BITS {
        return Err(bad(format!(
            "the RSA key has {bits} bits; at least {MIN_RSA_BITS} are required"
        )));
    }
    let public_der = pkcs1::RsaPublicKey {
        modulus: UintRef::new(&n).map_err(|e| bad(e.to_string()))?,
        public_exponent: UintRef::new(&e).map_err(|e| bad(e.to_string()))?,
    }
    .to_der()
    .map_err(|e| bad(format!("cannot encode `n` and `e`: {e}")))?;
    aws_lc_rs::rsa::PublicKey::from_der(&public_der).map_err(|err| {
        bad(format!(
            "`n` and `e` are not a usable RSA public key ({err})"
        ))
    })?;
    let n_b64 = URL_SAFE_NO_PAD.encode(strip_leading_zeros(&n));
    let e_b64 = URL_SAFE_NO_PAD.encode(strip_leading_zeros(&e));
    let kid = jwk
        .kid
        .clone()
        .unwrap_or_else(|| rsa_thumbprint(&n_b64, &e_b64));
    let verifying =
        DecodingKey::from_rsa_raw_components(strip_leading_zeros(&n), strip_leading_zeros(&e));
    let signing = rsa_private_key(jwk, &n, &e, index)?;
    Ok(LoadedKey {
        public: PublicJwk::Rsa {
            n: n_b64,
            e: e_b64,
            kid,
            alg: "RS256".into(),
            use_: "sig".into(),
        },
        verifying,
        signing,
    })
}

/// The signing key of an RSA JWK with its private members (all of `d`, `p`, `q`, `dp`, `dq`,
/// `qi`, or none): written as the PKCS#1 DER jsonwebtoken loads, and checked by aws-lc-rs.
fn rsa_private_key(
    jwk: &ConfiguredJwk,
    n: &[u8],
    e: &[u8],
    index: usize,
) -> Result<Option<EncodingKey>, KeyError> {
    let bad = |reason: String| KeyError::BadKey { index, reason };
    let members = [
        ("d", &jwk.d),
        ("p", &jwk.p),
        ("q", &jwk.q),
        ("dp", &jwk.dp),
        ("dq", &jwk.dq),
        ("qi", &jwk.qi),
    ];
    let missing: Vec<&str> = members
        .iter()
        .filter(|(_, value)| value.is_none())
        .map(|(name, _)| *name)
        .collect();
    if missing.len() == members.len() {
        return Ok(None);
    }
    if !missing.is_empty() {
        return Err(bad(format!(
            "an RSA private key needs all of `d`, `p`, `q`, `dp`, `dq` and `qi`; missing: {}",
            missing.join(", ")
        )));
    }
    let mut decoded = Vec::with_capacity(members.len());
    for (name, value) in members {
        let value = value.as_ref().map(ExposeSecret::expose_secret);
        let bytes = value
            .and_then(base64url_integer)
            .ok_or_else(|| bad(format!("`{name}` is not base64url")))?;
        decoded.push(bytes);
    }
    fn integer(bytes: &[u8]) -> Result<UintRef<'_>, KeyError> {
        UintRef::new(bytes).map_err(|e| KeyError::Crypto(e.to_string()))
    }
    let key = pkcs1::RsaPrivateKey {
        modulus: integer(n)?,
        public_exponent: integer(e)?,
        private_exponent: integer(&decoded[0])?,
        prime1: integer(&decoded[1])?,
        prime2: integer(&decoded[2])?,
        exponent1: integer(&decoded[3])?,
        exponent2: integer(&decoded[4])?,
        coefficient: integer(&decoded[5])?,
        other_prime_infos: None,
    };
    let der = SecretDocument::try_from(&key).map_err(|e| KeyError::Crypto(e.to_string()))?;
    aws_lc_rs::rsa::KeyPair::from_der(der.as_bytes()).map_err(|err| {
        bad(format!(
            "the private members do not form an RSA key with `n` and `e` ({err})"
        ))
    })?;
    Ok(Some(EncodingKey::from_rsa_der(der.as_bytes())))
}

/// A JWK integer (base64url, no padding): its big-endian bytes, wiped when dropped.
fn base64url_integer(text: &str) -> Option<Zeroizing<Vec<u8>>> {
    let bytes = Zeroizing::new(URL_SAFE_NO_PAD.decode(text).ok()?);
    (!bytes.is_empty()).then_some(bytes)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes.iter().position(|&b| b != 0).unwrap_or(bytes.len());
    &bytes[first..]
}

/// The number of bits of a big-endian unsigned integer.
fn bit_length(bytes: &[u8]) -> usize {
    match strip_leading_zeros(bytes) {
        [] => 0,
        [first, rest @ ..] => rest.len() * 8 + (8 - first.leading_zeros() as usize),
    }
}

fn from_shared_secret(secret: &str) -> SigningKeys {
    SigningKeys {
        algorithm: Algorithm::HS256,
        signing_kid: None,
        signing_key: EncodingKey::from_secret(secret.as_bytes()),
        verifying: HashMap::from([(None, DecodingKey::from_secret(secret.as_bytes()))]),
        rsa_verifying: HashMap::new(),
        rsa_signer: None,
        public: PublicJwkSet::default(),
        generated_at: None,
        rsa_added_to: None,
    }
}

/// The RFC 7638 thumbprint of a P-256 public key: a stable `kid`.
fn ec_thumbprint(x: &str, y: &str) -> String {
    let canonical = format!(r#"{{"crv":"P-256","kty":"EC","x":"{x}","y":"{y}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

/// The RFC 7638 thumbprint of an RSA public key (`n`, `e` base64url without leading zeros).
fn rsa_thumbprint(n: &str, e: &str) -> String {
    let canonical = format!(r#"{{"e":"{e}","kty":"RSA","n":"{n}"}}"#);
    URL_SAFE_NO_PAD.encode(Sha256::digest(canonical.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::Validation;
    use serde_json::{json, Value};

    /// A private set as `generate_jwks` makes it, as JSON.
    fn generated() -> Value {
        let (private, _) = generate_jwks();
        serde_json::from_str(private.expose_secret()).unwrap()
    }

    fn set_of(keys: &[&Value]) -> String {
        json!({ "keys": keys }).to_string()
    }

    fn without_private_part(jwk: &Value) -> Value {
        let mut public = jwk.clone();
        for member in ["d", "p", "q", "dp", "dq", "qi"] {
            public.as_object_mut().unwrap().remove(member);
        }
        public
    }

    fn bad_key_reason(result: Result<SigningKeys, KeyError>) -> (usize, String) {
        match result {
            Err(KeyError::BadKey { index, reason }) => (index, reason),
            Err(other) => panic!("expected BadKey, got {other}"),
            Ok(_) => panic!("expected BadKey, the set loaded"),
        }
    }

    fn error_of(result: Result<SigningKeys, KeyError>) -> KeyError {
        match result {
            Err(e) => e,
            Ok(_) => panic!("the set loaded"),
        }
    }

    /// Claims an ID token might carry.
    #[derive(Debug, Serialize, Deserialize, PartialEq)]
    struct Claims {
        sub: String,
        aud: String,
        exp: u64,
        nonce: String,
    }

    fn claims() -> Claims {
        Claims {
            sub: "user".into(),
            aud: "client".into(),
            exp: jsonwebtoken::get_current_timestamp() + 300,
            nonce: "n-0S6_WzA2Mj".into(),
        }
    }

    /// Checks `token` as a relying party would: with a key built from the published JWK.
    fn verify_with_published(token: &str, published: &PublicJwk) -> Claims {
        let (key, algorithm) = match published {
            PublicJwk::Ec { x, y, .. } => (
                DecodingKey::from_ec_components(x, y).unwrap(),
                Algorithm::ES256,
            ),
            PublicJwk::Rsa { n, e, .. } => (
                DecodingKey::from_rsa_components(n, e).unwrap(),
                Algorithm::RS256,
            ),
        };
        let mut validation = Validation::new(algorithm);
        validation.set_audience(&["client"]);
        jsonwebtoken::decode::<Claims>(token, &key, &validation)
            .unwrap()
            .claims
    }

    #[test]
    fn generated_sets_hold_an_ec_key_then_an_rsa_key_and_publish_no_private_part() {
        let (private, public) = generate_jwks();
        let set: Value = serde_json::from_str(private.expose_secret()).unwrap();
        let (ec, rsa) = (&set["keys"][0], &set["keys"][1]);
        assert_eq!(set["keys"].as_array().unwrap().len(), 2);
        assert_eq!((&ec["kty"], &ec["alg"]), (&json!("EC"), &json!("ES256")));
        assert_eq!((&rsa["kty"], &rsa["alg"]), (&json!("RSA"), &json!("RS256")));
        for member in ["n", "e", "d", "p", "q", "dp", "dq", "qi", "kid"] {
            assert!(
                rsa[member].as_str().is_some_and(|v| !v.is_empty()),
                "{member}"
            );
        }
        let n = URL_SAFE_NO_PAD.decode(rsa["n"].as_str().unwrap()).unwrap();
        assert_eq!(bit_length(&n), 2048);

        let keys = from_jwks(private.expose_secret(), None).unwrap();
        assert_eq!(keys.public_jwks().keys, public.keys);
        let published = serde_json::to_value(keys.public_jwks()).unwrap();
        assert_eq!(
            published["keys"][0],
            json!({
                "kty": "EC", "crv": "P-256", "x": ec["x"], "y": ec["y"], "kid": ec["kid"],
                "alg": "ES256", "use": "sig",
            })
        );
        assert_eq!(
            published["keys"][1],
            json!({
                "kty": "RSA", "n": rsa["n"], "e": rsa["e"], "kid": rsa["kid"],
                "alg": "RS256", "use": "sig",
            })
        );
        assert_eq!(keys.signing_kid.as_deref(), ec["kid"].as_str());
        assert!(keys.verifying_key(keys.signing_kid.as_deref()).is_some());
        // The RSA key never verifies an access token.
        assert!(keys.verifying_key(rsa["kid"].as_str()).is_none());
    }

    #[test]
    fn accepts_the_seed_article_format() {
        // The JWK set from the ES256 seed article (mkjwk.org output, development only).
        let seed = r#"{"keys": [{"kty": "EC", "d": "jwrAjoo8YOk-ryUgQtarw4P-id8c3BD0jOoWJ3PgNyU",
            "use": "sig", "crv": "P-256", "kid": "LEu_K_tGsARSVoaGxP6nCjhYl9XB6jpuZH0vdpTEDOU",
            "x": "o4lf0hDz0oej8fsiPP5UjrO8B0X-96ssgMxh1NVAVzA",
            "y": "9LQcldbXC9e8KUzw6pVU-QFY2hVluMHc9-7s08iZEY4", "alg": "ES256"}]}"#;
        let keys = from_jwks(seed, None).unwrap();
        assert_eq!(
            keys.signing_kid.as_deref(),
            Some("LEu_K_tGsARSVoaGxP6nCjhYl9XB6jpuZH0vdpTEDOU")
        );
        // No RSA key: ID tokens are ES256 only.
        assert_eq!(keys.oidc_algorithms(), [IdTokenAlgorithm::Es256]);
    }

    #[test]
    fn the_signing_key_must_be_private_and_the_others_may_be_public() {
        let (new, old) = (generated(), generated());
        let old_public = without_private_part(&old["keys"][0]);
        let keys = from_jwks(&set_of(&[&new["keys"][0], &old_public]), None).unwrap();
        assert_eq!(keys.public_jwks().keys.len(), 2);
        assert!(keys.verifying_key(old_public["kid"].as_str()).is_some());

        let public_only = set_of(&[&old_public, &new["keys"][0]]);
        assert!(matches!(
            error_of(from_jwks(&public_only, None)),
            KeyError::SigningKeyNotPrivate(kid) if kid == old_public["kid"]
        ));
        // ... unless JWT_SIGNING_KID names the private one.
        let keys = from_jwks(&public_only, new["keys"][0]["kid"].as_str()).unwrap();
        assert_eq!(keys.signing_kid.as_deref(), new["keys"][0]["kid"].as_str());
    }

    #[test]
    fn jwt_signing_kid_selects_the_ec_key_that_signs_and_every_ec_key_still_verifies() {
        let (first, second) = (generated(), generated());
        let (k1, k2, rsa) = (&first["keys"][0], &second["keys"][0], &first["keys"][1]);
        let json = set_of(&[k1, k2, rsa]);
        let keys = from_jwks(&json, k2["kid"].as_str()).unwrap();
        assert_eq!(keys.signing_kid.as_deref(), k2["kid"].as_str());
        assert!(keys.verifying_key(k1["kid"].as_str()).is_some());
        assert!(keys.verifying_key(k2["kid"].as_str()).is_some());
        let token = keys
            .sign_as(IdTokenAlgorithm::Es256, "JWT", &claims())
            .unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), k2["kid"].as_str());
        assert_eq!(
            verify_with_published(&token, &keys.public.keys[1]),
            claims_like(&token)
        );

        let named = |result| error_of(result).to_string();
        let unknown = named(from_jwks(&json, Some("no-such-kid")));
        assert!(
            unknown.contains("JWT_SIGNING_KID") && unknown.contains("no-such-kid"),
            "{unknown}"
        );
        let rsa_kid = named(from_jwks(&json, rsa["kid"].as_str()));
        assert!(
            rsa_kid.contains("JWT_SIGNING_KID") && rsa_kid.contains("RSA"),
            "{rsa_kid}"
        );
        let public = without_private_part(k2);
        let not_private = named(from_jwks(&set_of(&[k1, &public]), public["kid"].as_str()));
        assert!(
            not_private.contains("JWT_SIGNING_KID") && not_private.contains("`d`"),
            "{not_private}"
        );
    }

    /// The claims of a token, unverified (to compare with what verification gives).
    fn claims_like(token: &str) -> Claims {
        let payload = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    }

    #[test]
    fn sign_as_makes_tokens_a_relying_party_verifies_with_the_published_keys() {
        let (private, public) = generate_jwks();
        let keys = from_jwks(private.expose_secret(), None).unwrap();
        assert_eq!(
            keys.oidc_algorithms(),
            [IdTokenAlgorithm::Es256, IdTokenAlgorithm::Rs256]
        );
        for (alg, published) in [
            (IdTokenAlgorithm::Es256, &public.keys[0]),
            (IdTokenAlgorithm::Rs256, &public.keys[1]),
        ] {
            let token = keys.sign_as(alg, "JWT", &claims()).unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(format!("{:?}", header.alg), alg.as_str());
            assert_eq!(header.kid.as_deref(), Some(published.kid()));
            assert_eq!(header.typ.as_deref(), Some("JWT"));
            assert_eq!(published.alg(), alg.as_str());
            let verified = verify_with_published(&token, published);
            assert_eq!(verified, claims_like(&token));
            assert_eq!(verified.nonce, "n-0S6_WzA2Mj");
            // The service's own key for the hint checks it too.
            let own = keys.oidc_verifying_key(alg, published.kid()).unwrap();
            let mut validation = Validation::new(jwt_algorithm(alg));
            validation.set_audience(&["client"]);
            jsonwebtoken::decode::<Claims>(&token, own, &validation).unwrap();
        }
        let at_jwt = keys
            .sign_as(IdTokenAlgorithm::Es256, "at+jwt", &claims())
            .unwrap();
        let header = jsonwebtoken::decode_header(&at_jwt).unwrap();
        assert_eq!(header.typ.as_deref(), Some("at+jwt"));
        // An RS256 token is not an ES256 one: the other algorithm's key refuses it.
        let rs = keys
            .sign_as(IdTokenAlgorithm::Rs256, "JWT", &claims())
            .unwrap();
        assert!(keys
            .oidc_verifying_key(IdTokenAlgorithm::Es256, public.keys[1].kid())
            .is_none());
        assert!(verify_with(&rs, &public.keys[0]).is_err());
    }

    fn verify_with(token: &str, published: &PublicJwk) -> jsonwebtoken::errors::Result<()> {
        let PublicJwk::Ec { x, y, .. } = published else {
            panic!("an EC key")
        };
        let mut validation = Validation::new(Algorithm::ES256);
        validation.set_audience(&["client"]);
        let key = DecodingKey::from_ec_components(x, y)?;
        jsonwebtoken::decode::<Claims>(token, &key, &validation).map(|_| ())
    }

    #[test]
    fn rs256_is_unavailable_without_an_rsa_key_and_nothing_signs_under_hs256() {
        let set = generated();
        let keys = from_jwks(&set_of(&[&set["keys"][0]]), None).unwrap();
        assert_eq!(keys.oidc_algorithms(), [IdTokenAlgorithm::Es256]);
        let err = keys
            .sign_as(IdTokenAlgorithm::Rs256, "JWT", &claims())
            .unwrap_err();
        assert!(matches!(err, SignError::Unavailable("RS256")), "{err}");
        assert_eq!(err.to_string(), "no key for RS256 is configured");

        // A published RSA key without its private part signs nothing either.
        let public_rsa = without_private_part(&set["keys"][1]);
        let keys = from_jwks(&set_of(&[&set["keys"][0], &public_rsa]), None).unwrap();
        assert_eq!(keys.oidc_algorithms(), [IdTokenAlgorithm::Es256]);
        assert_eq!(keys.public_jwks().keys.len(), 2);

        let hs = from_shared_secret("an-hs256-test-secret-of-well-over-32-bytes");
        assert!(hs.oidc_algorithms().is_empty());
        for alg in [IdTokenAlgorithm::Es256, IdTokenAlgorithm::Rs256] {
            assert!(matches!(
                hs.sign_as(alg, "JWT", &claims()),
                Err(SignError::Unavailable(_))
            ));
        }
    }

    #[test]
    fn the_first_private_rsa_key_signs_and_every_rsa_key_is_published() {
        let (a, b) = (generated(), generated());
        let (ec, rsa_public, rsa_1) = (
            &a["keys"][0],
            without_private_part(&b["keys"][1]),
            &a["keys"][1],
        );
        let keys = from_jwks(&set_of(&[&rsa_public, ec, rsa_1]), None).unwrap();
        let token = keys
            .sign_as(IdTokenAlgorithm::Rs256, "JWT", &claims())
            .unwrap();
        let header = jsonwebtoken::decode_header(&token).unwrap();
        assert_eq!(header.kid.as_deref(), rsa_1["kid"].as_str());
        assert_eq!(keys.signing_kid.as_deref(), ec["kid"].as_str());
        let kids: Vec<&str> = keys.public_jwks().keys.iter().map(PublicJwk::kid).collect();
        assert_eq!(
            kids,
            [
                rsa_public["kid"].as_str().unwrap(),
                ec["kid"].as_str().unwrap(),
                rsa_1["kid"].as_str().unwrap()
            ]
        );
        for rsa in [&rsa_public, rsa_1] {
            let kid = rsa["kid"].as_str().unwrap();
            assert!(keys
                .oidc_verifying_key(IdTokenAlgorithm::Rs256, kid)
                .is_some());
        }
    }

    #[test]
    fn a_set_of_rsa_keys_alone_cannot_sign_access_tokens() {
        let set = generated();
        assert!(matches!(
            error_of(from_jwks(&set_of(&[&set["keys"][1]]), None)),
            KeyError::NoEcKey
        ));
    }

    #[test]
    fn rejects_mismatched_and_malformed_keys() {
        let (a, b) = (generated(), generated());
        let mut ec = a["keys"][0].clone();
        ec["d"] = b["keys"][0]["d"].clone();
        assert_eq!(bad_key_reason(from_jwks(&set_of(&[&ec]), None)).0, 0);
        assert!(matches!(
            error_of(from_jwks("{\"keys\": []}", None)),
            KeyError::Empty
        ));
        assert!(matches!(
            error_of(from_jwks("not json", None)),
            KeyError::Json(_)
        ));
        let oct = json!({"kty": "oct", "k": "c2VjcmV0"});
        let (index, reason) = bad_key_reason(from_jwks(&set_of(&[&a["keys"][0], &oct]), None));
        assert_eq!(index, 1);
        assert!(reason.contains("RSA"), "{reason}");
        // A later EC key's `d` is checked too, so JWT_SIGNING_KID cannot reveal a bad one.
        let (index, _) = bad_key_reason(from_jwks(&set_of(&[&a["keys"][0], &ec]), None));
        assert_eq!(index, 1);
        let dup = from_jwks(&set_of(&[&a["keys"][0], &a["keys"][0]]), None);
        assert!(matches!(error_of(dup), KeyError::DuplicateKid(_)));
    }

    #[test]
    fn rejects_malformed_small_and_mistyped_rsa_keys() {
        let (a, b) = (generated(), generated());
        let ec = &a["keys"][0];
        let rsa = &a["keys"][1];
        let rejected = |mutate: &dyn Fn(&mut Value)| {
            let mut key = rsa.clone();
            mutate(&mut key);
            let (index, reason) = bad_key_reason(from_jwks(&set_of(&[ec, &key]), None));
            assert_eq!(index, 1, "{reason}");
            reason
        };

        let reason = rejected(&|k| k["alg"] = json!("RS512"));
        assert!(reason.contains("RS256"), "{reason}");
        let reason = rejected(&|k| k["alg"] = json!("ES256"));
        assert!(reason.contains("RS256"), "{reason}");
        // 1024 bits: the low half of a real modulus, with no private part.
        let n = URL_SAFE_NO_PAD.decode(rsa["n"].as_str().unwrap()).unwrap();
        let small = URL_SAFE_NO_PAD.encode(&n[128..]);
        let reason = rejected(&|k| {
            *k = json!({"kty": "RSA", "n": small, "e": "AQAB", "alg": "RS256"});
        });
        assert!(reason.contains("2048"), "{reason}");
        let reason = rejected(&|k| {
            *k = json!({"kty": "RSA", "n": "AQAB", "e": "AQAB"});
        });
        assert!(reason.contains("bits"), "{reason}");
        let reason = rejected(&|k| k["n"] = json!("not base64url!"));
        assert!(reason.contains("`n`"), "{reason}");
        let reason = rejected(&|k| {
            k.as_object_mut().unwrap().remove("e");
        });
        assert!(reason.contains("`e`"), "{reason}");
        let reason = rejected(&|k| {
            k.as_object_mut().unwrap().remove("dq");
        });
        assert!(reason.contains("dq"), "{reason}");
        // Another key's private members do not fit this one's `n`.
        let reason = rejected(&|k| k["d"] = b["keys"][1]["d"].clone());
        assert!(reason.contains("private"), "{reason}");
        let reason = rejected(&|k| {
            k["p"] = b["keys"][1]["p"].clone();
            k["q"] = b["keys"][1]["q"].clone();
        });
        assert!(reason.contains("private"), "{reason}");
        let reason = rejected(&|k| k["oth"] = json!([]));
        assert!(reason.contains("oth"), "{reason}");
        // The error names the key, never its secret.
        let reason = rejected(&|k| k["qi"] = k["dp"].clone());
        assert!(!reason.contains(rsa["qi"].as_str().unwrap()), "{reason}");
    }

    #[test]
    fn development_key_file_is_created_once_and_private() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/dev-jwks.json");
        let first = from_key_file(&path, None).unwrap();
        assert!(first.generated_at.is_some());
        assert!(first.rsa_added_to.is_none());
        assert_eq!(
            first.oidc_algorithms(),
            [IdTokenAlgorithm::Es256, IdTokenAlgorithm::Rs256]
        );
        let second = from_key_file(&path, None).unwrap();
        assert!(second.generated_at.is_none());
        assert!(second.rsa_added_to.is_none());
        assert_eq!(first.public_jwks().keys, second.public_jwks().keys);
        assert_private(&path);
    }

    #[test]
    fn a_development_key_file_without_an_rsa_key_gets_one_and_keeps_its_ec_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("dev-jwks.json");
        let set = generated();
        let ec_only = set_of(&[&set["keys"][0]]);
        write_private_file(&path, &ec_only).unwrap();

        let upgraded = from_key_file(&path, None).unwrap();
        assert_eq!(upgraded.rsa_added_to, Some(path.display().to_string()));
        assert!(upgraded.generated_at.is_none());
        assert_eq!(
            upgraded.signing_kid.as_deref(),
            set["keys"][0]["kid"].as_str()
        );
        assert_eq!(upgraded.oidc_algorithms().len(), 2);
        let stored: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(stored["keys"][0], set["keys"][0]);
        assert_eq!(stored["keys"][1]["kty"], "RSA");
        assert_private(&path);
        let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().collect();
        assert_eq!(left.len(), 1, "a temporary file was left behind: {left:?}");

        let again = from_key_file(&path, None).unwrap();
        assert!(again.rsa_added_to.is_none());
        assert_eq!(again.public_jwks().keys, upgraded.public_jwks().keys);
    }

    fn assert_private(path: &Path) {
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn bit_lengths() {
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(bit_length(&[0, 0]), 0);
        assert_eq!(bit_length(&[1]), 1);
        assert_eq!(bit_length(&[0, 0x80, 0]), 16);
        assert_eq!(bit_length(&[0x7f; 256]), 2047);
    }
}
