//! `/admin/clients`: superusers register, list and delete machine clients from a page; the
//! secret is shown once, on the page that answers the registration.

use serde_json::Value;

use crate::helpers::*;
use crate::page_client::*;
use crate::tokens::assert_invalid_token;

const ADMIN: &str = "admin@example.com";
const PAGE: &str = "/admin/clients";

async fn admin_app() -> (TestApp, PageClient) {
    let app = spawn_page_app().await;
    let admin = PageClient::superuser(&app, ADMIN).await;
    (app, admin)
}

/// The client ids listed in `#clients-list`, in order.
fn listed(html: &str) -> Vec<String> {
    match html.find("id=\"clients-list\"") {
        None => Vec::new(),
        Some(at) => {
            let list = &html[at..];
            attribute_values(&list[..list.find("</ul>").unwrap()], "data-client-id")
        }
    }
}

/// The credentials shown on the page that answers a registration.
fn shown_credentials(html: &str) -> ClientCredentials {
    ClientCredentials {
        id: text_of(html, "id=\"created-client-id\"").expect("#created-client-id"),
        secret: text_of(html, "id=\"created-client-secret\"").expect("#created-client-secret"),
    }
}

async fn register(browser: &PageClient, name: &str, scopes: &str) -> reqwest::Response {
    browser
        .submit(PAGE, &[("name", name), ("scopes", scopes)])
        .await
}

/// The page a registration redirects to (POST → 303 → GET), which shows the new client.
async fn answer_page(browser: &PageClient, response: reqwest::Response) -> reqwest::Response {
    assert_eq!(response.status(), 303, "a registration redirects");
    assert_eq!(response.headers()["location"], PAGE);
    browser.get(PAGE).await
}

/// Registers a client through the page, failing the test on any error.
async fn registered(browser: &PageClient, name: &str, scopes: &str) -> ClientCredentials {
    let response = answer_page(browser, register(browser, name, scopes).await).await;
    assert_eq!(response.status(), 200, "register {name}");
    shown_credentials(&response.text().await.unwrap())
}

fn delete_path(id: &str) -> String {
    format!("{PAGE}/{id}/delete")
}

// ---------------------------------------------------------------------------------------------
// The empty page (who may see it at all: `pages_access.rs`)

#[tokio::test]
async fn an_empty_page_says_there_are_no_clients() {
    let (_app, admin) = admin_app().await;

    let html = admin.page(PAGE).await;

    assert!(html.contains("id=\"no-clients\""), "{html}");
    assert!(listed(&html).is_empty());
    assert!(html.contains("id=\"client-form\""), "{html}");
    assert!(!html.contains("created-client-secret"), "{html}");
}

// ---------------------------------------------------------------------------------------------
// Registering

#[tokio::test]
async fn registering_redirects_to_the_page_that_shows_the_id_and_secret_once() {
    let (app, admin) = admin_app().await;

    let response = admin
        .submit(
            PAGE,
            &[
                ("name", "billing"),
                ("scopes", "write:invoices read:invoices"),
            ],
        )
        .await;

    let response = answer_page(&admin, response).await;
    assert_eq!(response.status(), 200);
    assert_html(&response);
    assert_eq!(response.headers()["cache-control"], "no-store");
    let html = response.text().await.unwrap();
    let shown = shown_credentials(&html);
    assert!(shown.id.starts_with("client_"), "{}", shown.id);
    assert!(shown.secret.len() >= 32, "{}", shown.secret);
    assert_eq!(listed(&html), [shown.id.as_str()]);
    // Marked for the script's "Copy" buttons; without the script there is no button.
    assert!(
        html.contains("id=\"created-client-id\" data-copy=\"client ID\""),
        "{html}"
    );
    assert!(
        html.contains("id=\"created-client-secret\" data-copy=\"client secret\""),
        "{html}"
    );
    assert!(!html.contains("copy-button"), "{html}");
    assert_eq!(
        app.count(&format!(
            "SELECT id FROM clients WHERE id = '{}' AND name = 'billing' \
             AND secret_hash = '{}'",
            shown.id,
            sha256_hex(&shown.secret)
        )),
        1
    );

    // The credentials shown work at the token endpoint, with the scopes given.
    let response = app
        .token_request(&[
            ("grant_type", "client_credentials"),
            ("client_id", shown.id.as_str()),
            ("client_secret", shown.secret.as_str()),
        ])
        .await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["scope"], "read:invoices write:invoices");
}

#[tokio::test]
async fn the_secret_is_not_shown_again() {
    let (app, admin) = admin_app().await;
    let shown = registered(&admin, "once", "read").await;

    let html = admin.page(PAGE).await;

    assert_eq!(listed(&html), [shown.id.as_str()]);
    assert!(!html.contains(&shown.secret), "the secret is shown again");
    assert!(
        !html.contains(&sha256_hex(&shown.secret)),
        "the hash is shown"
    );
    assert!(!html.contains("created-client-secret"), "{html}");
    // Nor on the next admin page the browser visits (no flash carries it).
    let users = admin.page("/admin/users").await;
    assert!(!users.contains(&shown.secret));
    assert_eq!(app.client_count(), 1);
}

#[tokio::test]
async fn clients_registered_through_the_api_are_listed_without_secrets() {
    let (app, admin) = admin_app().await;
    let tokens = app.tokens(ADMIN, PASSWORD).await;
    let first = app.machine_client(&tokens.access, "first", &["a"]).await;
    let second = app.machine_client(&tokens.access, "second", &[]).await;

    let html = admin.page(PAGE).await;

    let ids = listed(&html);
    assert_eq!(ids.len(), 2, "{ids:?}");
    assert!(
        ids.contains(&first.id) && ids.contains(&second.id),
        "{ids:?}"
    );
    for client in [&first, &second] {
        assert!(!html.contains(&client.secret), "a secret is on the page");
        assert!(
            !html.contains(&sha256_hex(&client.secret)),
            "a hash is on the page"
        );
    }
    assert!(html.contains("first") && html.contains("second"));
}

#[tokio::test]
async fn invalid_registrations_are_422_beside_the_field_and_create_nothing() {
    let (app, admin) = admin_app().await;
    let long_name = "n".repeat(101);

    for (name, scopes, field) in [
        ("", "read", "name"),
        ("   ", "", "name"),
        (long_name.as_str(), "", "name"),
        ("quoted", "read \"write\"", "scopes"),
        ("slashed", "back\\slash", "scopes"),
        ("accented", "caf\u{e9}", "scopes"),
    ] {
        let response = register(&admin, name, scopes).await;
        let what = format!("name {name:?}, scopes {scopes:?}");
        assert_eq!(response.status(), 422, "{what}");
        assert_html(&response);
        let html = response.text().await.unwrap();
        let error = field_error(&html, field).unwrap_or_else(|| panic!("{what}: no error"));
        assert!(!error.is_empty(), "{what}");
        assert!(!html.contains("created-client-secret"), "{what}");
        // What was typed is kept for the second try.
        assert_eq!(
            input_value(&html, "scopes").as_deref(),
            Some(scopes),
            "{what}"
        );
    }
    assert_eq!(app.client_count(), 0);
}

#[tokio::test]
async fn registering_needs_the_csrf_token() {
    let (app, admin) = admin_app().await;

    let fields = [("name", "forged"), ("scopes", "admin")];
    assert_csrf_page(admin.post_form(PAGE, &fields).await).await;
    let with_bad_token = [("name", "forged"), ("csrf_token", "nope")];
    assert_csrf_page(admin.post_form(PAGE, &with_bad_token).await).await;

    assert_eq!(app.client_count(), 0);
}

#[tokio::test]
async fn a_name_with_markup_is_escaped() {
    let (_app, admin) = admin_app().await;
    let hostile = "<img src=x onerror=alert(1)>";

    let response = answer_page(&admin, register(&admin, hostile, "").await).await;
    assert_eq!(response.status(), 200);
    let created = response.text().await.unwrap();
    let listed_page = admin.page(PAGE).await;

    for html in [&created, &listed_page] {
        assert_not_raw(html, hostile);
        assert!(
            html.contains("&lt;img") || html.contains("&#60;img"),
            "{html}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Deleting

#[tokio::test]
async fn deleting_a_client_from_the_page_ends_its_tokens() {
    let (app, admin) = admin_app().await;
    let doomed = registered(&admin, "doomed", "").await;
    let kept = registered(&admin, "kept", "").await;
    let token = app.client_token(&doomed).await;
    let html = admin.page(PAGE).await;
    assert!(
        html.contains(&format!("href=\"{}\"", delete_path(&doomed.id))),
        "a delete link in the row: {html}"
    );
    let confirm = admin.page(&delete_path(&doomed.id)).await;
    assert!(
        confirm.contains(&format!("action=\"{}\"", delete_path(&doomed.id))),
        "the question's form: {confirm}"
    );

    let response = admin.submit(&delete_path(&doomed.id), &[]).await;

    assert_see_other(&response, PAGE);
    let html = admin.page(PAGE).await;
    assert_eq!(
        flashes_in(&html),
        [Flash::success(
            "The client has been deleted; its tokens no longer work."
        )]
    );
    assert_eq!(listed(&html), [kept.id.as_str()]);
    assert_invalid_token(app.get("/secret", &token).await, "a deleted client's token").await;
    assert_eq!(
        app.get("/secret", &app.client_token(&kept).await)
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn deleting_needs_the_csrf_token() {
    let (app, admin) = admin_app().await;
    let client = registered(&admin, "kept", "").await;
    let token = app.client_token(&client).await;

    assert_csrf_page(admin.post_form(&delete_path(&client.id), &[]).await).await;

    assert_eq!(app.client_count(), 1);
    assert_eq!(app.get("/secret", &token).await.status(), 200);
}

#[tokio::test]
async fn deleting_a_client_that_is_gone_says_so() {
    let (app, admin) = admin_app().await;
    let client = registered(&admin, "twice", "").await;
    let response = admin.submit(&delete_path(&client.id), &[]).await;
    assert_see_other(&response, PAGE);
    admin.page(PAGE).await; // reads the first flash

    let response = admin.submit(&delete_path(&client.id), &[]).await;

    assert_see_other(&response, PAGE);
    assert_eq!(
        admin.flashes_on(PAGE).await,
        [Flash::error("That client no longer exists.")]
    );
    assert_eq!(app.client_count(), 0);
}

#[tokio::test]
async fn deleting_a_malformed_client_id_is_404() {
    let (app, admin) = admin_app().await;
    registered(&admin, "survivor", "").await;

    let response = admin.submit(&delete_path("not-a-client"), &[]).await;

    assert_eq!(response.status(), 404);
    assert_html(&response);
    assert_eq!(app.client_count(), 1);
}

// ---------------------------------------------------------------------------------------------
// Applications (OpenID Connect)

/// The row of client `id` in the list.
fn row_of<'a>(html: &'a str, id: &str) -> &'a str {
    let start = html
        .find(&format!("data-client-id=\"{id}\""))
        .unwrap_or_else(|| panic!("no row for {id}"));
    let row = &html[start..];
    &row[..row.find("</li>").unwrap()]
}

#[tokio::test]
async fn registering_an_application_shows_and_edits_its_redirect_uris() {
    let (app, admin) = admin_app().await;
    let response = admin
        .submit(
            PAGE,
            &[
                ("name", "Notes"),
                (
                    "redirect_uris",
                    "https://notes.example.com/cb\nhttp://127.0.0.1:8000/cb",
                ),
                ("post_logout_redirect_uris", "https://notes.example.com/"),
                ("public", "on"),
                ("id_token_alg", "ES256"),
            ],
        )
        .await;
    let response = answer_page(&admin, response).await;
    assert_eq!(response.status(), 200);
    let html = response.text().await.unwrap();
    let id = text_of(&html, "id=\"created-client-id\"").expect("#created-client-id");
    assert!(
        !html.contains("id=\"created-client-secret\""),
        "a public client has no secret"
    );
    let row = row_of(&html, &id);
    assert!(
        row.contains("https://notes.example.com/cb\nhttp://127.0.0.1:8000/cb"),
        "{row}"
    );
    assert!(row.contains("public"), "{row}");

    let settings = format!("{PAGE}/{id}/settings");
    let response = admin
        .submit(
            &settings,
            &[
                ("redirect_uris", "https://notes.example.com/callback"),
                ("skip_consent", "on"),
                ("id_token_alg", "ES256"),
            ],
        )
        .await;
    assert_eq!(response.status(), 303);
    let html = admin.page(PAGE).await;
    let row = row_of(&html, &id);
    assert!(row.contains("https://notes.example.com/callback"), "{row}");
    assert!(!row.contains("http://127.0.0.1:8000/cb"), "{row}");
    assert!(row.contains("no consent asked"), "{row}");
    assert_eq!(
        app.count("SELECT id FROM clients WHERE skip_consent AND is_public"),
        1
    );

    // An insecure URI changes nothing and says why.
    let response = admin
        .submit(
            &settings,
            &[("redirect_uris", "http://notes.example.com/cb")],
        )
        .await;
    assert_eq!(response.status(), 303);
    let html = admin.page(PAGE).await;
    assert!(html.contains("must use https"), "the flash says why");
    assert!(row_of(&html, &id).contains("https://notes.example.com/callback"));
}

#[tokio::test]
async fn an_application_with_an_insecure_redirect_uri_is_refused_beside_the_field() {
    let (app, admin) = admin_app().await;
    let response = admin
        .submit(
            PAGE,
            &[
                ("name", "Notes"),
                ("redirect_uris", "http://notes.example.com/cb"),
            ],
        )
        .await;
    assert_eq!(response.status(), 422);
    let html = response.text().await.unwrap();
    assert!(html.contains("must use https"), "the error is shown");
    assert_eq!(app.client_count(), 0);
}

#[tokio::test]
async fn reloading_the_answer_never_registers_a_second_client() {
    let (app, admin) = admin_app().await;
    let shown = registered(&admin, "billing", "").await;
    // The browser reloads the page it was sent to: a GET, which registers nothing and no
    // longer shows the secret.
    let again = admin.page(PAGE).await;
    assert!(!again.contains(&shown.secret));
    assert_eq!(app.client_count(), 1);
}

#[tokio::test]
async fn names_are_unique_in_any_letter_case_and_scopes_take_no_commas() {
    let (app, admin) = admin_app().await;
    registered(&admin, "Billing", "").await;
    for (name, scopes, field) in [("billing", "", "name"), ("other", "read,write", "scopes")] {
        let response = register(&admin, name, scopes).await;
        assert_eq!(response.status(), 422, "{name}");
        let html = response.text().await.unwrap();
        let error = field_error(&html, field).unwrap_or_else(|| panic!("{name}: no error"));
        assert!(!error.is_empty());
    }
    assert_eq!(app.client_count(), 1);
    let token = app.superuser("api-admin@example.com").await.access;
    let response = app.create_client(&token, "BILLING", &[]).await;
    assert_detail(response, 400, "CLIENT_NAME_ALREADY_EXISTS").await;
    assert_eq!(app.client_count(), 1);
}

#[tokio::test]
async fn deleting_asks_first_naming_the_client() {
    let (app, admin) = admin_app().await;
    let shown = registered(&admin, "billing", "").await;
    let html = admin.page(&delete_path(&shown.id)).await;
    assert!(html.contains("Delete billing?"), "{html}");
    assert!(html.contains(&format!("action=\"{}\"", delete_path(&shown.id))));
    assert_eq!(app.client_count(), 1, "asking deletes nothing");
    let list = admin.page(PAGE).await;
    assert!(list.contains(&format!("href=\"{}\"", delete_path(&shown.id))));
}
