//! Argon2id password hashing, always off the async executor and bounded in concurrency.

use std::sync::Arc;

use actix_web::web;
use argon2::{
    Algorithm, Argon2, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _, Version,
};
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::Semaphore;

use crate::config::HashSettings;
use crate::domain::Password;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("invalid argon2 parameters: {0}")]
    Params(argon2::Error),
    #[error("hashing failed: {0}")]
    Hashing(argon2::password_hash::Error),
    #[error("the hashing task was cancelled")]
    Cancelled,
}

/// The result of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, and here is a re-hash under the current parameters to store instead.
    YesRehashed(String),
}

/// Hashes and verifies passwords with the configured argon2id parameters.
///
/// At most `concurrency` hashes run at once, so memory stays bounded under a login flood
/// (hashes in flight × `memory_kib`); the others wait their turn without blocking a thread.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    permits: Arc<Semaphore>,
    /// A hash of a random password: unknown accounts are verified against it, so an unknown
    /// email costs exactly what a wrong password costs.
    dummy_hash: Arc<str>,
}

impl PasswordHasher {
    pub fn new(settings: HashSettings) -> Result<PasswordHasher, HashError> {
        let params = Params::new(
            settings.memory_kib,
            settings.iterations,
            settings.parallelism,
            None,
        )
        .map_err(HashError::Params)?;
        let mut random = [0u8; 32];
        getrandom(&mut random);
        let dummy_hash = argon2(&params)
            .hash_password(&random)
            .map_err(HashError::Hashing)?
            .to_string();
        Ok(PasswordHasher {
            params,
            permits: Arc::new(Semaphore::new(settings.concurrency)),
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = SecretString::from(password.expose());
        let params = self.params.clone();
        self.blocking(move || {
            argon2(&params)
                .hash_password(password.expose_secret().as_bytes())
                .map(|hash| hash.to_string())
                .map_err(HashError::Hashing)
        })
        .await
    }

    /// Checks `candidate` against `stored`, or against the dummy hash when there is no account,
    /// so both cases cost the same. Offers a re-hash when the parameters have changed.
    pub async fn verify(
        &self,
        candidate: SecretString,
        stored: Option<String>,
    ) -> Result<Verified, HashError> {
        let exists = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let params = self.params.clone();
        self.blocking(move || {
            let Ok(parsed) = PasswordHash::new(&stored) else {
                log::error!("a stored password hash is not a valid PHC string");
                return Ok(Verified::No);
            };
            let candidate = candidate.expose_secret().as_bytes();
            // Verification uses the parameters recorded in the hash itself.
            if Argon2::default()
                .verify_password(candidate, &parsed)
                .is_err()
                || !exists
            {
                return Ok(Verified::No);
            }
            if uses_params(&parsed, &params) {
                return Ok(Verified::Yes);
            }
            let rehash = argon2(&params)
                .hash_password(candidate)
                .map_err(HashError::Hashing)?;
            Ok(Verified::YesRehashed(rehash.to_string()))
        })
        .await
    }

    async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let _permit = self
            .permits
            .acquire()
            .await
            .map_err(|_| HashError::Cancelled)?;
        web::block(work).await.map_err(|_| HashError::Cancelled)?
    }
}

fn argon2(params: &Params) -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params.clone())
}

/// Whether a stored hash was made with argon2id, the current version and `params`.
fn uses_params(hash: &PasswordHash, params: &Params) -> bool {
    let Ok(stored) = Params::try_from(hash) else {
        return false;
    };
    hash.algorithm == argon2::ARGON2ID_IDENT
        && hash.version == Some(Version::V0x13.into())
        && stored.m_cost() == params.m_cost()
        && stored.t_cost() == params.t_cost()
        && stored.p_cost() == params.p_cost()
}

fn getrandom(buf: &mut [u8]) {
    use rand_core::{OsRng, RngCore};
    OsRng.fill_bytes(buf);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::PasswordPolicySettings;
    use crate::domain::PasswordPolicy;

    fn settings(memory_kib: u32) -> HashSettings {
        HashSettings {
            memory_kib,
            iterations: 1,
            parallelism: 1,
            concurrency: 2,
        }
    }

    fn password(raw: &str) -> Password {
        let policy = PasswordPolicy::from(PasswordPolicySettings {
            require_composition: false,
        });
        policy.parse(raw, "someone@example.com").unwrap()
    }

    #[actix_web::test]
    async fn hashes_are_argon2id_phc_strings_with_the_configured_parameters() {
        let hasher = PasswordHasher::new(settings(8192)).unwrap();
        let hash = hasher.hash(&password("a long passphrase")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{hash}");
        let again = hasher.hash(&password("a long passphrase")).await.unwrap();
        assert_ne!(hash, again, "every hash has its own salt");
    }

    #[actix_web::test]
    async fn verifies_and_rehashes_when_parameters_change() {
        let old = PasswordHasher::new(settings(4096)).unwrap();
        let hash = old.hash(&password("a long passphrase")).await.unwrap();
        let current = PasswordHasher::new(settings(8192)).unwrap();

        let wrong = current
            .verify("wrong passphrase".into(), Some(hash.clone()))
            .await
            .unwrap();
        assert_eq!(wrong, Verified::No);
        let Verified::YesRehashed(new_hash) = current
            .verify("a long passphrase".into(), Some(hash))
            .await
            .unwrap()
        else {
            panic!("expected a re-hash");
        };
        assert!(new_hash.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"));
        let same = current
            .verify("a long passphrase".into(), Some(new_hash))
            .await
            .unwrap();
        assert_eq!(same, Verified::Yes);
    }

    #[actix_web::test]
    async fn unknown_accounts_never_verify() {
        let hasher = PasswordHasher::new(settings(8192)).unwrap();
        let outcome = hasher.verify("anything at all".into(), None).await.unwrap();
        assert_eq!(outcome, Verified::No);
        let garbage = hasher
            .verify("anything at all".into(), Some("not a hash".into()))
            .await
            .unwrap();
        assert_eq!(garbage, Verified::No);
    }
}
