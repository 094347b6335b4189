//! The messages Gatehouse sends, each a plain-text and an HTML body from askama templates,
//! composed into the text that goes into the outbox.

use askama::Template;
use lettre::message::MultiPart;
use lettre::Message;

use super::{recipient, MailError, Mailer};
use crate::db::outbox::NewMessage;

/// A message ready for the outbox: whom it goes to, its subject, and the whole message as it
/// goes on the wire (RFC 5322, with a plain-text and an HTML part).
#[derive(Debug, Clone)]
pub struct Composed {
    pub recipient: String,
    pub subject: String,
    pub message: String,
}

impl Composed {
    /// The outbox row that queues it.
    pub fn row(&self) -> NewMessage<'_> {
        NewMessage {
            recipient: &self.recipient,
            subject: &self.subject,
            message: &self.message,
        }
    }
}

#[derive(Template)]
#[template(path = "email/reset_password.txt")]
struct ResetText<'a> {
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "email/reset_password.html")]
struct ResetHtml<'a> {
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "email/verify_email.txt")]
struct VerifyText<'a> {
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "email/verify_email.html")]
struct VerifyHtml<'a> {
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "email/email_changed.txt")]
struct EmailChangedText<'a> {
    new_address: &'a str,
    when: &'a str,
    from: &'a str,
    by_administrator: bool,
    forgot_password_link: &'a str,
}

#[derive(Template)]
#[template(path = "email/email_changed.html")]
struct EmailChangedHtml<'a> {
    new_address: &'a str,
    when: &'a str,
    from: &'a str,
    by_administrator: bool,
    forgot_password_link: &'a str,
}

/// What the notice of an address change tells the old address.
#[derive(Debug, Clone, Copy)]
pub struct EmailChange<'a> {
    pub new_address: &'a str,
    /// When, for people (`2026-12-02 14:03 UTC`).
    pub when: &'a str,
    /// The client's network address, or empty when unknown.
    pub from: &'a str,
    /// Made by a superuser rather than the account's owner.
    pub by_administrator: bool,
    /// `{public_url}/forgot-password`.
    pub forgot_password_link: &'a str,
}

/// "Your email address was changed", to the old address: to what, when, from where, and
/// how to get the account back if it was not the owner.
pub fn email_changed(
    mailer: &Mailer,
    to: &str,
    change: &EmailChange<'_>,
) -> Result<Composed, MailError> {
    let EmailChange {
        new_address,
        when,
        from,
        by_administrator,
        forgot_password_link,
    } = *change;
    let text = EmailChangedText {
        new_address,
        when,
        from,
        by_administrator,
        forgot_password_link,
    };
    let html = EmailChangedHtml {
        new_address,
        when,
        from,
        by_administrator,
        forgot_password_link,
    };
    build(
        mailer,
        to,
        "Your Gatehouse email address was changed",
        &text,
        &html,
    )
}

#[derive(Template)]
#[template(path = "email/factors_changed.txt")]
struct FactorsChangedText<'a> {
    what: &'a str,
    when: &'a str,
    from: &'a str,
    by_administrator: bool,
    security_link: &'a str,
    forgot_password_link: &'a str,
}

#[derive(Template)]
#[template(path = "email/factors_changed.html")]
struct FactorsChangedHtml<'a> {
    what: &'a str,
    when: &'a str,
    from: &'a str,
    by_administrator: bool,
    security_link: &'a str,
    forgot_password_link: &'a str,
}

/// A change to how an account signs in (a second factor added or removed, recovery codes
/// renewed), as a notice to its owner. Never carries a secret or a code.
#[derive(Debug, Clone, Copy)]
pub struct FactorsChange<'a> {
    /// What happened, as a sentence's start: "An authenticator app was added to your account".
    pub what: &'a str,
    pub when: &'a str,
    pub from: &'a str,
    pub by_administrator: bool,
    /// `{public_url}/account/security`.
    pub security_link: &'a str,
    /// `{public_url}/forgot-password`.
    pub forgot_password_link: &'a str,
}

/// "How you sign in to Gatehouse changed", to the account's address.
pub fn factors_changed(
    mailer: &Mailer,
    to: &str,
    change: &FactorsChange<'_>,
) -> Result<Composed, MailError> {
    let FactorsChange {
        what,
        when,
        from,
        by_administrator,
        security_link,
        forgot_password_link,
    } = *change;
    let text = FactorsChangedText {
        what,
        when,
        from,
        by_administrator,
        security_link,
        forgot_password_link,
    };
    let html = FactorsChangedHtml {
        what,
        when,
        from,
        by_administrator,
        security_link,
        forgot_password_link,
    };
    build(
        mailer,
        to,
        "How you sign in to Gatehouse changed",
        &text,
        &html,
    )
}

/// "Reset your password", with the link `{public_url}/reset-password?token=…`.
pub fn password_reset(
    mailer: &Mailer,
    to: &str,
    link: &str,
    valid_for: &str,
) -> Result<Composed, MailError> {
    let text = ResetText { link, valid_for };
    let html = ResetHtml { link, valid_for };
    build(mailer, to, "Reset your Gatehouse password", &text, &html)
}

/// "Confirm your email address", with the link `{public_url}/verify?token=…`.
pub fn verification(
    mailer: &Mailer,
    to: &str,
    link: &str,
    valid_for: &str,
) -> Result<Composed, MailError> {
    let text = VerifyText { link, valid_for };
    let html = VerifyHtml { link, valid_for };
    build(mailer, to, "Confirm your email address", &text, &html)
}

#[derive(Template)]
#[template(path = "email/confirm_new_email.txt")]
struct ConfirmNewEmailText<'a> {
    old_address: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "email/confirm_new_email.html")]
struct ConfirmNewEmailHtml<'a> {
    old_address: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

/// "Confirm your new email address", to the new address, with the link
/// `{public_url}/account/email/confirm?token=…`.
pub fn email_change_confirmation(
    mailer: &Mailer,
    to: &str,
    old_address: &str,
    link: &str,
    valid_for: &str,
) -> Result<Composed, MailError> {
    let text = ConfirmNewEmailText {
        old_address,
        link,
        valid_for,
    };
    let html = ConfirmNewEmailHtml {
        old_address,
        link,
        valid_for,
    };
    build(mailer, to, "Confirm your new email address", &text, &html)
}

#[derive(Template)]
#[template(path = "email/invitation.txt")]
struct InvitationText<'a> {
    invited_by: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

#[derive(Template)]
#[template(path = "email/invitation.html")]
struct InvitationHtml<'a> {
    invited_by: &'a str,
    link: &'a str,
    valid_for: &'a str,
}

/// "Your Gatehouse invitation", with the link `{public_url}/invitation?token=…` that sets
/// the account's first password.
pub fn invitation(
    mailer: &Mailer,
    to: &str,
    invited_by: &str,
    link: &str,
    valid_for: &str,
) -> Result<Composed, MailError> {
    let text = InvitationText {
        invited_by,
        link,
        valid_for,
    };
    let html = InvitationHtml {
        invited_by,
        link,
        valid_for,
    };
    build(mailer, to, "Your Gatehouse invitation", &text, &html)
}

#[derive(Template)]
#[template(path = "email/new_sign_in.txt")]
struct NewSignInText<'a> {
    device: &'a str,
    when: &'a str,
    from: &'a str,
    account_link: &'a str,
    forgot_password_link: &'a str,
}

#[derive(Template)]
#[template(path = "email/new_sign_in.html")]
struct NewSignInHtml<'a> {
    device: &'a str,
    when: &'a str,
    from: &'a str,
    account_link: &'a str,
    forgot_password_link: &'a str,
}

/// What the notice of a sign-in from an unfamiliar device tells the account's owner.
#[derive(Debug, Clone, Copy)]
pub struct NewSignIn<'a> {
    /// The device as people name it: "Firefox on Linux".
    pub device: &'a str,
    pub when: &'a str,
    /// The client's network address, or empty when unknown.
    pub from: &'a str,
    /// `{public_url}/account`, where its sessions are listed.
    pub account_link: &'a str,
    /// `{public_url}/forgot-password`.
    pub forgot_password_link: &'a str,
}

/// "New sign-in to your Gatehouse account", to the account's address.
pub fn new_sign_in(
    mailer: &Mailer,
    to: &str,
    sign_in: &NewSignIn<'_>,
) -> Result<Composed, MailError> {
    let NewSignIn {
        device,
        when,
        from,
        account_link,
        forgot_password_link,
    } = *sign_in;
    let text = NewSignInText {
        device,
        when,
        from,
        account_link,
        forgot_password_link,
    };
    let html = NewSignInHtml {
        device,
        when,
        from,
        account_link,
        forgot_password_link,
    };
    build(
        mailer,
        to,
        "New sign-in to your Gatehouse account",
        &text,
        &html,
    )
}

fn build(
    mailer: &Mailer,
    to: &str,
    subject: &str,
    text: &impl Template,
    html: &impl Template,
) -> Result<Composed, MailError> {
    let render =
        |t: &dyn askama::DynTemplate| t.dyn_render().map_err(|e| MailError::Build(e.to_string()));
    let message = Message::builder()
        .from(mailer.from().clone())
        .to(recipient(to)?)
        .subject(subject)
        .multipart(MultiPart::alternative_plain_html(
            render(text)?,
            render(html)?,
        ))
        .map_err(|e| MailError::Build(e.to_string()))?;
    // Headers and bodies are encoded to 7-bit ASCII (RFC 2047, quoted-printable or base64).
    let message = String::from_utf8(message.formatted())
        .map_err(|_| MailError::Build("the message is not 7-bit text".to_owned()))?;
    Ok(Composed {
        recipient: to.to_owned(),
        subject: subject.to_owned(),
        message,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::EmailSettings;

    fn mailer() -> Mailer {
        let settings = EmailSettings {
            smtp_url: None,
            outbox_dir: "outbox".into(),
            from: "Gatehouse <noreply@example.com>".into(),
            require_verification: false,
            reset_token_ttl: std::time::Duration::from_secs(3600),
            verify_token_ttl: std::time::Duration::from_secs(3600),
            retry_delays: Vec::new(),
        };
        Mailer::new(&settings).unwrap()
    }

    #[test]
    fn a_reset_message_carries_the_link_in_both_bodies() {
        let link = "https://auth.example.com/reset-password?token=abc&x=<y>";
        let composed = password_reset(&mailer(), "ada@example.com", link, "1 hour").unwrap();
        assert_eq!(composed.recipient, "ada@example.com");
        assert_eq!(composed.subject, "Reset your Gatehouse password");
        let raw = composed.message;
        assert!(raw.contains("To: ada@example.com"), "{raw}");
        assert!(
            raw.contains("Subject: Reset your Gatehouse password"),
            "{raw}"
        );
        assert!(raw.contains("multipart/alternative"), "{raw}");
        assert!(
            raw.contains("text/plain") && raw.contains("text/html"),
            "{raw}"
        );
        // The text body keeps the link as it is (quoted-printable turns `=` into `=3D`); the
        // HTML body escapes it.
        assert!(raw.contains("?token=3Dabc&x=3D<y>"), "{raw}");
        assert!(raw.contains("&#60;y&#62;"), "{raw}");
    }

    #[test]
    fn an_address_change_notice_says_what_changed_and_how_to_recover() {
        let change = EmailChange {
            new_address: "mallory@evil.example",
            when: "2026-12-02 14:03 UTC",
            from: "203.0.113.7",
            by_administrator: false,
            forgot_password_link: "https://auth.example.com/forgot-password",
        };
        let message = email_changed(&mailer(), "ada@example.com", &change).unwrap();
        let raw = message.message;
        assert!(raw.contains("To: ada@example.com"), "{raw}");
        assert!(raw.contains("Subject: Your Gatehouse email address was changed"));
        for part in [
            "mallory@evil.example",
            "203.0.113.7",
            "administrator",
            "forgot-password",
        ] {
            assert!(raw.contains(part), "{part}: {raw}");
        }
    }

    #[test]
    fn a_recipient_that_is_no_mailbox_is_refused() {
        let err = verification(
            &mailer(),
            "not an address",
            "https://x/verify?token=t",
            "1 day",
        )
        .unwrap_err();
        assert!(matches!(err, MailError::Recipient(_)), "{err}");
    }
}
