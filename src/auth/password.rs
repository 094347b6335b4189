//! Argon2id password hashing on a dedicated pool of threads, bounded in memory and in queue;
//! verification of argon2 at any parameters and of bcrypt (see `hash_formats`).

use std::sync::Arc;

use argon2::password_hash::phc::{Output, ParamsString, Salt};
use argon2::{Algorithm, Argon2, Block, Params, PasswordHash, Version};
use crossbeam_channel::{Sender, TrySendError};
use rand_core::{OsRng, RngCore};
use secrecy::{ExposeSecret, SecretString};

use super::hash_formats::HashFormat;
use crate::config::HashSettings;
use crate::domain::{normalize_password, Password};

/// How much lower than the request workers the hashing threads run (nice value).
const HASHING_NICENESS: libc::c_int = 10;

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("invalid argon2 parameters: {0}")]
    Params(argon2::Error),
    #[error("hashing failed: {0}")]
    Hashing(String),
    #[error("could not start a hashing thread: {0}")]
    Thread(std::io::Error),
    /// Too many hashes are already waiting: the caller should come back shortly.
    #[error("too many password hashes are waiting")]
    Overloaded,
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

type Job = Box<dyn FnOnce(&mut Workspace) + Send>;

/// Hashes and verifies passwords with the configured argon2id parameters.
///
/// The work runs on `concurrency` dedicated threads, so memory stays bounded under any flood
/// (threads × `memory_kib`). While work is waiting, each thread keeps its argon2 memory from
/// one hash to the next (a fresh allocation of that size is mapped and zeroed by the kernel
/// every time, which costs about 30 % more at 64 MiB), and it runs at a lower scheduling priority than the request workers, so a
/// login flood cannot slow cheap requests down. At most `queue` hashes wait; beyond that a
/// request is refused at once ([`HashError::Overloaded`], answered 503 with `Retry-After`)
/// instead of waiting without limit.
#[derive(Clone)]
pub struct PasswordHasher {
    params: Params,
    jobs: Sender<Job>,
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
        let (jobs, queue) = crossbeam_channel::bounded::<Job>(settings.queue);
        for n in 0..settings.concurrency {
            let queue = queue.clone();
            std::thread::Builder::new()
                .name(format!("argon2-{n}"))
                .spawn(move || {
                    lower_priority();
                    let mut workspace = Workspace::default();
                    for job in queue.iter() {
                        job(&mut workspace);
                        // Keep the memory only while more work is waiting: a flood reuses it,
                        // a quiet server gives it back.
                        if queue.is_empty() {
                            workspace.release();
                        }
                    }
                })
                .map_err(HashError::Thread)?;
        }
        let dummy_hash = dummy_hash(&params)?;
        Ok(PasswordHasher {
            params,
            jobs,
            dummy_hash: dummy_hash.into(),
        })
    }

    /// Hashes a new password into a PHC string.
    pub async fn hash(&self, password: &Password) -> Result<String, HashError> {
        let password = SecretString::from(password.expose());
        let params = self.params.clone();
        self.run(move |workspace| hash_phc(&params, workspace, password.expose_secret().as_bytes()))
            .await
    }

    /// Checks `candidate` against `stored`, or against the dummy hash when there is no account,
    /// so both cases cost the same. Offers a re-hash when the parameters have changed.
    ///
    /// `stored` may be any hash [`HashFormat`] recognises: argon2 at any parameters, or bcrypt
    /// (accounts imported from fastapi-users). Either is checked here, on this bounded pool,
    /// with the cost recorded in the hash itself; a right password for anything but an argon2id
    /// hash at the configured parameters offers a re-hash, so an imported account moves to
    /// Gatehouse's own hash at its first login.
    ///
    /// Passwords are hashed in their NFKC form (see [`crate::domain::normalize_password`]).
    /// Hashes made before that (or by another system) were made of the password as typed: when
    /// the normal form does not match and differs from what was typed, the typed form is tried
    /// too, and a match offers a re-hash of the normal form, so such an account moves over at
    /// its next login. The second try costs the same whether or not the account exists.
    pub async fn verify(
        &self,
        candidate: SecretString,
        stored: Option<String>,
    ) -> Result<Verified, HashError> {
        let exists = stored.is_some();
        let stored = stored.unwrap_or_else(|| self.dummy_hash.to_string());
        let params = self.params.clone();
        self.run(move |workspace| {
            let format = match HashFormat::recognise(&stored) {
                Ok(format) => format,
                Err(why) => {
                    log::error!("a stored password hash cannot be verified: {why}");
                    return Ok(Verified::No);
                }
            };
            // Verification uses the algorithm and parameters recorded in the hash itself.
            let phc = match format {
                HashFormat::Argon2 { .. } => match PasswordHash::new(&stored) {
                    Ok(parsed) => Some(parsed),
                    Err(_) => return Ok(Verified::No),
                },
                HashFormat::Bcrypt { .. } => None,
            };
            let mut matches = |password: &[u8]| match &phc {
                Some(parsed) => verify_phc(workspace, password, parsed),
                // Truncates at 72 bytes, as every bcrypt that made these hashes did.
                None => bcrypt::verify(password, &stored).unwrap_or(false),
            };
            let typed = candidate.expose_secret();
            let normal = SecretString::from(normalize_password(typed));
            let normal = normal.expose_secret().as_bytes();
            let matches_normal = matches(normal);
            let matches_typed =
                !matches_normal && normal != typed.as_bytes() && matches(typed.as_bytes());
            if !exists || !(matches_normal || matches_typed) {
                return Ok(Verified::No);
            }
            let current = phc
                .as_ref()
                .is_some_and(|parsed| uses_params(parsed, &params));
            if matches_normal && current {
                return Ok(Verified::Yes);
            }
            let rehash = hash_phc(&params, workspace, normal)?;
            Ok(Verified::YesRehashed(rehash))
        })
        .await
    }

    /// Queues `work` for a hashing thread and waits for its result without blocking.
    async fn run<T: Send + 'static>(
        &self,
        work: impl FnOnce(&mut Workspace) -> Result<T, HashError> + Send + 'static,
    ) -> Result<T, HashError> {
        let (done, result) = tokio::sync::oneshot::channel();
        let job: Job = Box::new(move |workspace| {
            let _ = done.send(work(workspace));
        });
        self.jobs.try_send(job).map_err(|e| match e {
            TrySendError::Full(_) => HashError::Overloaded,
            TrySendError::Disconnected(_) => HashError::Cancelled,
        })?;
        result.await.map_err(|_| HashError::Cancelled)?
    }
}

/// A hashing thread's argon2 memory, kept between hashes.
#[derive(Default)]
struct Workspace {
    blocks: Vec<Block>,
}

impl Workspace {
    fn blocks_for(&mut self, params: &Params) -> &mut [Block] {
        let count = params.block_count();
        if self.blocks.len() < count {
            self.blocks = vec![Block::default(); count];
        }
        &mut self.blocks[..count]
    }

    fn release(&mut self) {
        self.blocks = Vec::new();
    }
}

/// Hashes with a fresh random salt into the memory of `workspace`; returns the PHC string.
fn hash_phc(
    params: &Params,
    workspace: &mut Workspace,
    password: &[u8],
) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    OsRng.fill_bytes(&mut salt);
    let mut output = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    argon2(params)
        .hash_password_into_with_memory(password, &salt, &mut output, workspace.blocks_for(params))
        .map_err(HashError::Params)?;
    phc_string(params, &salt, &output)
}

/// A PHC string with the current parameters, a random salt and a random output: checking any
/// password against it costs one full hash and never succeeds. Nothing is hashed to make it,
/// so startup stays fast at any cost setting.
fn dummy_hash(params: &Params) -> Result<String, HashError> {
    let mut salt = [0u8; 16];
    let mut output = vec![0u8; params.output_len().unwrap_or(Params::DEFAULT_OUTPUT_LEN)];
    OsRng.fill_bytes(&mut salt);
    OsRng.fill_bytes(&mut output);
    phc_string(params, &salt, &output)
}

fn phc_string(params: &Params, salt: &[u8], output: &[u8]) -> Result<String, HashError> {
    let failed = |e: &dyn std::fmt::Display| HashError::Hashing(e.to_string());
    let hash = PasswordHash {
        algorithm: Algorithm::Argon2id.ident(),
        version: Some(Version::V0x13.into()),
        params: ParamsString::try_from(params).map_err(|e| failed(&e))?,
        salt: Some(Salt::new(salt).map_err(|e| failed(&e))?),
        hash: Some(Output::new(output).map_err(|e| failed(&e))?),
    };
    Ok(hash.to_string())
}

/// Recomputes `stored` from `password` with the algorithm, version, parameters and salt it
/// records, in the memory of `workspace`; compares in constant time (`Output`'s equality).
fn verify_phc(workspace: &mut Workspace, password: &[u8], stored: &PasswordHash) -> bool {
    let (Some(salt), Some(expected)) = (&stored.salt, &stored.hash) else {
        return false;
    };
    let (Ok(algorithm), Ok(params)) = (
        Algorithm::try_from(stored.algorithm.as_str()),
        Params::try_from(stored),
    ) else {
        return false;
    };
    let Ok(version) = stored
        .version
        .map_or(Ok(Version::default()), Version::try_from)
    else {
        return false;
    };
    let mut output = vec![0u8; expected.len()];
    let computed = Argon2::new(algorithm, version, params.clone()).hash_password_into_with_memory(
        password,
        salt.as_ref(),
        &mut output,
        workspace.blocks_for(&params),
    );
    computed.is_ok() && Output::new(&output).is_ok_and(|output| &output == expected)
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

/// Runs the calling thread below the request workers, so the scheduler lets them through
/// first (on Linux a thread's nice value is its own).
fn lower_priority() {
    #[cfg(target_os = "linux")]
    // SAFETY: setpriority has no memory-safety preconditions; a failure only leaves the
    // priority as it was.
    unsafe {
        let thread = libc::gettid() as libc::id_t;
        if libc::setpriority(libc::PRIO_PROCESS, thread, HASHING_NICENESS) != 0 {
            log::warn!("could not lower the priority of a hashing thread");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::PasswordPolicy;

    fn settings(memory_kib: u32) -> HashSettings {
        HashSettings {
            memory_kib,
            iterations: 1,
            parallelism: 1,
            concurrency: 2,
            queue: 8,
        }
    }

    fn password(raw: &str) -> Password {
        let policy = PasswordPolicy::new(false, "http://localhost:8080");
        policy.parse(raw, "someone@example.com").unwrap()
    }

    #[tokio::test]
    async fn hashes_are_argon2id_phc_strings_with_the_configured_parameters() {
        let hasher = PasswordHasher::new(settings(8192)).unwrap();
        let hash = hasher.hash(&password("a long passphrase")).await.unwrap();
        assert!(hash.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"), "{hash}");
        let again = hasher.hash(&password("a long passphrase")).await.unwrap();
        assert_ne!(hash, again, "every hash has its own salt");
    }

    #[tokio::test]
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

    #[tokio::test]
    async fn any_spelling_of_a_password_verifies_and_old_hashes_move_to_the_normal_form() {
        use argon2::password_hash::PasswordHasher as _;
        let hasher = PasswordHasher::new(settings(8192)).unwrap();
        let composed = "caf\u{e9} au lait";
        let decomposed = "cafe\u{301} au lait";
        let hash = hasher.hash(&password(decomposed)).await.unwrap();
        for spelling in [composed, decomposed] {
            let outcome = hasher.verify(spelling.into(), Some(hash.clone())).await;
            assert_eq!(outcome.unwrap(), Verified::Yes, "{spelling:?}");
        }

        // A hash of the decomposed spelling, as typed, from before normalization.
        let legacy = argon2(&hasher.params)
            .hash_password(decomposed.as_bytes())
            .unwrap()
            .to_string();
        let Verified::YesRehashed(moved) = hasher
            .verify(decomposed.into(), Some(legacy.clone()))
            .await
            .unwrap()
        else {
            panic!("the typed form matches and the normal form is offered");
        };
        assert_eq!(
            hasher.verify(composed.into(), Some(moved)).await.unwrap(),
            Verified::Yes
        );
        let wrong = hasher.verify("cafe au lait".into(), Some(legacy)).await;
        assert_eq!(wrong.unwrap(), Verified::No);
    }

    #[tokio::test]
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

    #[tokio::test]
    async fn hashes_interoperate_with_the_argon2_crate() {
        use argon2::password_hash::{PasswordHasher as _, PasswordVerifier as _};
        let hasher = PasswordHasher::new(settings(8192)).unwrap();
        let ours = hasher.hash(&password("a long passphrase")).await.unwrap();
        let parsed = PasswordHash::new(&ours).unwrap();
        assert!(argon2(&hasher.params)
            .verify_password(b"a long passphrase", &parsed)
            .is_ok());
        assert!(argon2(&hasher.params)
            .verify_password(b"another passphrase", &parsed)
            .is_err());

        let theirs = argon2(&hasher.params)
            .hash_password(b"a long passphrase")
            .unwrap()
            .to_string();
        let outcome = hasher
            .verify("a long passphrase".into(), Some(theirs.clone()))
            .await
            .unwrap();
        assert_eq!(outcome, Verified::Yes);
        let wrong = hasher
            .verify("a long passphrase!".into(), Some(theirs))
            .await
            .unwrap();
        assert_eq!(wrong, Verified::No);
    }

    /// Made by fastapi-users' own libraries (Python bcrypt 5 and pwdlib 0.3) for
    /// "correct horse battery staple".
    const BCRYPT_2B: &str = "$2b$04$.D6SSaQKwNBKsVy7Sa/o2.3/jBJso/pCReTQvHzK0R2HnQ.AHV71q";
    const BCRYPT_2A: &str = "$2a$04$MFyAna51sZDRRKNtxcRNjuLJNzDQKXHBxYgLptbruejHyJAa1qupa";
    const PWDLIB_ARGON2: &str = "$argon2id$v=19$m=65536,t=3,p=4$\
        vPGdwU1K8pNpyOgDSUA9tw$e5qtsMms0Ga2CW9CN8qBEHn5QgdV0nH33vnBDUmHRBg";

    #[tokio::test]
    async fn bcrypt_hashes_verify_and_move_to_argon2id() {
        let hasher = PasswordHasher::new(settings(8192)).unwrap();
        let prefix_2y = BCRYPT_2B.replacen("$2b$", "$2y$", 1);
        for stored in [BCRYPT_2B, BCRYPT_2A, prefix_2y.as_str()] {
            let wrong = hasher
                .verify("correct horse battery stapler".into(), Some(stored.into()))
                .await;
            assert_eq!(wrong.unwrap(), Verified::No, "{stored}");
            let Verified::YesRehashed(moved) = hasher
                .verify("correct horse battery staple".into(), Some(stored.into()))
                .await
                .unwrap()
            else {
                panic!("a right password for a bcrypt hash offers an argon2id re-hash: {stored}");
            };
            assert!(
                moved.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"),
                "{moved}"
            );
            let again = hasher.verify("correct horse battery staple".into(), Some(moved));
            assert_eq!(again.await.unwrap(), Verified::Yes);
        }
    }

    #[tokio::test]
    async fn bcrypt_checks_the_password_as_typed_and_as_the_old_backend_truncated_it() {
        let hasher = PasswordHasher::new(settings(8192)).unwrap();
        // Python bcrypt's hash of the decomposed spelling, as fastapi-users hashed it (no NFKC).
        let decomposed = "$2b$04$mBlP60DRYEX8EDwYw/AyPeCbTuphIO9rPTVn1KoyRSRd5LXc5qXtW";
        let outcome = hasher.verify("cafe\u{301} au lait".into(), Some(decomposed.into()));
        let Verified::YesRehashed(moved) = outcome.await.unwrap() else {
            panic!("the typed form matches");
        };
        let composed = hasher.verify("caf\u{e9} au lait".into(), Some(moved));
        assert_eq!(
            composed.await.unwrap(),
            Verified::Yes,
            "moved to the normal form"
        );
        // bcrypt reads 72 bytes; the old backend accepted anything that began with them.
        let seventy_two_x = "$2b$04$v4uoMjphIw9W4KJSqGHCjOZ0/ywuAQVrCxTC2jFdDM32j/9ReGUgq";
        let longer = hasher.verify("x".repeat(80).into(), Some(seventy_two_x.into()));
        assert!(matches!(longer.await.unwrap(), Verified::YesRehashed(_)));
        let shorter = hasher.verify("x".repeat(71).into(), Some(seventy_two_x.into()));
        assert_eq!(shorter.await.unwrap(), Verified::No);
    }

    #[tokio::test]
    async fn argon2_at_pwdlibs_parameters_verifies_and_is_rehashed_to_ours() {
        let hasher = PasswordHasher::new(settings(8192)).unwrap();
        let wrong = hasher.verify(
            "Correct horse battery staple".into(),
            Some(PWDLIB_ARGON2.into()),
        );
        assert_eq!(wrong.await.unwrap(), Verified::No);
        let right = hasher.verify(
            "correct horse battery staple".into(),
            Some(PWDLIB_ARGON2.into()),
        );
        let Verified::YesRehashed(moved) = right.await.unwrap() else {
            panic!("other parameters are re-hashed");
        };
        assert!(
            moved.starts_with("$argon2id$v=19$m=8192,t=1,p=1$"),
            "{moved}"
        );
    }

    #[tokio::test]
    async fn hashes_it_cannot_recognise_never_verify() {
        let hasher = PasswordHasher::new(settings(8192)).unwrap();
        let buggy = BCRYPT_2B.replacen("$2b$", "$2x$", 1);
        let pbkdf2 = "$pbkdf2-sha256$29000$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk";
        for stored in [buggy.as_str(), pbkdf2, "correct horse battery staple"] {
            let outcome = hasher.verify("correct horse battery staple".into(), Some(stored.into()));
            assert_eq!(outcome.await.unwrap(), Verified::No, "{stored}");
        }
    }

    #[tokio::test]
    async fn a_full_queue_sheds_work_instead_of_growing() {
        let hasher = PasswordHasher::new(HashSettings {
            memory_kib: 8192,
            iterations: 4,
            parallelism: 1,
            concurrency: 1,
            queue: 2,
        })
        .unwrap();
        let flood = (0..12).map(|_| hasher.verify("a long passphrase".into(), None));
        let outcomes = futures_util::future::join_all(flood).await;
        let shed = outcomes
            .iter()
            .filter(|o| matches!(o, Err(HashError::Overloaded)))
            .count();
        let done = outcomes.iter().filter(|o| o.is_ok()).count();
        assert!(shed > 0, "a queue of 2 took 12 hashes");
        assert!(done >= 2, "queued work still completes: {done}");
        assert_eq!(shed + done, 12);
    }
}
