//! Passkeys on `/account/security`: the list with a rename and a remove form for each, which
//! work without JavaScript, and the form the passkey script uses to add one. Passkeys are made
//! through the JSON API with the tests' software authenticator.

use crate::helpers::passkey::{Authenticator, PASSKEY_ORIGIN};
use crate::helpers::*;
use crate::page_client::*;
use crate::passkeys::add_passkey;

const USER: &str = "user@example.com";
const OTHER: &str = "other@example.com";
const SECURITY: &str = "/account/security";
const PASSKEYS: &str = "/account/security#passkeys";

/// An app whose relying party is `localhost`, with cookies a plain-HTTP client keeps.
async fn spawn() -> TestApp {
    spawn_app_with(&[("COOKIE_SECURE", "false"), ("PUBLIC_URL", PASSKEY_ORIGIN)]).await
}

/// A user signed in on the pages, with a passkey named `name` added through the API; the
/// passkey's id, and an access token to add more.
async fn user_with_passkey(app: &TestApp, email: &str, name: &str) -> (PageClient, String, String) {
    let browser = PageClient::user(app, email).await;
    let tokens = app.tokens(email, PASSWORD).await;
    let id = passkey_named(app, &tokens.access, name).await;
    (browser, id, tokens.access)
}

/// Adds a passkey named `name` (on a new authenticator); its id.
async fn passkey_named(app: &TestApp, access: &str, name: &str) -> String {
    let added = add_passkey(app, access, &mut Authenticator::new(), Some(name)).await;
    added["passkey"]["id"].as_str().unwrap().to_owned()
}

fn rename_path(id: &str) -> String {
    format!("/account/security/passkeys/{id}/rename")
}

fn remove_path(id: &str) -> String {
    format!("/account/security/passkeys/{id}/remove")
}

/// The stored name of the passkey `id`, or `None` when it is gone.
fn stored_name(app: &TestApp, id: &str) -> Option<String> {
    use diesel::prelude::*;
    use gatehouse::db::schema::passkeys;
    passkeys::table
        .filter(passkeys::id.eq(id))
        .select(passkeys::name)
        .first::<String>(&mut app.db())
        .optional()
        .unwrap()
}

fn recovery_codes(app: &TestApp, email: &str) -> i64 {
    let id = app.user_id(email);
    app.count(&format!(
        "SELECT code_hash FROM recovery_codes WHERE user_id = '{id}'"
    ))
}

#[tokio::test]
async fn the_security_page_lists_passkeys_with_forms_named_for_each() {
    let app = spawn().await;
    let (browser, laptop, access) = user_with_passkey(&app, USER, "Work laptop").await;
    let phone = passkey_named(&app, &access, "Phone").await;

    let html = browser.page(SECURITY).await;
    assert!(!html.contains("id=\"passkeys-empty\""), "{html}");
    for (id, name) in [(&laptop, "Work laptop"), (&phone, "Phone")] {
        let item = &html[html
            .find(&format!("data-passkey-id=\"{id}\""))
            .expect("the passkey's item")..];
        let item = &item[..item.find("</li>").unwrap()];
        assert_eq!(
            text_of(item, "class=\"passkey-name\"").as_deref(),
            Some(name)
        );
        assert!(
            item.contains(&format!("action=\"{}\"", rename_path(id))),
            "{item}"
        );
        assert!(
            item.contains(&format!("action=\"{}\"", remove_path(id))),
            "{item}"
        );
        // Each field has its own id, and each button says which passkey it acts on.
        assert!(
            item.contains(&format!("id=\"passkey-{id}-name\"")),
            "{item}"
        );
        assert_eq!(input_value(item, "name").as_deref(), Some(name));
        assert!(
            item.contains(&format!("id=\"passkey-{id}-password\"")),
            "{item}"
        );
        for action in ["Rename", "Remove"] {
            assert!(
                item.contains(&format!(
                    "{action}<span class=\"visually-hidden\"> passkey {name}</span>"
                )),
                "{action} {name}: {item}"
            );
        }
        assert_eq!(item.matches("name=\"csrf_token\"").count(), 2, "{item}");
    }

    // Adding one is the script's: its form waits hidden, with a line for browsers without it.
    let form = &html[html.find("id=\"passkey-add-form\"").expect("the add form")..];
    let form = &form[..form.find("</form>").unwrap()];
    assert!(form.starts_with("id=\"passkey-add-form\" class=\"passkey-add\" aria-labelledby=\"passkey-add-heading\" hidden>"));
    assert!(form.contains("name=\"csrf_token\""), "{form}");
    assert!(form.contains("data-passkey-name"), "{form}");
    assert!(
        form.contains("data-passkey=\"register\" hidden>Add a passkey</button>"),
        "{form}"
    );
    assert!(
        html.contains("data-passkey-recovery-codes hidden"),
        "{html}"
    );
    assert!(html.contains("<noscript>"), "{html}");
    assert!(
        html.contains("<script src=\"/static/passkeys.js\" defer></script>"),
        "{html}"
    );
}

#[tokio::test]
async fn a_passkey_is_renamed_through_its_form() {
    let app = spawn().await;
    let (browser, id, _) = user_with_passkey(&app, USER, "Work laptop").await;

    let response = browser
        .submit(&rename_path(&id), &[("name", "  Home desktop ")])
        .await;
    assert_see_other(&response, PASSKEYS);
    assert_eq!(stored_name(&app, &id).as_deref(), Some("Home desktop"));
    let html = browser.page(SECURITY).await;
    assert_eq!(
        flashes_in(&html),
        vec![Flash::success("Your passkey is now called “Home desktop”.")]
    );

    // A blank name is refused beside that passkey's field, and nothing changes.
    let response = browser.submit(&rename_path(&id), &[("name", "   ")]).await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert_eq!(
        field_error(&html, &format!("passkey-{id}-name")).as_deref(),
        Some("Give the passkey a name.")
    );
    assert_eq!(stored_name(&app, &id).as_deref(), Some("Home desktop"));

    // So is a name too long, which is shown again as typed.
    let long = "x".repeat(65);
    let response = browser.submit(&rename_path(&id), &[("name", &long)]).await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert_eq!(
        field_error(&html, &format!("passkey-{id}-name")).as_deref(),
        Some("Use at most 64 characters.")
    );
    assert_eq!(input_value(&html, "name").as_deref(), Some(long.as_str()));
    assert!(
        html.contains("<details class=\"passkey-manage\" open>"),
        "{html}"
    );
    assert_eq!(stored_name(&app, &id).as_deref(), Some("Home desktop"));
}

#[tokio::test]
async fn a_passkey_is_removed_after_the_current_password() {
    let app = spawn().await;
    let (browser, id, _) = user_with_passkey(&app, USER, "Work laptop").await;
    assert_eq!(recovery_codes(&app, USER), 10);

    let response = browser
        .submit(
            &remove_path(&id),
            &[("current_password", "not my password")],
        )
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert_eq!(
        field_error(&html, &format!("passkey-{id}-password")).as_deref(),
        Some("That is not your current password.")
    );
    assert_eq!(
        html.matches("class=\"field-error\" id=\"passkey-").count(),
        1,
        "the error is beside that passkey's field only"
    );
    assert_eq!(stored_name(&app, &id).as_deref(), Some("Work laptop"));

    let response = browser
        .submit(&remove_path(&id), &[("current_password", PASSWORD)])
        .await;
    assert_see_other(&response, PASSKEYS);
    assert_eq!(stored_name(&app, &id), None);
    // It was the last factor: its recovery codes went with it.
    assert_eq!(recovery_codes(&app, USER), 0);
    let html = browser.page(SECURITY).await;
    assert_eq!(
        flashes_in(&html),
        vec![Flash::success("The passkey has been removed.")]
    );
    assert!(html.contains("id=\"passkeys-empty\""), "{html}");
}

#[tokio::test]
async fn the_passkey_forms_need_the_csrf_token() {
    let app = spawn().await;
    let (browser, id, _) = user_with_passkey(&app, USER, "Work laptop").await;

    let refused = browser
        .post_form(&rename_path(&id), &[("name", "Phone")])
        .await;
    assert_csrf_page(refused).await;
    let refused = browser
        .post_form(&remove_path(&id), &[("current_password", PASSWORD)])
        .await;
    assert_csrf_page(refused).await;
    assert_eq!(stored_name(&app, &id).as_deref(), Some("Work laptop"));
}

#[tokio::test]
async fn another_users_passkey_is_not_found() {
    let app = spawn().await;
    let (_, theirs, _) = user_with_passkey(&app, OTHER, "Work laptop").await;
    let (browser, _, _) = user_with_passkey(&app, USER, "Phone").await;

    for (path, fields) in [
        (rename_path(&theirs), [("name", "Home desktop")]),
        // A refused name does not tell whether the passkey exists either.
        (rename_path(&theirs), [("name", "")]),
        (remove_path(&theirs), [("current_password", PASSWORD)]),
        (
            remove_path(&theirs),
            [("current_password", "not my password")],
        ),
        (rename_path("not-a-uuid"), [("name", "Home desktop")]),
        (
            remove_path("00000000-0000-0000-0000-000000000000"),
            [("current_password", PASSWORD)],
        ),
    ] {
        let response = browser.submit(&path, &fields).await;
        assert_eq!(response.status(), 404, "{path} {fields:?}");
    }
    assert_eq!(stored_name(&app, &theirs).as_deref(), Some("Work laptop"));
}

#[tokio::test]
async fn signed_out_visitors_are_sent_to_log_in() {
    let app = spawn().await;
    let (_, id, _) = user_with_passkey(&app, USER, "Work laptop").await;
    let visitor = PageClient::new(&app);

    let token = visitor.csrf_token("/login").await;
    let response = visitor
        .post_form(&rename_path(&id), &with_token(&[("name", "Phone")], &token))
        .await;
    assert_eq!(response.status(), 303);
    assert!(
        location(&response).starts_with("/login"),
        "{}",
        location(&response)
    );
    assert_eq!(stored_name(&app, &id).as_deref(), Some("Work laptop"));
}

#[tokio::test]
async fn the_second_step_of_an_account_with_a_passkey_offers_it_first() {
    let app = spawn().await;
    user_with_passkey(&app, USER, "Work laptop").await;
    let browser = PageClient::new(&app);

    let response = browser.log_in(USER, PASSWORD, None).await;
    assert_see_other(&response, "/login/verify");
    let html = browser.page("/login/verify").await;
    // The passkey, waiting for its script; a recovery code one link away.
    assert!(html.contains("data-passkey=\"second-factor\""), "{html}");
    assert!(
        html.contains("data-next=\"/account\" hidden>Use a passkey</button>"),
        "{html}"
    );
    assert!(
        html.contains("<script src=\"/static/passkeys.js\" defer></script>"),
        "{html}"
    );
    assert!(!html.contains("name=\"recovery_code\""), "{html}");
    assert!(
        html.contains("href=\"/login/verify?method=recovery_code\""),
        "{html}"
    );
    assert!(html.contains("<noscript>"), "{html}");

    let html = browser.page("/login/verify?method=recovery_code").await;
    assert!(html.contains("name=\"recovery_code\""), "{html}");
    assert!(html.contains("data-passkey=\"second-factor\""), "{html}");
}

#[tokio::test]
async fn the_login_page_offers_passkeys_only_when_the_server_can_use_them() {
    let app = spawn_page_app().await;
    let html = PageClient::new(&app).page("/login").await;
    assert!(html.contains("data-passkey=\"signin\""), "{html}");
    assert!(html.contains("<script src=\"/static/passkeys.js\" defer></script>"));

    // A relying party needs a domain name: on an IP address, passkeys are off.
    let on_an_address = spawn_app_with(&[("PUBLIC_URL", "http://127.0.0.1:8080")]).await;
    let html = PageClient::new(&on_an_address).page("/login").await;
    assert!(!html.contains("data-passkey"), "{html}");
    assert!(!html.contains("passkeys.js"), "{html}");
}
