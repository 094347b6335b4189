//! The second step a login owes when the account has a second factor: which factors can
//! complete it, and its token. `sessions::login` opens it; `mfa::complete_login` completes it.

use crate::auth::mfa;
use crate::db;
use crate::db::factors::{self, FactorCounts};
use crate::domain::{SecondFactor, User, UserId};
use crate::state::AppState;

use super::ServiceError;

/// How long the token of a login's second step lives.
pub const STEP_TOKEN_TTL_SECS: i64 = 5 * 60;

/// The second step a login owes: its token, and the factors the account can complete it with.
#[derive(Debug, Clone)]
pub struct SecondStep {
    pub mfa_token: String,
    pub methods: Vec<SecondFactor>,
}

/// The factors a login by this user must be completed with; empty if a password is enough.
pub async fn second_factors(
    state: &AppState,
    user_id: UserId,
) -> Result<Vec<SecondFactor>, ServiceError> {
    let counts = db::run(&state.pool, move |conn| factors::counts(conn, user_id)).await?;
    Ok(methods_of(&counts))
}

fn methods_of(counts: &FactorCounts) -> Vec<SecondFactor> {
    if !counts.any() {
        return Vec::new();
    }
    let mut methods = Vec::new();
    if counts.totp {
        methods.push(SecondFactor::Totp);
    }
    if counts.recovery_codes_left > 0 {
        methods.push(SecondFactor::RecoveryCode);
    }
    if counts.passkeys > 0 {
        methods.push(SecondFactor::Passkey);
    }
    methods
}

/// Opens a login's second step for a user whose password was right.
pub async fn open(
    state: &AppState,
    user: &User,
    methods: Vec<SecondFactor>,
) -> Result<SecondStep, ServiceError> {
    let token = mfa::new_step_token();
    let hash = mfa::step_token_hash(&token);
    let user_id = user.id;
    db::write(&state.pool, move |conn| {
        factors::create_challenge(conn, &hash, user_id, STEP_TOKEN_TTL_SECS)
    })
    .await?;
    log::info!(
        "password accepted for {}; a second factor is owed",
        user.email
    );
    Ok(SecondStep {
        mfa_token: token,
        methods,
    })
}
