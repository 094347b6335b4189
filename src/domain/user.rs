use std::fmt;
use std::str::FromStr;

use serde::Serialize;
use uuid::Uuid;

/// A user's identifier: a random (v4) UUID.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct UserId(Uuid);

impl UserId {
    pub fn new() -> UserId {
        UserId(Uuid::new_v4())
    }

    pub fn from_uuid(uuid: Uuid) -> UserId {
        UserId(uuid)
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }
}

impl Default for UserId {
    fn default() -> Self {
        UserId::new()
    }
}

impl FromStr for UserId {
    type Err = uuid::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(UserId)
    }
}

impl fmt::Display for UserId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

/// A stored user, as the rest of the service sees it.
#[derive(Debug, Clone)]
pub struct User {
    pub id: UserId,
    pub email: String,
    /// The argon2id PHC string; never serialized.
    pub password_hash: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_verified: bool,
    /// When the account was created, in seconds since the Unix epoch.
    pub created_at: i64,
    /// When it last signed in (a login that started a session); `None` if never since that
    /// was recorded.
    pub last_login_at: Option<i64>,
}

/// The public view of a user (fastapi-users' `UserRead`).
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct UserRead {
    #[schema(value_type = uuid::Uuid)]
    pub id: UserId,
    pub email: String,
    pub is_active: bool,
    pub is_superuser: bool,
    pub is_verified: bool,
}

impl From<&User> for UserRead {
    fn from(user: &User) -> Self {
        UserRead {
            id: user.id,
            email: user.email.clone(),
            is_active: user.is_active,
            is_superuser: user.is_superuser,
            is_verified: user.is_verified,
        }
    }
}

impl From<User> for UserRead {
    fn from(user: User) -> Self {
        UserRead::from(&user)
    }
}

/// Which accounts a superuser's list shows, and in which order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserFilter {
    /// Part of the address, in any letter case; empty for every account.
    pub search: String,
    pub is_active: Option<bool>,
    pub is_verified: Option<bool>,
    pub is_superuser: Option<bool>,
    pub sort: UserSort,
    pub descending: bool,
}

/// The column a list of accounts is sorted by.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum UserSort {
    Email,
    #[default]
    Created,
    /// Accounts that never signed in come last, whichever the direction.
    LastSignIn,
}

impl UserSort {
    pub const ALL: [UserSort; 3] = [UserSort::Email, UserSort::Created, UserSort::LastSignIn];

    /// Its name in a query string.
    pub fn as_str(self) -> &'static str {
        match self {
            UserSort::Email => "email",
            UserSort::Created => "created",
            UserSort::LastSignIn => "last_sign_in",
        }
    }

    pub fn parse(raw: &str) -> Option<UserSort> {
        UserSort::ALL.into_iter().find(|sort| sort.as_str() == raw)
    }
}

/// A session that has neither ended nor expired, as its owner sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LiveSession {
    pub id: String,
    pub created_at: i64,
    pub last_used_at: i64,
    pub user_agent: Option<String>,
    /// The client address it started from; `None` for sessions older than that record.
    pub ip_address: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::UserSort;

    #[test]
    fn a_sort_is_named_in_a_query_string_as_it_parses() {
        for sort in UserSort::ALL {
            assert_eq!(UserSort::parse(sort.as_str()), Some(sort));
        }
        for unknown in ["", "Email", "created_at", "hashed_password", "last sign in"] {
            assert_eq!(UserSort::parse(unknown), None, "{unknown}");
        }
        assert_eq!(
            UserSort::default(),
            UserSort::Created,
            "newest first by default"
        );
    }
}
