//! Security events, as the audit log records them.

use std::fmt;

use super::{Client, User};

/// A security event worth keeping a record of.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuditEvent {
    Signup,
    LoginSucceeded,
    LoginFailed,
    Logout,
    RefreshReuseDetected,
    PasswordChanged,
    PasswordReset,
    EmailChanged,
    /// A link to confirm a new address was sent there; nothing changed yet.
    EmailChangeRequested,
    EmailVerified,
    UserPromoted,
    UserDemoted,
    UserActivated,
    UserDeactivated,
    UserDeleted,
    ClientCreated,
    ClientDeleted,
    ClientUpdated,
    SessionEnded,
    MfaEnabled,
    MfaDisabled,
    RecoveryCodesRenewed,
    PasskeyAdded,
    PasskeyRenamed,
    PasskeyRemoved,
    MfaReset,
    ConsentGiven,
    ConsentRemoved,
    AuthorizationCodeReplayed,
    /// Accounts brought over from another system (`gatehouse import`): one event per account,
    /// and one for the run.
    Imported,
    /// A superuser made an account with a password.
    UserCreated,
    /// A superuser made an account and emailed it a link to set its password.
    UserInvited,
    InvitationAccepted,
}

impl AuditEvent {
    pub const ALL: [AuditEvent; 33] = [
        AuditEvent::Signup,
        AuditEvent::LoginSucceeded,
        AuditEvent::LoginFailed,
        AuditEvent::Logout,
        AuditEvent::RefreshReuseDetected,
        AuditEvent::PasswordChanged,
        AuditEvent::PasswordReset,
        AuditEvent::EmailChanged,
        AuditEvent::EmailChangeRequested,
        AuditEvent::EmailVerified,
        AuditEvent::UserPromoted,
        AuditEvent::UserDemoted,
        AuditEvent::UserActivated,
        AuditEvent::UserDeactivated,
        AuditEvent::UserDeleted,
        AuditEvent::ClientCreated,
        AuditEvent::ClientDeleted,
        AuditEvent::ClientUpdated,
        AuditEvent::SessionEnded,
        AuditEvent::MfaEnabled,
        AuditEvent::MfaDisabled,
        AuditEvent::RecoveryCodesRenewed,
        AuditEvent::PasskeyAdded,
        AuditEvent::PasskeyRenamed,
        AuditEvent::PasskeyRemoved,
        AuditEvent::MfaReset,
        AuditEvent::ConsentGiven,
        AuditEvent::ConsentRemoved,
        AuditEvent::AuthorizationCodeReplayed,
        AuditEvent::Imported,
        AuditEvent::UserCreated,
        AuditEvent::UserInvited,
        AuditEvent::InvitationAccepted,
    ];

    /// The stored and published name, e.g. `login_failed`.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::Signup => "signup",
            AuditEvent::LoginSucceeded => "login_succeeded",
            AuditEvent::LoginFailed => "login_failed",
            AuditEvent::Logout => "logout",
            AuditEvent::RefreshReuseDetected => "refresh_reuse_detected",
            AuditEvent::PasswordChanged => "password_changed",
            AuditEvent::PasswordReset => "password_reset",
            AuditEvent::EmailChanged => "email_changed",
            AuditEvent::EmailChangeRequested => "email_change_requested",
            AuditEvent::EmailVerified => "email_verified",
            AuditEvent::UserPromoted => "user_promoted",
            AuditEvent::UserDemoted => "user_demoted",
            AuditEvent::UserActivated => "user_activated",
            AuditEvent::UserDeactivated => "user_deactivated",
            AuditEvent::UserDeleted => "user_deleted",
            AuditEvent::ClientCreated => "client_created",
            AuditEvent::ClientDeleted => "client_deleted",
            AuditEvent::ClientUpdated => "client_updated",
            AuditEvent::SessionEnded => "session_ended",
            AuditEvent::MfaEnabled => "mfa_enabled",
            AuditEvent::MfaDisabled => "mfa_disabled",
            AuditEvent::RecoveryCodesRenewed => "recovery_codes_renewed",
            AuditEvent::PasskeyAdded => "passkey_added",
            AuditEvent::PasskeyRenamed => "passkey_renamed",
            AuditEvent::PasskeyRemoved => "passkey_removed",
            AuditEvent::MfaReset => "mfa_reset",
            AuditEvent::ConsentGiven => "consent_given",
            AuditEvent::ConsentRemoved => "consent_removed",
            AuditEvent::AuthorizationCodeReplayed => "authorization_code_replayed",
            AuditEvent::Imported => "imported",
            AuditEvent::UserCreated => "user_created",
            AuditEvent::UserInvited => "user_invited",
            AuditEvent::InvitationAccepted => "invitation_accepted",
        }
    }

    pub fn parse(name: &str) -> Option<AuditEvent> {
        AuditEvent::ALL
            .into_iter()
            .find(|event| event.as_str() == name)
    }

    /// A short label for people.
    pub fn label(self) -> &'static str {
        match self {
            AuditEvent::Signup => "Signed up",
            AuditEvent::LoginSucceeded => "Logged in",
            AuditEvent::LoginFailed => "Failed login",
            AuditEvent::Logout => "Logged out",
            AuditEvent::RefreshReuseDetected => "Refresh token reused",
            AuditEvent::PasswordChanged => "Password changed",
            AuditEvent::PasswordReset => "Password reset",
            AuditEvent::EmailChanged => "Email changed",
            AuditEvent::EmailChangeRequested => "Email change requested",
            AuditEvent::EmailVerified => "Email verified",
            AuditEvent::UserPromoted => "Promoted",
            AuditEvent::UserDemoted => "Demoted",
            AuditEvent::UserActivated => "Activated",
            AuditEvent::UserDeactivated => "Deactivated",
            AuditEvent::UserDeleted => "Deleted",
            AuditEvent::ClientCreated => "Client created",
            AuditEvent::ClientDeleted => "Client deleted",
            AuditEvent::ClientUpdated => "Client changed",
            AuditEvent::SessionEnded => "Session ended",
            AuditEvent::MfaEnabled => "Two-factor turned on",
            AuditEvent::MfaDisabled => "Two-factor turned off",
            AuditEvent::RecoveryCodesRenewed => "Recovery codes renewed",
            AuditEvent::PasskeyAdded => "Passkey added",
            AuditEvent::PasskeyRenamed => "Passkey renamed",
            AuditEvent::PasskeyRemoved => "Passkey removed",
            AuditEvent::MfaReset => "Two-factor reset",
            AuditEvent::ConsentGiven => "App allowed",
            AuditEvent::ConsentRemoved => "App access removed",
            AuditEvent::AuthorizationCodeReplayed => "Authorization code replayed",
            AuditEvent::Imported => "Imported",
            AuditEvent::UserCreated => "Created by a superuser",
            AuditEvent::UserInvited => "Invited",
            AuditEvent::InvitationAccepted => "Invitation accepted",
        }
    }
}

impl fmt::Display for AuditEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who did something, or whom it was done to: a user or a machine client, named as it was at
/// the time (the record outlives the account).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Party {
    pub id: String,
    pub label: String,
}

impl From<&User> for Party {
    fn from(user: &User) -> Party {
        Party {
            id: user.id.to_string(),
            label: user.email.clone(),
        }
    }
}

impl From<&Client> for Party {
    fn from(client: &Client) -> Party {
        Party {
            id: client.id.to_string(),
            label: client.name.clone(),
        }
    }
}

/// A recorded event, as read back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditRecord {
    pub id: String,
    /// Seconds since the Unix epoch.
    pub occurred_at: i64,
    pub event: String,
    pub actor: Option<Party>,
    pub subject: Option<Party>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub detail: Option<String>,
}

/// Which events to list; every set field must match.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub event: Option<AuditEvent>,
    /// Matches the actor or the subject by exact id, or any part of an email, a client name or
    /// the detail, in any letter case.
    pub party: Option<String>,
    pub ip: Option<String>,
    /// Seconds since the Unix epoch, inclusive.
    pub since: Option<i64>,
    pub until: Option<i64>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_parses_back_from_its_name() {
        for event in AuditEvent::ALL {
            assert_eq!(AuditEvent::parse(event.as_str()), Some(event));
        }
        assert_eq!(AuditEvent::parse("LOGIN_FAILED"), None);
    }
}
