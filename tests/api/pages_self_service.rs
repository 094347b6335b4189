//! Self-service on the account page: change the address through a link sent to the new one,
//! delete the account, download its data.

use crate::helpers::*;
use crate::page_client::*;

const EMAIL: &str = "reader@example.com";
const NEW_EMAIL: &str = "reader.new@example.org";

async fn mail_app() -> TestApp {
    spawn_mail_app_with(&[("COOKIE_SECURE", "false")]).await
}

async fn ask_for_email_change(
    browser: &PageClient,
    new_email: &str,
    password: &str,
) -> reqwest::Response {
    browser
        .submit(
            "/account/email",
            &[("new_email", new_email), ("email_password", password)],
        )
        .await
}

#[tokio::test]
async fn the_address_changes_only_through_the_link_sent_to_the_new_one() {
    let app = mail_app().await;
    let browser = PageClient::user(&app, EMAIL).await;
    let other_device = PageClient::logged_in(&app, EMAIL).await;

    let response = ask_for_email_change(&browser, NEW_EMAIL, PASSWORD).await;

    assert_see_other(&response, "/account");
    let flashes = browser.flashes_on("/account").await;
    assert!(flashes[0]
        .text
        .starts_with(&format!("Check your inbox at {NEW_EMAIL}")));
    assert!(app.user_row(EMAIL).is_some(), "nothing changed yet");
    let message = app.wait_for_email(NEW_EMAIL, 1).await;
    assert_eq!(
        message.link_base,
        format!("{PUBLIC_URL}/account/email/confirm")
    );
    assert!(
        message.text.contains(EMAIL),
        "names the account: {}",
        message.text
    );
    let link = format!("/account/email/confirm?token={}", message.token);

    // Opening the link changes nothing; its button does.
    let html = browser.page(&link).await;
    assert!(app.user_row(EMAIL).is_some(), "opening changes nothing");
    let fields = [
        ("token", message.token.as_str()),
        ("csrf_token", &csrf_in(&html)),
    ];
    let response = browser.post_form("/account/email/confirm", &fields).await;

    assert_see_other(&response, "/account");
    assert!(app.user_row(EMAIL).is_none());
    let row = app.user_row(NEW_EMAIL).expect("moved to the new address");
    assert!(!row.is_verified, "a new address is unverified");
    assert_eq!(browser.signed_in_as().await.as_deref(), Some(NEW_EMAIL));
    assert_eq!(
        other_device.signed_in_as().await,
        None,
        "other sessions end"
    );
    let notice = app.wait_for_email(EMAIL, 1).await;
    assert!(notice.text.contains(NEW_EMAIL), "{}", notice.text);

    // Spent: it says so when opened again.
    let again = browser.get(&link).await;
    assert_eq!(again.status(), 400);
    assert!(again.text().await.unwrap().contains("id=\"bad-link\""));
}

#[tokio::test]
async fn a_change_of_address_needs_the_password_and_a_free_valid_new_address() {
    let app = mail_app().await;
    app.register("taken@example.com", PASSWORD).await;
    let browser = PageClient::user(&app, EMAIL).await;
    let cases = [
        (
            NEW_EMAIL,
            "not my password",
            "email_password",
            "That is not your current password.",
        ),
        (
            NEW_EMAIL,
            "",
            "email_password",
            "Enter your current password",
        ),
        ("", PASSWORD, "new_email", "Enter an email address"),
        (
            "nope",
            PASSWORD,
            "new_email",
            "Enter a valid email address, like name@example.com",
        ),
        (
            EMAIL,
            PASSWORD,
            "new_email",
            "That is already your email address",
        ),
        (
            "taken@example.com",
            PASSWORD,
            "new_email",
            "Another account already uses this email address.",
        ),
    ];

    for (new_email, password, field, message) in cases {
        let response = ask_for_email_change(&browser, new_email, password).await;

        assert_eq!(response.status(), 422, "{new_email} {password}");
        let html = response.text().await.unwrap();
        assert_eq!(field_error(&html, field).as_deref(), Some(message));
        assert_eq!(title_of(&html), "Error: Your account · Gatehouse");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(app.emails_to(NEW_EMAIL).is_empty());
    assert!(app.user_row(EMAIL).is_some());
}

#[tokio::test]
async fn a_bad_confirmation_link_says_so_when_opened() {
    let app = mail_app().await;
    let browser = PageClient::new(&app);

    for path in [
        "/account/email/confirm",
        "/account/email/confirm?token=garbage",
    ] {
        let response = browser.get(path).await;
        assert_eq!(response.status(), 400, "{path}");
        assert!(response.text().await.unwrap().contains("id=\"bad-link\""));
    }
}

#[tokio::test]
async fn deleting_the_account_needs_the_password_and_signs_out() {
    let app = mail_app().await;
    let browser = PageClient::user(&app, EMAIL).await;

    let html = browser.page("/account").await;
    assert!(html.contains("action=\"/account/delete\""), "{html}");
    assert!(html.contains("This cannot be undone."), "a clear warning");

    let response = browser
        .submit("/account/delete", &[("delete_password", "wrong one")])
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert_eq!(
        field_error(&html, "delete_password").as_deref(),
        Some("That is not your current password.")
    );
    assert!(app.user_row(EMAIL).is_some());

    let response = browser
        .submit("/account/delete", &[("delete_password", PASSWORD)])
        .await;

    assert_see_other(&response, "/");
    assert!(set_cookie(&response, ACCESS).unwrap().is_cleared());
    assert!(app.user_row(EMAIL).is_none(), "deleted");
    assert_eq!(
        browser.flashes_on("/").await,
        [Flash::success("Your account has been deleted. Goodbye!")]
    );
    assert_eq!(browser.signed_in_as().await, None);
}

#[tokio::test]
async fn the_last_superuser_cannot_delete_their_account() {
    let app = mail_app().await;
    let browser = PageClient::superuser(&app, "admin@example.com").await;

    let response = browser
        .submit("/account/delete", &[("delete_password", PASSWORD)])
        .await;

    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(field_error(&html, "delete_password")
        .unwrap()
        .starts_with("You are the last superuser"));
    assert!(app.user_row("admin@example.com").is_some());
}

#[tokio::test]
async fn download_my_data_is_a_json_file_without_secrets() {
    let app = mail_app().await;
    let browser = PageClient::user(&app, EMAIL).await;
    login_from(&app, EMAIL, "curl/8.5").await;

    let response = browser.get("/account/data").await;

    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["content-disposition"],
        "attachment; filename=\"gatehouse-account.json\""
    );
    assert_eq!(response.headers()["cache-control"], "no-store");
    let body = response.text().await.unwrap();
    assert!(!body.contains("argon2"), "no password hash");
    let data: serde_json::Value = serde_json::from_str(&body).unwrap();
    assert_eq!(data["account"]["email"], EMAIL);
    assert_eq!(data["sessions"].as_array().unwrap().len(), 2);
    assert_eq!(data["factors"]["authenticator_app"], false);
    let events: Vec<&str> = data["audit_events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["event"].as_str().unwrap())
        .collect();
    assert!(events.contains(&"login_succeeded"), "{events:?}");
    assert!(events.contains(&"signup"), "{events:?}");

    let anonymous = PageClient::new(&app).get("/account/data").await;
    assert_eq!(anonymous.status(), 303);
}

#[tokio::test]
async fn every_id_on_the_account_page_is_unique() {
    let app = mail_app().await;
    let browser = PageClient::user(&app, EMAIL).await;
    login_from(&app, EMAIL, "curl/8.5").await;
    let failed = browser
        .submit(
            "/account/password",
            &[
                ("current_password", ""),
                ("new_password", ""),
                ("new_password_confirm", ""),
            ],
        )
        .await
        .text()
        .await
        .unwrap();

    for html in [browser.page("/account").await, failed] {
        let mut ids: Vec<String> = html
            .match_indices(" id=\"")
            .map(|(at, _)| {
                let value = &html[at + 5..];
                value[..value.find('"').unwrap()].to_owned()
            })
            .collect();
        ids.sort_unstable();
        let mut duplicates = ids.clone();
        duplicates.dedup();
        for id in &duplicates {
            ids.remove(ids.iter().position(|other| other == id).unwrap());
        }
        assert_eq!(ids, Vec::<String>::new(), "ids used twice");
    }
}

#[tokio::test]
async fn a_changed_password_is_told_to_the_account_address() {
    let app = mail_app().await;
    let browser = PageClient::user(&app, EMAIL).await;
    let new_password = "a different long passphrase";

    let response = browser
        .submit(
            "/account/password",
            &[
                ("current_password", PASSWORD),
                ("new_password", new_password),
                ("new_password_confirm", new_password),
            ],
        )
        .await;

    assert_see_other(&response, "/account");
    let notice = app.wait_for_email(EMAIL, 1).await;
    assert!(
        notice.text.contains("Your password was changed on "),
        "{}",
        notice.text
    );
    assert!(notice.text.contains("127.0.0.1"), "from where");
    assert!(!notice.text.contains(new_password), "never the password");
}
