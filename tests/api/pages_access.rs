//! Who may use the admin pages and forms: a signed-out visitor is sent to log in, a signed-in
//! member gets the 403 page, and neither changes anything. One table holds every admin page and
//! every admin form.

use crate::helpers::*;
use crate::page_client::*;

const ADMIN: &str = "admin@example.com";
const MEMBER: &str = "member@example.com";
const OTHER: &str = "other@example.com";
const INACTIVE: &str = "inactive@example.com";

/// What the 403 page says.
const NO_ACCESS: &str = "You don’t have access to this page";

/// The fields of a form posted from the user list (the CSRF token is added on submitting).
type Fields = &'static [(&'static str, &'static str)];
const BACK_TO_LIST: Fields = &[("next", "/admin/users")];
const CONFIRMED: Fields = &[("next", "/admin/users"), ("confirm", "yes")];
/// The bulk form, confirmed, with no account chosen: the refusal must come before it is read.
const BULK: Fields = &[
    ("action", "delete"),
    ("next", "/admin/users"),
    ("confirm", "yes"),
];

enum Route {
    /// A page (`GET`), and the exact login address a signed-out visitor is sent to.
    Page(String, String),
    /// A form (`POST`) with its fields.
    Form(String, Fields),
}

/// What a refused attempt must leave as it was: users, sessions, refresh tokens, clients.
fn state(app: &TestApp) -> (String, i64) {
    (snapshot(app), app.client_count())
}

#[tokio::test]
async fn admin_pages_and_forms_send_visitors_to_log_in_and_refuse_members() {
    let app = spawn_page_app().await;
    let admin_tokens = app.superuser(ADMIN).await;
    let client = app
        .machine_client(&admin_tokens.access, "existing", &[])
        .await;
    let other = app.user(OTHER).await;
    app.user(INACTIVE).await;
    app.execute(&format!(
        "UPDATE users SET is_active = FALSE WHERE email = '{INACTIVE}'"
    ));
    let anonymous = PageClient::new(&app);
    let member = PageClient::user(&app, MEMBER).await;
    let on_user =
        |email: &str, action: &str| format!("/admin/users/{}/{action}", app.user_id(email));
    let page = |path: &str, login: &str| Route::Page(path.to_owned(), login.to_owned());
    let other_session: String = {
        use diesel::prelude::*;
        use gatehouse::db::schema::sessions;
        sessions::table
            .filter(sessions::user_id.eq(app.user_id(OTHER)))
            .select(sessions::id)
            .first(&mut app.db())
            .unwrap()
    };

    let routes = [
        page("/admin/users", "/login?next=%2Fadmin%2Fusers"),
        page(
            "/admin/users?q=x&page=2",
            "/login?next=%2Fadmin%2Fusers%3Fq%3Dx%26page%3D2",
        ),
        page(
            "/admin/users?q=admin",
            "/login?next=%2Fadmin%2Fusers%3Fq%3Dadmin",
        ),
        Route::Page(
            on_user(ADMIN, "delete"),
            format!(
                "/login?next=%2Fadmin%2Fusers%2F{}%2Fdelete",
                app.user_id(ADMIN)
            ),
        ),
        Route::Page(
            format!("/admin/users/{}", app.user_id(OTHER)),
            format!("/login?next=%2Fadmin%2Fusers%2F{}", app.user_id(OTHER)),
        ),
        Route::Page(
            format!("/admin/users/{}?sort=email", app.user_id(ADMIN)),
            format!(
                "/login?next=%2Fadmin%2Fusers%2F{}%3Fsort%3Demail",
                app.user_id(ADMIN)
            ),
        ),
        page(
            "/admin/users?sort=email&active=no",
            "/login?next=%2Fadmin%2Fusers%3Fsort%3Demail%26active%3Dno",
        ),
        page("/admin/audit", "/login?next=%2Fadmin%2Faudit"),
        page(
            "/admin/audit?q=admin",
            "/login?next=%2Fadmin%2Faudit%3Fq%3Dadmin",
        ),
        page(
            "/admin/audit?event=bogus",
            "/login?next=%2Fadmin%2Faudit%3Fevent%3Dbogus",
        ),
        page(
            "/admin/audit?event=bogus&page=2",
            "/login?next=%2Fadmin%2Faudit%3Fevent%3Dbogus%26page%3D2",
        ),
        page("/admin/clients", "/login?next=%2Fadmin%2Fclients"),
        page("/admin/users/new", "/login?next=%2Fadmin%2Fusers%2Fnew"),
        Route::Form(
            "/admin/users/new".to_owned(),
            &[
                ("email", "sneaky@example.com"),
                ("first_password", "invite"),
            ],
        ),
        Route::Form(on_user(MEMBER, "promote"), BACK_TO_LIST),
        Route::Form(on_user(MEMBER, "verify"), BACK_TO_LIST),
        Route::Form(on_user(ADMIN, "demote"), BACK_TO_LIST),
        Route::Form(on_user(ADMIN, "deactivate"), BACK_TO_LIST),
        Route::Form(on_user(INACTIVE, "activate"), BACK_TO_LIST),
        Route::Form(on_user(ADMIN, "delete"), CONFIRMED),
        Route::Form(on_user(ADMIN, "delete"), BACK_TO_LIST),
        Route::Form(on_user(OTHER, "end-sessions"), BACK_TO_LIST),
        Route::Form(on_user(ADMIN, "end-sessions"), BACK_TO_LIST),
        Route::Form(on_user(MEMBER, "promote"), CONFIRMED),
        Route::Form(on_user(OTHER, "deactivate"), CONFIRMED),
        Route::Form("/admin/users/bulk".to_owned(), BULK),
        Route::Form(
            format!(
                "/admin/users/{}/sessions/{}/end",
                app.user_id(OTHER),
                other_session
            ),
            &[],
        ),
        Route::Form(
            "/admin/clients".to_owned(),
            &[("name", "sneaky"), ("scopes", "admin")],
        ),
        Route::Form(format!("/admin/clients/{}/delete", client.id), &[]),
    ];

    for route in &routes {
        let before = state(&app);
        let (what, refused) = match route {
            Route::Page(path, login) => {
                assert_see_other(&anonymous.get(path).await, login);
                (format!("GET {path}"), member.get(path).await)
            }
            Route::Form(path, fields) => {
                let response = anonymous.submit(path, fields).await;
                assert_eq!(response.status(), 303, "signed out: POST {path}");
                assert!(
                    location(&response).starts_with("/login"),
                    "signed out: POST {path}"
                );
                (format!("POST {path}"), member.submit(path, fields).await)
            }
        };
        assert_eq!(refused.status(), 403, "a member: {what}");
        assert_html(&refused);
        let html = refused.text().await.unwrap();
        assert!(html.contains(NO_ACCESS), "a member: {what}: {html}");
        for secret in [ADMIN, OTHER, INACTIVE, client.id.as_str()] {
            assert!(!html.contains(secret), "{what} shows {secret}: {html}");
        }
        assert_eq!(state(&app), before, "{what} changed nothing");
    }

    assert!(!app.user_row(MEMBER).unwrap().is_superuser);
    for (tokens, whose) in [(&other, "the other user"), (&admin_tokens, "the superuser")] {
        let response = app.get("/users/me", &tokens.access).await;
        assert_eq!(response.status(), 200, "{whose} is still signed in");
    }
    let token = app.client_token(&client).await;
    assert_eq!(app.get("/secret", &token).await.status(), 200);
}
