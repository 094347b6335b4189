//! Every page, in light and dark, on a desktop and on a 375-pixel phone: no sideways
//! scrolling, no WCAG 2.1 A/AA violation that axe-core finds, colours that follow the
//! system's scheme, and screenshots of it all to look at.
//!
//! The pages are one table, [`PAGES`]: who is signed in, how the page is reached, and the
//! heading that proves it was. Adding a page is adding a line.

use serde_json::{json, Value};

use crate::app::{spawn_app, TestApp, PASSWORD};
use crate::harness::Browser;
use crate::recovery::emailed_link;
use crate::totp::{code_at, code_now, now};

const ADMIN: &str = "ada.admin@example.com";
const MEMBER: &str = "mel.member@example.com";
/// Signs in with an authenticator app.
const TWO_FACTOR: &str = "tom.totp@example.com";
const CALLBACK: &str = "http://127.0.0.1:9/callback";

/// In a form's `fill`, a value that clicks its field (a checkbox or a radio button) instead of
/// typing.
const CHECK: &str = "(click)";

/// Who the browser is signed in as when a page is opened.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Who {
    Nobody,
    Member,
    Admin,
    /// [`TWO_FACTOR`] between the password and the code: at the login's second step.
    SecondStep,
    /// [`TWO_FACTOR`], signed in with both.
    TwoFactor,
}

/// How a page is reached. `{name}` in a path or a value is the fixture `name` (see [`setup`]).
enum Open {
    Get(&'static str),
    /// Opens `from`, types each `(field, value)` and submits `form`: the answer is the page.
    Submit {
        from: &'static str,
        fill: &'static [(&'static str, &'static str)],
        form: &'static str,
    },
}

struct Page {
    name: &'static str,
    who: Who,
    open: Open,
    /// What its `h1` says (a part of it).
    heading: &'static str,
}

const fn get(name: &'static str, who: Who, path: &'static str, heading: &'static str) -> Page {
    Page {
        name,
        who,
        open: Open::Get(path),
        heading,
    }
}

const PAGES: &[Page] = &[
    get("home", Who::Nobody, "/", "One account"),
    get("signup", Who::Nobody, "/signup", "Create your account"),
    get("login", Who::Nobody, "/login", "Log in"),
    Page {
        name: "signup-errors",
        who: Who::Nobody,
        open: Open::Submit {
            from: "/signup",
            fill: &[("#email", "not an address"), ("#password", "short")],
            form: "form#signup-form",
        },
        heading: "Create your account",
    },
    Page {
        name: "login-refused",
        who: Who::Nobody,
        open: Open::Submit {
            from: "/login",
            fill: &[("#email", "{member}"), ("#password", "not the password")],
            form: "form#login-form",
        },
        heading: "Log in",
    },
    get(
        "forgot-password",
        Who::Nobody,
        "/forgot-password",
        "Forgot your password",
    ),
    Page {
        name: "check-inbox",
        who: Who::Nobody,
        open: Open::Submit {
            from: "/forgot-password",
            fill: &[("#email", "{member}")],
            form: "form#forgot-password-form",
        },
        heading: "Check your inbox",
    },
    get(
        "reset-password",
        Who::Nobody,
        "{reset_link}",
        "Choose a new password",
    ),
    get(
        "verify-email",
        Who::Nobody,
        "{verify_link}",
        "Verify your email",
    ),
    get(
        "bad-link",
        Who::Nobody,
        "/reset-password?token=no-such-token",
        "doesn’t work",
    ),
    get("not-found", Who::Nobody, "/no-such-page", "doesn’t exist"),
    get(
        "error",
        Who::Nobody,
        "/reset-password?token=a&token=b",
        "didn’t make sense",
    ),
    get(
        "oauth-error",
        Who::Nobody,
        "/oauth/authorize?client_id=nobody&response_type=code",
        "cannot go on",
    ),
    get(
        "login-second-step",
        Who::SecondStep,
        "/login/verify",
        "Confirm it’s you",
    ),
    get(
        "login-recovery-code",
        Who::SecondStep,
        "/login/verify?method=recovery_code",
        "Confirm it’s you",
    ),
    get("account", Who::Member, "/account", "Your account"),
    Page {
        name: "account-flash",
        who: Who::Member,
        open: Open::Submit {
            from: "/account",
            fill: &[],
            form: "form#end-others-form",
        },
        heading: "Your account",
    },
    // A verification link was sent moments ago (see `setup`): another is refused for a while.
    Page {
        name: "too-many-requests",
        who: Who::Member,
        open: Open::Submit {
            from: "/account",
            fill: &[],
            form: "form#verify-email-form",
        },
        heading: "Too many attempts",
    },
    get(
        "confirm-email-change",
        Who::Member,
        "{email_change_link}",
        "Confirm your new email",
    ),
    get(
        "security",
        Who::Member,
        "/account/security",
        "Sign-in security",
    ),
    Page {
        name: "totp-setup",
        who: Who::Member,
        open: Open::Submit {
            from: "/account/security",
            fill: &[("#setup-password", "{password}")],
            form: "form#totp-setup-form",
        },
        heading: "Set up an authenticator app",
    },
    get(
        "forbidden",
        Who::Member,
        "/admin/users",
        "don’t have access",
    ),
    get(
        "security-on",
        Who::TwoFactor,
        "/account/security",
        "Sign-in security",
    ),
    Page {
        name: "recovery-codes",
        who: Who::TwoFactor,
        open: Open::Submit {
            from: "/account/security",
            fill: &[("#renew-password", "{password}")],
            form: "form#recovery-renew-form",
        },
        heading: "Save your recovery codes",
    },
    get("admin-users", Who::Admin, "/admin/users", "Users"),
    get(
        "admin-user",
        Who::Admin,
        "/admin/users/{member_id}",
        "mel.member@example.com",
    ),
    get(
        "admin-confirm-promote",
        Who::Admin,
        "/admin/users/{member_id}/promote",
        "Make mel.member@example.com a superuser?",
    ),
    Page {
        name: "admin-confirm-bulk",
        who: Who::Admin,
        open: Open::Submit {
            from: "/admin/users",
            fill: &[
                ("#select-{member_id}", CHECK),
                ("#select-{two_factor_id}", CHECK),
            ],
            form: "form#bulk-form",
        },
        heading: "Deactivate",
    },
    get(
        "admin-add-user",
        Who::Admin,
        "/admin/users/new",
        "Add a user",
    ),
    Page {
        name: "admin-add-user-errors",
        who: Who::Admin,
        open: Open::Submit {
            from: "/admin/users/new",
            fill: &[
                ("#email", "not an address"),
                ("#first-password-chosen", CHECK),
            ],
            form: "form#new-user-form",
        },
        heading: "Add a user",
    },
    get(
        "invitation",
        Who::Nobody,
        "{invitation_link}",
        "Welcome to Gatehouse",
    ),
    get(
        "admin-confirm-delete",
        Who::Admin,
        "/admin/users/{member_id}/delete",
        "Delete",
    ),
    get(
        "admin-confirm-reset-mfa",
        Who::Admin,
        "/admin/users/{two_factor_id}/reset-mfa",
        "Reset two-factor",
    ),
    get("admin-audit", Who::Admin, "/admin/audit", "Audit log"),
    get("admin-clients", Who::Admin, "/admin/clients", "Clients"),
    Page {
        name: "admin-client-created",
        who: Who::Admin,
        open: Open::Submit {
            from: "/admin/clients",
            fill: &[("#name", "Reports exporter"), ("#scopes", "read:reports")],
            form: "form#client-form",
        },
        heading: "Clients",
    },
    get(
        "admin-confirm-delete-client",
        Who::Admin,
        "/admin/clients/{client_id}/delete",
        "Delete",
    ),
    get(
        "oauth-consent",
        Who::Admin,
        "{consent}",
        "to use your account",
    ),
    get(
        "oauth-logout",
        Who::Admin,
        "/oauth/logout?client_id={app_id}",
        "Sign out of Gatehouse",
    ),
];

/// The values the table's `{name}`s stand for.
struct Fixtures(Vec<(&'static str, String)>);

impl Fixtures {
    fn fill(&self, template: &str) -> String {
        let mut text = template.replace("{password}", PASSWORD);
        for (name, value) in &self.0 {
            text = text.replace(&format!("{{{name}}}"), value);
        }
        assert!(!text.contains('{'), "no fixture for {template}");
        text
    }
}

/// The browser's part of a page's check: `[scrollWidth, clientWidth, innerWidth, background,
/// color]` (colours as `rgb(…)` strings). The client width is the window's less a scroll bar:
/// phones draw theirs over the page, so content must fit inside it.
const MEASURE: &str = r#"
const style = getComputedStyle(document.body);
const root = document.documentElement;
return [root.scrollWidth, root.clientWidth, window.innerWidth, style.backgroundColor, style.color];
"#;

#[tokio::test]
async fn every_page_fits_a_phone_passes_axe_and_follows_the_colour_scheme() {
    let app = spawn_app().await;
    let Some(browser) = Browser::launch("every-page", &app.base_url).await else {
        return;
    };
    let mut at = Session {
        browser: &browser,
        who: Who::Nobody,
        two_factor_secret: String::new(),
    };
    let fixtures = setup(&app, &mut at).await;

    let mut problems = Vec::new();
    for page in PAGES {
        at.become_(page.who).await;
        match &page.open {
            Open::Get(path) => browser.goto(&fixtures.fill(path)).await,
            Open::Submit { from, fill, form } => {
                browser.goto(&fixtures.fill(from)).await;
                for (field, value) in *fill {
                    let field = fixtures.fill(field);
                    if *value == CHECK {
                        browser.click(&field).await;
                    } else {
                        browser.fill(&field, &fixtures.fill(value)).await;
                    }
                }
                browser.submit(form).await;
            }
        }
        browser.wait_for_text("h1", page.heading).await;
        check(&browser, page.name, &mut problems).await;
    }
    browser.emulate_color_scheme("light").await;

    assert!(
        problems.is_empty(),
        "{} problem(s):\n\n{}",
        problems.len(),
        problems.join("\n")
    );
    browser.close().await;
}

/// The page in light and dark, 1280 and 375 pixels wide: each problem found is added to
/// `problems`, named for the page; screenshots of each.
async fn check(browser: &Browser, name: &str, problems: &mut Vec<String>) {
    for scheme in ["light", "dark"] {
        browser.emulate_color_scheme(scheme).await;
        for width in [1280, 375] {
            browser.resize(width, 900).await;
            let seen = format!("{name} ({scheme}, {width} px)");
            let measured = browser.eval(MEASURE).await;
            let [scroll_width, client_width, inner_width] =
                [0, 1, 2].map(|i| measured[i].as_u64().unwrap_or_default());
            if inner_width != u64::from(width) {
                problems.push(format!("{seen}: the window is {inner_width} px wide"));
            }
            if scroll_width > client_width.min(inner_width) {
                problems.push(format!(
                    "{seen}: scrolls sideways, {scroll_width} px of content in {client_width} px"
                ));
            }
            let (background, text) = (luminance(&measured[3]), luminance(&measured[4]));
            let right = match scheme {
                "dark" => background < 0.05 && text > 0.6,
                _ => background > 0.85 && text < 0.05,
            };
            if !right {
                problems.push(format!(
                    "{seen}: body {} on {} is not a {scheme} page",
                    measured[4], measured[3]
                ));
            }
            if let Some(violations) = browser.axe().await {
                for violation in violations {
                    problems.push(format!("{seen}: axe-core: {violation}"));
                }
            }
            browser
                .full_screenshot(&format!("{name}-{scheme}-{width}"))
                .await;
        }
        control_contrast(browser, &format!("{name} ({scheme})"), problems).await;
    }
    browser.resize(1280, 900).await;
    let errors: Vec<String> = browser
        .console_errors()
        .await
        .into_iter()
        // The status of an error page is logged as a failed load; that is the page's point.
        .filter(|message| !message.contains("/favicon.ico") && !message.contains("status of 4"))
        .collect();
    for error in errors {
        problems.push(format!("{name}: console: {error}"));
    }
}

/// JavaScript: each visible text field, list and box of the page as `[name, border colour,
/// focus ring colour (null without one), the colour around it]`. Each is focused in turn to
/// read its ring; the focus then goes back where it was.
const CONTROLS: &str = r#"
const around = element => {
  for (let e = element; e; e = e.parentElement) {
    const bg = getComputedStyle(e).backgroundColor;
    if (bg !== 'transparent' && !/, 0\)$/.test(bg)) return bg;
  }
  return 'rgb(255, 255, 255)';
};
const was = document.activeElement;
const fields = document.querySelectorAll(
  'input:not([type=hidden], [type=checkbox], [type=radio]), select, textarea');
const found = Array.from(fields)
  // Not those in a closed <details> or otherwise out of sight.
  .filter(field => field.checkVisibility({visibilityProperty: true}))
  .map(field => {
    const border = getComputedStyle(field).borderTopColor;
    field.focus({preventScroll: true});
    const focused = getComputedStyle(field);
    const ring = focused.outlineStyle === 'none' ? null : focused.outlineColor;
    return [field.id || field.name, border, ring, around(field.parentElement)];
  });
if (was && was !== document.body) was.focus({preventScroll: true}); else document.activeElement.blur();
return found;
"#;

/// WCAG 1.4.11: the border of every text field, list and box, and its focus ring, at 3:1 or
/// more against what is around it.
async fn control_contrast(browser: &Browser, seen: &str, problems: &mut Vec<String>) {
    let controls = browser.eval(CONTROLS).await;
    for control in controls.as_array().into_iter().flatten() {
        let (field, around) = (&control[0], luminance(&control[3]));
        for (what, colour) in [("border", &control[1]), ("focus ring", &control[2])] {
            let ratio = contrast(luminance(colour), around);
            // An unreadable colour (no ring at all) gives NaN, which fails too.
            if ratio.is_nan() || ratio < 3.0 {
                problems.push(format!(
                    "{seen}: the {what} of {field} ({colour}) on {} is {ratio:.2}:1, not 3:1",
                    control[3]
                ));
            }
        }
    }
}

/// The contrast ratio of two relative luminances.
fn contrast(a: f64, b: f64) -> f64 {
    (a.max(b) + 0.05) / (a.min(b) + 0.05)
}

/// The relative luminance (WCAG 2.1) of a CSS `rgb(…)`/`rgba(…)` colour; `NaN` if unreadable.
fn luminance(css: &Value) -> f64 {
    let Some(css) = css.as_str() else {
        return f64::NAN;
    };
    let channels: Vec<f64> = css
        .trim_start_matches("rgba(")
        .trim_start_matches("rgb(")
        .trim_end_matches(')')
        .split(',')
        .take(3)
        .filter_map(|part| part.trim().parse::<f64>().ok())
        .map(|value| {
            let c = value / 255.0;
            if c <= 0.03928 {
                c / 12.92
            } else {
                ((c + 0.055) / 1.055).powf(2.4)
            }
        })
        .collect();
    match channels[..] {
        [r, g, b] => 0.2126 * r + 0.7152 * g + 0.0722 * b,
        _ => f64::NAN,
    }
}

/// The browser and who is signed in on it.
struct Session<'a> {
    browser: &'a Browser,
    who: Who,
    two_factor_secret: String,
}

impl Session<'_> {
    /// Signs out whoever is signed in, and in as `who`.
    async fn become_(&mut self, who: Who) {
        if self.who == who {
            return;
        }
        let browser = self.browser;
        browser
            .client()
            .delete_all_cookies()
            .await
            .unwrap_or_else(|err| panic!("clearing the cookies: {err}"));
        self.who = Who::Nobody;
        let email = match who {
            Who::Nobody => return,
            Who::Member => MEMBER,
            Who::Admin => ADMIN,
            Who::SecondStep | Who::TwoFactor => TWO_FACTOR,
        };
        browser.goto("/login").await;
        browser.log_in(email, PASSWORD).await;
        if matches!(who, Who::SecondStep | Who::TwoFactor) {
            browser.wait_for_location("/login/verify").await;
            if who == Who::TwoFactor {
                browser
                    .fill("#code", &code_now(&self.two_factor_secret))
                    .await;
                browser.submit("form#verify-form").await;
            }
        }
        if who != Who::SecondStep {
            browser.wait_for_location("/account").await;
        }
        self.who = who;
    }
}

/// An admin, a member with a pending change of address, an account with an authenticator
/// app, a machine client, an application, and the links the pages need.
async fn setup(app: &TestApp, at: &mut Session<'_>) -> Fixtures {
    app.register_superuser(ADMIN, PASSWORD).await;
    let member_id = app.register(MEMBER, PASSWORD).await;
    let two_factor_id = app.register(TWO_FACTOR, PASSWORD).await;
    at.two_factor_secret = enrol_totp(app, TWO_FACTOR).await;
    let admin = app.access_token(ADMIN, PASSWORD).await;

    let client_id = register_client(
        app,
        &admin,
        json!({"name": "Billing service", "scopes": ["read:reports", "write:reports"]}),
    )
    .await;
    let app_id = register_client(
        app,
        &admin,
        json!({"name": "Acme Notes", "redirect_uris": [CALLBACK]}),
    )
    .await;
    let consent = format!(
        "/oauth/authorize?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &app_id)
            .append_pair("redirect_uri", CALLBACK)
            .append_pair("scope", "openid email profile")
            .append_pair("state", "every-page")
            .append_pair("nonce", "every-page")
            // RFC 7636's example challenge.
            .append_pair(
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
            )
            .append_pair("code_challenge_method", "S256")
            .finish()
    );

    for (path, what) in [
        ("/auth/forgot-password", "a reset link"),
        ("/auth/request-verify-token", "a verification link"),
    ] {
        let response = app
            .http
            .post(app.url(path))
            .json(&json!({"email": MEMBER}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 202, "asking for {what}");
    }
    let reset_link = emailed_link(app, "/reset-password").await;
    let verify_link = emailed_link(app, "/verify").await;

    // A change of address is asked for from the account page.
    at.become_(Who::Member).await;
    let browser = at.browser;
    browser.fill("#new_email", "mel.new@example.com").await;
    browser.fill("#email_password", PASSWORD).await;
    browser.submit("form#email-form").await;
    browser.wait_for_text(".flash", "mel.new@example.com").await;
    let email_change_link = emailed_link(app, "/account/email/confirm").await;

    // An invitation is sent from the admin's page for adding a user.
    at.become_(Who::Admin).await;
    browser.goto("/admin/users/new").await;
    browser.fill("#email", "ivy.invited@example.com").await;
    browser.submit("form#new-user-form").await;
    browser
        .wait_for_text(".flash", "ivy.invited@example.com")
        .await;
    let invitation_link = emailed_link(app, "/invitation").await;

    Fixtures(vec![
        ("member", MEMBER.to_owned()),
        ("member_id", member_id),
        ("two_factor_id", two_factor_id),
        ("client_id", client_id),
        ("app_id", app_id),
        ("consent", consent),
        ("reset_link", reset_link),
        ("verify_link", verify_link),
        ("email_change_link", email_change_link),
        ("invitation_link", invitation_link),
    ])
}

/// Turns on an authenticator app for `email` through the API; its secret. The code that
/// confirms it is the previous step's, so that a login's current code is still unused.
async fn enrol_totp(app: &TestApp, email: &str) -> String {
    let token = app.access_token(email, PASSWORD).await;
    let begun: Value = app
        .http
        .post(app.url("/users/me/mfa/totp"))
        .bearer_auth(&token)
        .json(&json!({"current_password": PASSWORD}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let secret = begun["secret"]
        .as_str()
        .unwrap_or_else(|| panic!("a TOTP secret, not {begun}"))
        .to_owned();
    let confirmed = app
        .http
        .post(app.url("/users/me/mfa/totp/confirm"))
        .bearer_auth(&token)
        .json(&json!({"code": code_at(&secret, now() - 30)}))
        .send()
        .await
        .unwrap();
    assert_eq!(confirmed.status(), 200, "confirming the app of {email}");
    secret
}

/// Registers a client through the API; its id.
async fn register_client(app: &TestApp, admin: &str, body: Value) -> String {
    let response = app
        .http
        .post(app.url("/clients"))
        .bearer_auth(admin)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "register {body}");
    let created: Value = response.json().await.unwrap();
    created["client_id"].as_str().unwrap().to_owned()
}
