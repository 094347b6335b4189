//! Which password hash a stored string is: Gatehouse's own argon2id, argon2 at any other
//! parameters, or bcrypt as passlib and pwdlib write it (accounts imported from fastapi-users).
//! Anything else is recognised as nothing, so it is refused at import rather than stored as an
//! account nobody can sign in to.

use std::fmt;

use argon2::{Algorithm, Params, PasswordHash, Version};

/// The most memory an imported argon2 hash may ask for, in KiB (1 GiB): verifying it runs on
/// the hasher's bounded pool, whose memory is threads × this until the account's first login
/// re-hashes it with the configured parameters.
pub const MAX_IMPORTED_ARGON2_MEMORY_KIB: u32 = 1 << 20;
/// The highest bcrypt cost an import accepts: each step doubles the work, and 16 already
/// takes seconds of one core per login (passlib and pwdlib default to 12).
pub const MAX_IMPORTED_BCRYPT_COST: u32 = 16;

/// A password hash format Gatehouse can verify.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashFormat {
    /// An argon2 PHC string (`$argon2id$v=19$m=…,t=…,p=…$salt$hash`), any variant and cost.
    Argon2 {
        algorithm: Algorithm,
        memory_kib: u32,
        iterations: u32,
        parallelism: u32,
    },
    /// A bcrypt hash in the modular crypt format (`$2b$12$` + 53 characters); `2a`, `2b` and
    /// `2y` are one algorithm today.
    Bcrypt { prefix: BcryptPrefix, cost: u32 },
}

/// The three spellings of bcrypt's identifier that mean the corrected algorithm. (`2x`, which
/// marks hashes made by a crypt_blowfish bug, is not one of them.)
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BcryptPrefix {
    TwoA,
    TwoB,
    TwoY,
}

/// Why a stored string is not a hash Gatehouse can verify, in words for an operator.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Unrecognised(String);

impl HashFormat {
    /// Recognises `stored`, or says why it is not a hash Gatehouse can verify (never quoting
    /// more of it than the identifier).
    pub fn recognise(stored: &str) -> Result<HashFormat, Unrecognised> {
        if stored.starts_with("$argon2") {
            return argon2_format(stored);
        }
        if stored.starts_with("$2") {
            return bcrypt_format(stored);
        }
        Err(Unrecognised(format!(
            "unknown password hash format ({})",
            identifier(stored)
        )))
    }

    /// Checks that verifying a hash of this format stays within what one login may cost (see
    /// the limits above).
    pub fn check_importable(self) -> Result<(), Unrecognised> {
        match self {
            HashFormat::Argon2 { memory_kib, .. } if memory_kib > MAX_IMPORTED_ARGON2_MEMORY_KIB => {
                Err(Unrecognised(format!(
                    "argon2 memory cost {memory_kib} KiB is above the {MAX_IMPORTED_ARGON2_MEMORY_KIB} \
                     KiB an import accepts"
                )))
            }
            HashFormat::Bcrypt { cost, .. } if cost > MAX_IMPORTED_BCRYPT_COST => {
                Err(Unrecognised(format!(
                    "bcrypt cost {cost} is above the {MAX_IMPORTED_BCRYPT_COST} an import accepts"
                )))
            }
            _ => Ok(()),
        }
    }

    pub fn is_bcrypt(self) -> bool {
        matches!(self, HashFormat::Bcrypt { .. })
    }
}

impl fmt::Display for HashFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HashFormat::Argon2 {
                algorithm,
                memory_kib,
                iterations,
                parallelism,
            } => write!(
                f,
                "{} m={memory_kib},t={iterations},p={parallelism}",
                algorithm.ident()
            ),
            HashFormat::Bcrypt { prefix, cost } => {
                let prefix = match prefix {
                    BcryptPrefix::TwoA => "2a",
                    BcryptPrefix::TwoB => "2b",
                    BcryptPrefix::TwoY => "2y",
                };
                write!(f, "bcrypt ${prefix}$, cost {cost}")
            }
        }
    }
}

fn argon2_format(stored: &str) -> Result<HashFormat, Unrecognised> {
    let bad = |why: &str| Unrecognised(format!("not a valid argon2 hash: {why}"));
    let hash = PasswordHash::new(stored).map_err(|_| bad("not a PHC string"))?;
    let algorithm =
        Algorithm::try_from(hash.algorithm.as_str()).map_err(|_| bad("unknown argon2 variant"))?;
    if let Some(version) = hash.version {
        Version::try_from(version).map_err(|_| bad("unknown version"))?;
    }
    let params = Params::try_from(&hash).map_err(|_| bad("parameters out of range"))?;
    let (Some(_), Some(output)) = (&hash.salt, &hash.hash) else {
        return Err(bad("no salt or no hash"));
    };
    if output.len() < Params::MIN_OUTPUT_LEN {
        return Err(bad("the hash is too short"));
    }
    Ok(HashFormat::Argon2 {
        algorithm,
        memory_kib: params.m_cost(),
        iterations: params.t_cost(),
        parallelism: params.p_cost(),
    })
}

/// `$2b$12$` then 22 characters of salt and 31 of hash, in bcrypt's base64 alphabet.
fn bcrypt_format(stored: &str) -> Result<HashFormat, Unrecognised> {
    let bad = |why: &str| Unrecognised(format!("not a valid bcrypt hash: {why}"));
    let mut parts = stored.splitn(4, '$');
    let (Some(""), Some(prefix), Some(cost), Some(rest)) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(bad("not `$2b$<cost>$<salt and hash>`"));
    };
    let prefix = match prefix {
        "2a" => BcryptPrefix::TwoA,
        "2b" => BcryptPrefix::TwoB,
        "2y" => BcryptPrefix::TwoY,
        "2x" => {
            return Err(bad(
                "`$2x$` hashes were made by a known bug and cannot be checked",
            ))
        }
        _ => {
            return Err(Unrecognised(format!(
                "unknown password hash format ({})",
                identifier(stored)
            )))
        }
    };
    let cost = match cost.as_bytes() {
        [a, b] if a.is_ascii_digit() && b.is_ascii_digit() => {
            u32::from((a - b'0') * 10 + (b - b'0'))
        }
        _ => return Err(bad("the cost is not two digits")),
    };
    if !(4..=31).contains(&cost) {
        return Err(bad("the cost is not between 04 and 31"));
    }
    let alphabet = |c: u8| c.is_ascii_alphanumeric() || c == b'.' || c == b'/';
    if rest.len() != 53 || !rest.bytes().all(alphabet) {
        return Err(bad(
            "the salt and hash are not 53 characters of bcrypt's alphabet",
        ));
    }
    Ok(HashFormat::Bcrypt { prefix, cost })
}

/// The identifier a modular-crypt string starts with (`$pbkdf2-sha256$`), or a note that there
/// is none; never the salt or the hash.
fn identifier(stored: &str) -> String {
    match stored
        .strip_prefix('$')
        .and_then(|rest| rest.split_once('$'))
    {
        Some((id, _))
            if !id.is_empty()
                && id.len() <= 32
                && id
                    .bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b"-_".contains(&c)) =>
        {
            format!("starts with `${id}$`")
        }
        _ if stored.is_empty() => "empty".to_owned(),
        _ => "no `$identifier$` prefix".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// pwdlib's default (argon2-cffi: argon2id, 64 MiB, 3 passes, 4 lanes), made by fastapi-users.
    const PWDLIB_ARGON2: &str = "$argon2id$v=19$m=65536,t=3,p=4$\
        r+q143ayWLg6DkPfDzDZ/w$R4QuUUJEdou44nR/y1RuQypruL9W53WQHHj7HLBib8c";
    /// Python bcrypt's (cost 12), as passlib wrote it for older fastapi-users installs.
    const PASSLIB_BCRYPT: &str = "$2b$12$.D6SSaQKwNBKsVy7Sa/o2.3/jBJso/pCReTQvHzK0R2HnQ.AHV71q";

    #[test]
    fn recognises_argon2_at_any_parameters_and_variant() {
        assert_eq!(
            HashFormat::recognise(PWDLIB_ARGON2).unwrap(),
            HashFormat::Argon2 {
                algorithm: Algorithm::Argon2id,
                memory_kib: 65536,
                iterations: 3,
                parallelism: 4
            }
        );
        let argon2i = PWDLIB_ARGON2.replace("argon2id", "argon2i");
        assert!(matches!(
            HashFormat::recognise(&argon2i).unwrap(),
            HashFormat::Argon2 {
                algorithm: Algorithm::Argon2i,
                ..
            }
        ));
        let gatehouse = PWDLIB_ARGON2.replace("m=65536,t=3,p=4", "m=19456,t=2,p=1");
        assert!(HashFormat::recognise(&gatehouse).is_ok());
    }

    #[test]
    fn recognises_bcrypt_by_its_three_prefixes() {
        for (prefix, expected) in [
            ("2a", BcryptPrefix::TwoA),
            ("2b", BcryptPrefix::TwoB),
            ("2y", BcryptPrefix::TwoY),
        ] {
            let hash = PASSLIB_BCRYPT.replacen("2b", prefix, 1);
            assert_eq!(
                HashFormat::recognise(&hash).unwrap(),
                HashFormat::Bcrypt {
                    prefix: expected,
                    cost: 12
                },
                "{hash}"
            );
        }
    }

    #[test]
    fn refuses_what_it_cannot_verify_and_says_why_without_quoting_the_hash() {
        for (stored, why) in [
            ("", "empty"),
            ("plaintext-password", "no `$identifier$` prefix"),
            (
                "$pbkdf2-sha256$29000$N2YMIWQsBWBMae09x1jrPQ$1t8iyB2A.WF/Z5JZv.lfCIhXXN33N23OSgQYThBYRfk",
                "starts with `$pbkdf2-sha256$`",
            ),
            (
                "$bcrypt-sha256$v=2,t=2b,r=12$n79VH.0Q2TMWmt3Oqt9uku$Kq4Noyk3094Y2QlB8NdRT8SvGiI4ft2",
                "starts with `$bcrypt-sha256$`",
            ),
            ("$2x$12$KIXQJ8Qn0f1s0l5y7o9c3eYQy4w3j1bS6b8kqzD9E8n2o1e8cV3y.", "known bug"),
            ("$2b$12$tooshort", "53 characters"),
            ("$2b$3$KIXQJ8Qn0f1s0l5y7o9c3eYQy4w3j1bS6b8kqzD9E8n2o1e8cV3y.", "two digits"),
            ("$2b$03$KIXQJ8Qn0f1s0l5y7o9c3eYQy4w3j1bS6b8kqzD9E8n2o1e8cV3y.", "between 04"),
            ("$argon2id$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ", "no salt or no hash"),
            ("$argon2id$v=19$m=65536,t=3,p=4", "not a valid argon2 hash"),
            ("$argon2q$v=19$m=65536,t=3,p=4$c2FsdHNhbHQ$aGFzaGhhc2hoYXNoaGFzaA", "variant"),
        ] {
            let err = HashFormat::recognise(stored).unwrap_err().to_string();
            assert!(err.contains(why), "{stored:?}: {err}");
            if stored.len() > 20 {
                assert!(!err.contains(&stored[stored.len() - 10..]), "{err}");
            }
        }
    }

    #[test]
    fn imports_stop_at_costs_one_login_cannot_afford() {
        let heavy = PWDLIB_ARGON2.replace("m=65536", "m=2097152");
        let format = HashFormat::recognise(&heavy).unwrap();
        assert!(format
            .check_importable()
            .unwrap_err()
            .to_string()
            .contains("memory"));
        let slow = PASSLIB_BCRYPT.replacen("$12$", "$17$", 1);
        let format = HashFormat::recognise(&slow).unwrap();
        assert!(format
            .check_importable()
            .unwrap_err()
            .to_string()
            .contains("cost 17"));
        for fine in [PWDLIB_ARGON2, PASSLIB_BCRYPT] {
            assert!(HashFormat::recognise(fine)
                .unwrap()
                .check_importable()
                .is_ok());
        }
    }

    #[test]
    fn describes_a_format_for_the_import_report() {
        assert_eq!(
            HashFormat::recognise(PWDLIB_ARGON2).unwrap().to_string(),
            "argon2id m=65536,t=3,p=4"
        );
        assert_eq!(
            HashFormat::recognise(PASSLIB_BCRYPT).unwrap().to_string(),
            "bcrypt $2b$, cost 12"
        );
    }
}
