//! `/admin/users/new` and `/invitation`: a superuser adds an account with a password, or
//! invites its address to choose one; the invitation's link works once, and not after it
//! expires.

use crate::helpers::*;
use crate::page_client::*;

const ADMIN: &str = "admin@example.com";
const NEWCOMER: &str = "newcomer@example.com";
const NEW_PAGE: &str = "/admin/users/new";
const INVITATION_SUBJECT: &str = "Your Gatehouse invitation";
const CHOSEN: &str = "a password chosen for you";

async fn admin_app() -> (TestApp, PageClient) {
    let app = spawn_mail_app_with(&[("COOKIE_SECURE", "false")]).await;
    let admin = PageClient::superuser(&app, ADMIN).await;
    (app, admin)
}

/// A form's fields, as posted.
type Fields<'a> = &'a [(&'a str, &'a str)];

async fn add_user(admin: &PageClient, fields: &[(&str, &str)]) -> reqwest::Response {
    let token = admin.csrf_token(NEW_PAGE).await;
    admin.post_form(NEW_PAGE, &with_token(fields, &token)).await
}

fn audit_count(app: &TestApp, event: &str) -> i64 {
    app.count(&format!(
        "SELECT id FROM audit_events WHERE event = '{event}'"
    ))
}

/// Opens the invitation link and sets `password` through its form.
async fn accept(browser: &PageClient, token: &str, password: &str) -> reqwest::Response {
    let html = browser.page(&format!("/invitation?token={token}")).await;
    assert!(html.contains("Choose your password") || html.contains("Welcome to Gatehouse"));
    let fields = [
        ("token", token),
        ("new_password", password),
        ("new_password_confirm", password),
        ("csrf_token", &csrf_in(&html)),
    ];
    browser.post_form("/invitation", &fields).await
}

#[tokio::test]
async fn a_superuser_adds_a_user_with_a_password() {
    let (app, admin) = admin_app().await;
    assert!(admin
        .page("/admin/users")
        .await
        .contains("href=\"/admin/users/new\""));
    let html = admin.page(NEW_PAGE).await;
    assert!(html.contains("id=\"new-user-form\""), "{html}");

    let response = add_user(
        &admin,
        &[
            ("email", NEWCOMER),
            ("first_password", "password"),
            ("password", CHOSEN),
        ],
    )
    .await;

    assert_eq!(response.status(), 303);
    let row = app.user_row(NEWCOMER).expect("the account exists");
    assert_eq!(location(&response), format!("/admin/users/{}", row.id));
    assert!(row.is_active && !row.is_superuser && !row.is_verified);
    assert_eq!(app.login(NEWCOMER, CHOSEN).await.status(), 200);
    assert_eq!(audit_count(&app, "user_created"), 1);
    let actor: i64 = app.count(&format!(
        "SELECT id FROM audit_events WHERE event = 'user_created' AND actor_id = '{}' \
         AND subject_id = '{}'",
        app.user_id(ADMIN),
        row.id
    ));
    assert_eq!(
        actor, 1,
        "the superuser is the actor, the new account the subject"
    );
    app.assert_no_email_to(NEWCOMER).await;
}

#[tokio::test]
async fn an_invitation_sets_the_first_password_once_and_verifies_the_address() {
    let (app, admin) = admin_app().await;

    let response = add_user(
        &admin,
        &[
            ("email", NEWCOMER),
            ("first_password", "invite"),
            ("superuser", "on"),
        ],
    )
    .await;

    assert_eq!(response.status(), 303);
    let row = app.user_row(NEWCOMER).expect("the invited account exists");
    assert!(row.is_superuser && !row.is_verified);
    assert_eq!(audit_count(&app, "user_invited"), 1);
    let email = app.wait_for_email(NEWCOMER, 1).await;
    assert_eq!(email.header("subject"), Some(INVITATION_SUBJECT));
    assert_eq!(email.link_base, format!("{PUBLIC_URL}/invitation"));
    assert!(email.text.contains(ADMIN), "{}", email.text);
    assert!(email.text.contains("7 days"), "{}", email.text);
    // Nothing signs in to the account before the link is used.
    assert_eq!(app.login(NEWCOMER, PASSWORD).await.status(), 400);
    assert_eq!(app.login(NEWCOMER, &email.token).await.status(), 400);

    let invitee = PageClient::new(&app);
    let response = accept(&invitee, &email.token, PASSWORD).await;

    assert_eq!(response.status(), 303);
    assert_eq!(location(&response), "/login");
    let row = app.user_row(NEWCOMER).unwrap();
    assert!(row.is_verified, "opening the link proves the address");
    assert_eq!(app.login(NEWCOMER, PASSWORD).await.status(), 200);
    assert_eq!(audit_count(&app, "invitation_accepted"), 1);
    // Used once: the link's page now says it is dead, and its form changes nothing.
    let again = invitee
        .get(&format!("/invitation?token={}", email.token))
        .await;
    assert_eq!(again.status(), 400);
    assert!(again
        .text()
        .await
        .unwrap()
        .contains("This link doesn’t work"));
    let fields = [
        ("token", email.token.as_str()),
        ("new_password", "another long passphrase"),
        ("new_password_confirm", "another long passphrase"),
    ];
    assert_eq!(invitee.submit("/invitation", &fields).await.status(), 400);
    assert_eq!(app.login(NEWCOMER, PASSWORD).await.status(), 200);
}

#[tokio::test]
async fn an_expired_invitation_says_so_when_opened() {
    let (app, admin) = admin_app().await;
    add_user(&admin, &[("email", NEWCOMER), ("first_password", "invite")]).await;
    let email = app.wait_for_email(NEWCOMER, 1).await;
    app.execute("UPDATE email_tokens SET expires_at = 0 WHERE purpose = 'invite'");

    let response = PageClient::new(&app)
        .get(&format!("/invitation?token={}", email.token))
        .await;

    assert_eq!(response.status(), 400);
    let html = response.text().await.unwrap();
    assert!(html.contains("This invitation link is invalid, has expired or has already been used."));
    assert!(
        html.contains("href=\"/forgot-password\""),
        "a way to a new link"
    );
}

#[tokio::test]
async fn a_weak_password_on_the_invitation_is_refused_and_the_link_still_works() {
    let (app, admin) = admin_app().await;
    add_user(&admin, &[("email", NEWCOMER), ("first_password", "invite")]).await;
    let email = app.wait_for_email(NEWCOMER, 1).await;
    let invitee = PageClient::new(&app);

    let response = accept(&invitee, &email.token, "password").await;

    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("<title>Error: "), "{html}");
    assert!(html.contains("id=\"error-summary\""));
    assert_eq!(accept(&invitee, &email.token, PASSWORD).await.status(), 303);
}

#[tokio::test]
async fn the_form_reports_every_problem_and_adds_nobody() {
    let (app, admin) = admin_app().await;
    app.register("taken@example.com", PASSWORD).await;
    let before = app.user_count();

    let cases: [(Fields, &str, &[&str]); 4] = [
        (
            &[
                ("email", ""),
                ("first_password", "password"),
                ("password", ""),
            ],
            "both fields",
            &[
                "Enter an email address",
                "Enter a password, or send an invitation instead",
            ],
        ),
        (
            &[("email", "not an address"), ("first_password", "invite")],
            "a bad address",
            &["Enter a valid email address, like name@example.com"],
        ),
        (
            &[("email", "Taken@Example.com"), ("first_password", "invite")],
            "a taken address",
            &["An account with this email address already exists"],
        ),
        (
            &[
                ("email", NEWCOMER),
                ("first_password", "password"),
                ("password", "password"),
            ],
            "a common password",
            &["common"],
        ),
    ];
    for (fields, what, messages) in cases {
        let response = add_user(&admin, fields).await;
        assert_eq!(response.status(), 422, "{what}");
        let html = response.text().await.unwrap();
        assert!(html.contains("<title>Error: Add a user"), "{what}");
        for message in messages {
            assert!(html.contains(message), "{what}: {message} in {html}");
        }
    }
    assert_eq!(app.user_count(), before);
    app.assert_no_email_to("taken@example.com").await;
    assert_eq!(
        audit_count(&app, "user_created") + audit_count(&app, "user_invited"),
        0
    );
}

#[tokio::test]
async fn members_cannot_add_users_and_forms_need_their_token() {
    let (app, admin) = admin_app().await;
    let member = PageClient::user(&app, "member@example.com").await;
    let before = app.user_count();

    assert_eq!(member.get(NEW_PAGE).await.status(), 403);
    let fields = [("email", NEWCOMER), ("first_password", "invite")];
    assert_eq!(member.submit(NEW_PAGE, &fields).await.status(), 403);
    assert_csrf_page(admin.post_form(NEW_PAGE, &fields).await).await;

    assert_eq!(app.user_count(), before);
    app.assert_no_email_to(NEWCOMER).await;
}
