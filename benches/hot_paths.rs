//! Micro-benchmarks of the work on Gatehouse's request paths, one piece at a time.
//!
//! Run them all with
//!
//! ```text
//! cargo bench --bench hot_paths -- --warm-up-time 1 --measurement-time 3
//! ```
//!
//! or a few by passing a filter (`cargo bench --bench hot_paths -- token/`). The groups:
//!
//! - `token/es256/{issue,verify}`, `token/hs256/{issue,verify}`: [`AccessTokens::issue`] and
//!   [`AccessTokens::verify`] as the service calls them, keys loaded from settings exactly as at
//!   startup. Every authenticated request pays one `verify`; every login and refresh one `issue`.
//! - `token/es256/jwt_decode_only`: bare `jsonwebtoken::decode` of the same ES256 token with a
//!   plain validation, to show how much of `verify` is the signature check itself (nearly all).
//! - `password/argon2id/{default,peer}/{hash,verify}`: argon2id through the `argon2` crate
//!   directly, at the service's default parameters (OWASP: m=19456 KiB, t=2, p=1) and at the
//!   heavier parameters a peer service uses (m=65536 KiB, t=3, p=4). This is the raw crypto
//!   ceiling of signup and login on one core: the service adds only a thread hop and a permit.
//!   The crate is built without its `parallel` feature, so the 4 lanes run one after another.
//! - `password/argon2id/peer/hash_into_{fresh,reused}_buffer`: the same raw hash (no salt
//!   generation, no PHC encoding) with the 64 MiB work area allocated afresh per hash (what
//!   `hash_password` does; glibc serves it with a new mmap, so every page is faulted in and
//!   zeroed again) versus one preallocated buffer reused across hashes.
//! - `db/find_user_for_access`, `db/users/find_by_id`: the per-request user lookup behind an
//!   access token (with the check that its refresh token is already recorded in use: after
//!   the first request, a read), and the plain lookup by id, on a real SQLite file (WAL, as the service opens
//!   it) holding 10,000 users with one session each, picking a random user every time. The
//!   connection is held, so pool checkout and the blocking-pool hop are not included.
//! - `db/sessions/rotate`: one refresh-token rotation (a write transaction: look up, mark
//!   rotated, insert the child, extend the session), including deriving and hashing the child
//!   as `services::sessions::refresh` does. Every iteration presents the child of the previous
//!   one, so each is a real rotation, never a replay.
//! - `refresh/successor_and_hashes`: only that derivation and hashing, without the database.

use std::hint::black_box;
use std::time::Duration;

use argon2::{
    Algorithm, Argon2, Block, Params, PasswordHash, PasswordHasher as _, PasswordVerifier as _,
    Version,
};
use criterion::measurement::WallTime;
use criterion::{
    criterion_group, criterion_main, BatchSize, BenchmarkGroup, Criterion, SamplingMode,
};
use secrecy::ExposeSecret;
use uuid::Uuid;

use gatehouse::auth::keys::{generate_jwks, SigningKeys};
use gatehouse::auth::refresh::{self, RefreshTokens};
use gatehouse::auth::tokens::{AccessGrant, AccessTokens, Grant};
use gatehouse::config::{JwtAlgorithm, JwtSettings, KeySource};
use gatehouse::db::sessions::{self, NewSession, Rotation, RotationRequest};
use gatehouse::db::{self, users, Conn};
use gatehouse::domain::{AuthMethods, Email, UserId};

// ---------------------------------------------------------------------------------------------
// Access tokens
// ---------------------------------------------------------------------------------------------

const ISSUER: &str = "gatehouse";
const AUDIENCE: &str = "fastapi-users:auth";

/// Settings as the service builds them from its defaults, with the given keys.
fn jwt_settings(keys: KeySource, algorithm: JwtAlgorithm) -> JwtSettings {
    JwtSettings {
        algorithm,
        keys,
        signing_kid: None,
        issuer: ISSUER.into(),
        audience: vec![AUDIENCE.into()],
        access_token_ttl: Duration::from_secs(1800),
        leeway: Duration::from_secs(5),
    }
}

fn es256_settings() -> JwtSettings {
    let (private, _public) = generate_jwks();
    jwt_settings(
        KeySource::Jwks(private.expose_secret().to_owned().into()),
        JwtAlgorithm::Es256,
    )
}

fn hs256_settings() -> JwtSettings {
    jwt_settings(
        KeySource::SharedSecret("0123456789abcdef0123456789abcdef-bench".into()),
        JwtAlgorithm::Hs256,
    )
}

fn access_tokens(settings: &JwtSettings) -> AccessTokens {
    AccessTokens::new(
        SigningKeys::load(settings).expect("keys load"),
        settings,
        "https://auth.example.com",
    )
}

fn grant() -> AccessGrant {
    AccessGrant {
        user_id: UserId::new(),
        session_id: Uuid::new_v4(),
        refresh_generation: Some(1),
        methods: AuthMethods::PASSWORD,
        auth_time: 1_700_000_000,
    }
}

/// `issue` and `verify` of one algorithm, in the group `token/<name>`.
fn token_group<'a>(
    c: &'a mut Criterion,
    name: &str,
    tokens: &AccessTokens,
) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(format!("token/{name}"));
    let grant = grant();
    group.bench_function("issue", |b| {
        b.iter(|| tokens.issue(black_box(grant)).expect("issue"))
    });
    let token = tokens.issue(grant).expect("issue").token;
    assert_eq!(tokens.verify(&token).expect("verify"), Grant::User(grant));
    // A token seen before: answered by the cache of verified tokens.
    group.bench_function("verify_cached", |b| {
        b.iter(|| tokens.verify(black_box(&token)).expect("verify"))
    });
    // A token never seen: the signature check, the claims, and the cache's insert. Each
    // iteration verifies a token issued for it, outside the timing.
    group.bench_function("verify_uncached", |b| {
        b.iter_batched(
            || tokens.issue(grant).expect("issue").token,
            |token| tokens.verify(black_box(&token)).expect("verify"),
            BatchSize::SmallInput,
        )
    });
    group
}

fn bench_tokens(c: &mut Criterion) {
    let es256 = es256_settings();
    let tokens = access_tokens(&es256);
    let mut group = token_group(c, "es256", &tokens);
    // The signature check alone: jsonwebtoken's decode with the same key and a plain validation
    // (audience, issuer, expiry), into an untyped claims map.
    let token = tokens.issue(grant()).expect("issue").token;
    let kid = jsonwebtoken::decode_header(&token).expect("header").kid;
    let key = tokens
        .keys()
        .verifying_key(kid.as_deref())
        .expect("key of the token's kid");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    validation.set_audience(&[AUDIENCE]);
    validation.set_issuer(&[ISSUER]);
    group.bench_function("jwt_decode_only", |b| {
        b.iter(|| {
            jsonwebtoken::decode::<serde_json::Value>(black_box(&token), key, &validation)
                .expect("decode")
        })
    });
    group.finish();

    let hs256 = hs256_settings();
    token_group(c, "hs256", &access_tokens(&hs256)).finish();
}

// ---------------------------------------------------------------------------------------------
// Password hashing
// ---------------------------------------------------------------------------------------------

const PASSWORD: &[u8] = b"correct horse battery staple";
const SALT: &[u8] = b"sixteen byte salt";

fn argon2id(m_kib: u32, t: u32, p: u32) -> Argon2<'static> {
    Argon2::new(
        Algorithm::Argon2id,
        Version::V0x13,
        Params::new(m_kib, t, p, None).expect("valid argon2 parameters"),
    )
}

/// Hash (with a fresh salt, into a PHC string, as signup does) and verify (of the right
/// password against a stored PHC string, as login does), in `password/argon2id/<name>`.
/// Returns the group so callers can add to it.
fn argon2_group<'a>(
    c: &'a mut Criterion,
    name: &str,
    argon2: &Argon2<'static>,
) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(format!("password/argon2id/{name}"));
    // Each iteration takes tens to hundreds of milliseconds: few samples of one iteration each.
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function("hash", |b| {
        b.iter(|| {
            argon2
                .hash_password(black_box(PASSWORD))
                .expect("hash")
                .to_string()
        })
    });
    let stored = argon2.hash_password(PASSWORD).expect("hash").to_string();
    group.bench_function("verify", |b| {
        b.iter(|| {
            // Parsing is part of the real cost: the service stores PHC strings.
            let parsed = PasswordHash::new(black_box(&stored)).expect("PHC string");
            argon2
                .verify_password(black_box(PASSWORD), &parsed)
                .expect("the right password verifies")
        })
    });
    group
}

fn bench_passwords(c: &mut Criterion) {
    argon2_group(c, "default", &argon2id(19_456, 2, 1)).finish();

    let (m, t, p) = (65_536, 3, 4);
    let peer = argon2id(m, t, p);
    let mut group = argon2_group(c, "peer", &peer);
    let mut out = [0u8; 32];
    group.bench_function("hash_into_fresh_buffer", |b| {
        b.iter(|| {
            peer.hash_password_into(black_box(PASSWORD), SALT, &mut out)
                .expect("hash");
            out
        })
    });
    let params = Params::new(m, t, p, None).expect("valid argon2 parameters");
    let mut blocks = vec![Block::default(); params.block_count()];
    group.bench_function("hash_into_reused_buffer", |b| {
        b.iter(|| {
            peer.hash_password_into_with_memory(black_box(PASSWORD), SALT, &mut out, &mut blocks)
                .expect("hash");
            out
        })
    });
    // What the whole machine can hash: one reused-buffer hash on every core at once (they
    // share memory bandwidth). An iteration is `cores` hashes; divide to get the rate.
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut buffers: Vec<Vec<Block>> = (0..cores)
        .map(|_| vec![Block::default(); params.block_count()])
        .collect();
    group.bench_function(format!("hash_on_all_{cores}_cores"), |b| {
        b.iter(|| {
            std::thread::scope(|scope| {
                for blocks in buffers.iter_mut() {
                    let peer = &peer;
                    scope.spawn(move || {
                        let mut out = [0u8; 32];
                        peer.hash_password_into_with_memory(PASSWORD, SALT, &mut out, blocks)
                            .expect("hash");
                    });
                }
            })
        })
    });
    group.finish();
}

// ---------------------------------------------------------------------------------------------
// Database
// ---------------------------------------------------------------------------------------------

const USERS: usize = 10_000;
/// The refresh-token lifetime and reuse grace the service defaults to.
const REFRESH_TTL_SECS: i64 = 10 * 60 * 60;
const REFRESH_GRACE_SECS: i64 = 10;
/// A stored hash of realistic length; lookups never check it.
const STORED_HASH: &str = "$argon2id$v=19$m=19456,t=2,p=1$c2l4dGVlbiBieXRlIHNhbHQ$\
                           SGVyZSBhIGhhc2ggb2YgdGhpcnR5LXR3byBieXRlcyBzaXRzLg";

/// A deterministic pseudo-random index generator (splitmix64): cheap enough not to show in a
/// lookup's time, and needs no extra dependency.
struct Picker(u64);

impl Picker {
    fn below(&mut self, n: usize) -> usize {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z % n as u64) as usize
    }
}

/// Fills the database with `USERS` users, each with one live session; returns their ids.
/// The users go in one transaction; each session in its own (`sessions::create` opens one).
fn populate(conn: &mut Conn) -> Vec<(UserId, Uuid)> {
    let user_ids = db::write_transaction(conn, |conn| {
        (0..USERS)
            .map(|i| {
                let email = Email::parse(&format!("user{i}@example.com")).expect("valid email");
                let new = users::NewUser {
                    email: &email,
                    password_hash: STORED_HASH,
                    is_superuser: false,
                };
                users::insert(conn, new).map(|user| user.id)
            })
            .collect::<Result<Vec<_>, _>>()
    })
    .expect("insert users");
    user_ids
        .into_iter()
        .map(|user_id| {
            let new = NewSession {
                user_id,
                refresh_token_hash: refresh::hash(&refresh::random_token()),
                ttl_secs: REFRESH_TTL_SECS,
                user_agent: Some("bench".into()),
                ip_address: None,
                methods: AuthMethods::PASSWORD,
                app: None,
            };
            (
                user_id,
                sessions::create(conn, new).expect("create session"),
            )
        })
        .collect()
}

fn bench_database(c: &mut Criterion) {
    let dir = tempfile::tempdir().expect("temporary directory");
    let path = dir.path().join("bench.db");
    let settings = db::PoolSettings {
        size: 1,
        timeout: Duration::from_secs(10),
    };
    let pool = db::connect(
        path.to_str().expect("UTF-8 path"),
        settings,
        db::Creation::Allowed,
    )
    .expect("connect");
    db::migrate(&pool).expect("migrate");
    let mut conn = pool.get().expect("connection");
    let conn: &mut Conn = &mut conn;
    let started = std::time::Instant::now();
    let ids = populate(conn);
    eprintln!(
        "db: {USERS} users with a session each, inserted in {:.1?}",
        started.elapsed()
    );

    let mut group = c.benchmark_group("db");
    let mut pick = Picker(1);
    group.bench_function("find_user_for_access", |b| {
        b.iter(|| {
            let (user_id, session_id) = ids[pick.below(ids.len())];
            let user =
                sessions::find_user_for_access(conn, user_id, session_id, Some(0)).expect("query");
            assert!(user.is_some());
            user
        })
    });
    group.bench_function("users/find_by_id", |b| {
        b.iter(|| {
            let (user_id, _) = ids[pick.below(ids.len())];
            let user = users::find_by_id(conn, user_id).expect("query");
            assert!(user.is_some());
            user
        })
    });

    // One session whose refresh token is rotated again and again: `current` is always the
    // token most recently handed out, so every rotation finds a current token and moves on.
    let chain = RefreshTokens::new([7; 32]);
    let mut current = chain.generate();
    sessions::create(
        conn,
        NewSession {
            user_id: ids[0].0,
            refresh_token_hash: refresh::hash(&current),
            ttl_secs: REFRESH_TTL_SECS,
            user_agent: Some("bench".into()),
            ip_address: None,
            methods: AuthMethods::PASSWORD,
            app: None,
        },
    )
    .expect("create session");
    group.bench_function("sessions/rotate", |b| {
        b.iter(|| {
            let successor = chain.successor(&current);
            let request = RotationRequest {
                presented_hash: refresh::hash(&current),
                child_hash: refresh::hash(&successor),
                ttl_secs: REFRESH_TTL_SECS,
                grace_secs: REFRESH_GRACE_SECS,
                max_lifetime_secs: i64::MAX,
                client: None,
            };
            let outcome = sessions::rotate(conn, request).expect("rotate");
            assert!(matches!(outcome, Rotation::Rotated { .. }), "{outcome:?}");
            current = successor;
        })
    });
    group.finish();

    // The non-database part of a refresh, for scale.
    let mut group = c.benchmark_group("refresh");
    let token = chain.generate();
    group.bench_function("successor_and_hashes", |b| {
        b.iter(|| {
            let successor = chain.successor(black_box(&token));
            (refresh::hash(&token), refresh::hash(&successor))
        })
    });
    group.finish();
}

criterion_group!(benches, bench_tokens, bench_passwords, bench_database);
criterion_main!(benches);
