//! The OpenAPI document at `/openapi.json` and its viewer at `/docs`: the document is valid,
//! it describes every JSON route the app serves and nothing it does not, and the viewer needs
//! nothing from the internet.

use std::collections::BTreeSet;

use gatehouse::routes::api::api_routes;
use reqwest::header::{CONTENT_SECURITY_POLICY, CONTENT_TYPE, LOCATION};
use reqwest::Method;
use serde_json::Value;

use crate::helpers::*;

/// The keys of an OpenAPI path item that are operations.
const OPERATIONS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// Stands in for every path parameter when probing.
const DUMMY_ID: &str = "00000000-0000-4000-8000-000000000000";

async fn document(app: &TestApp) -> Value {
    let response = app
        .client
        .get(app.url("/openapi.json"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    response.json().await.unwrap()
}

/// `(METHOD, path template)` of every operation in the document.
fn operations(document: &Value) -> Vec<(String, String, &Value)> {
    let mut found = Vec::new();
    for (path, item) in document["paths"].as_object().expect("paths is an object") {
        for (key, operation) in item.as_object().expect("a path item is an object") {
            if OPERATIONS.contains(&key.as_str()) {
                found.push((key.to_uppercase(), path.clone(), operation));
            }
        }
    }
    found
}

/// Follows a local `$ref` such as `#/components/responses/Unauthorized`.
fn resolve<'a>(document: &'a Value, reference: &str) -> Option<&'a Value> {
    document.pointer(reference.strip_prefix('#')?)
}

fn collect_refs<'a>(value: &'a Value, refs: &mut Vec<&'a str>) {
    match value {
        Value::Object(map) => {
            for (key, child) in map {
                match (key.as_str(), child) {
                    ("$ref", Value::String(reference)) => refs.push(reference),
                    _ => collect_refs(child, refs),
                }
            }
        }
        Value::Array(items) => items.iter().for_each(|item| collect_refs(item, refs)),
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_openapi_3() {
    let app = spawn_app().await;
    let document = document(&app).await;

    let version = document["openapi"].as_str().expect("an openapi version");
    assert!(version.starts_with("3."), "OpenAPI {version}");
    assert!(document["info"]["title"].is_string());
    assert!(document["info"]["version"].is_string());
    let operations = operations(&document);
    assert!(!operations.is_empty(), "no operations");

    let mut refs = Vec::new();
    collect_refs(&document, &mut refs);
    for reference in refs {
        assert!(
            resolve(&document, reference).is_some(),
            "dangling $ref {reference}"
        );
    }

    let schemes = document["components"]["securitySchemes"]
        .as_object()
        .expect("security schemes");
    let mut operation_ids = BTreeSet::new();
    for (method, path, operation) in &operations {
        let id = operation["operationId"].as_str().expect("an operationId");
        assert!(operation_ids.insert(id), "operationId {id} is used twice");
        let responses = operation["responses"].as_object().expect("responses");
        assert!(
            responses.keys().any(|status| status.starts_with('2')),
            "{method} {path} documents no success"
        );
        for requirement in operation["security"].as_array().into_iter().flatten() {
            for scheme in requirement.as_object().unwrap().keys() {
                assert!(schemes.contains_key(scheme), "unknown scheme {scheme}");
            }
        }
        // Every `{name}` of the template is a declared path parameter, and nothing else is.
        let in_template: BTreeSet<&str> = path
            .split('/')
            .filter_map(|segment| segment.strip_prefix('{')?.strip_suffix('}'))
            .collect();
        let declared: BTreeSet<&str> = operation["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|parameter| parameter["in"] == "path")
            .map(|parameter| parameter["name"].as_str().unwrap())
            .collect();
        assert_eq!(in_template, declared, "path parameters of {method} {path}");
    }
}

#[tokio::test]
async fn every_json_route_is_documented() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let documented: BTreeSet<(String, String)> = operations(&document)
        .into_iter()
        .map(|(method, path, _)| (method, path))
        .collect();

    let undocumented: Vec<String> = api_routes()
        .into_iter()
        .map(|(method, path)| (method.to_string(), path.to_owned()))
        .filter(|route| !documented.contains(route))
        .map(|(method, path)| format!("{method} {path}"))
        .collect();

    assert!(undocumented.is_empty(), "undocumented: {undocumented:?}");
}

/// Calls each documented operation without credentials or body. A route that exists answers
/// with one of its documented statuses (mostly 401 or 422 here); one that does not gets 404 or
/// 405. Since a handler may also answer 404 (an unknown id), a 404 counts as served only if
/// the path itself is routed: another method on it then gets 405, where an unknown path gets
/// 404 again.
#[tokio::test]
async fn every_documented_operation_is_served() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let mut failures = Vec::new();

    for (method, path, operation) in operations(&document) {
        let concrete = concrete_path(&path);
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let response = app
            .client
            .request(method.clone(), app.url(&concrete))
            .send()
            .await
            .unwrap();
        let status = response.status().as_u16();
        let answer = format!("{method} {concrete}: {status}");

        if status == 405 {
            failures.push(format!("{answer}: the method is not served"));
            continue;
        }
        if status == 404 && !path_is_routed(&app, &concrete).await {
            failures.push(format!("{answer}: no such route"));
            continue;
        }
        if status >= 500 {
            failures.push(format!("{answer}: server error"));
            continue;
        }
        let responses = operation["responses"].as_object().unwrap();
        let family = format!("{}XX", status / 100);
        if ![status.to_string(), family, "default".to_owned()]
            .iter()
            .any(|key| responses.contains_key(key))
        {
            failures.push(format!("{answer}: status not documented"));
        }
    }

    assert!(failures.is_empty(), "{failures:#?}");
}

fn concrete_path(template: &str) -> String {
    template
        .split('/')
        .map(|segment| {
            if segment.starts_with('{') && segment.ends_with('}') {
                DUMMY_ID
            } else {
                segment
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

/// Whether some route has this path: TRACE is served nowhere, so a routed path answers 405
/// and an unrouted one falls through to the 404 of unknown paths.
async fn path_is_routed(app: &TestApp, path: &str) -> bool {
    let response = app
        .client
        .request(Method::TRACE, app.url(path))
        .send()
        .await
        .unwrap();
    match response.status().as_u16() {
        405 => true,
        404 => false,
        other => panic!("TRACE {path} answered {other}"),
    }
}

#[tokio::test]
async fn an_unknown_path_is_told_from_a_missing_id() {
    let app = spawn_app().await;
    let admin = app.superuser("probe-admin@example.com").await;

    // A handler's 404 and the router's 404 have the same body; the probe tells them apart.
    let unknown_user = app
        .client
        .get(app.url(&format!("/users/{DUMMY_ID}")))
        .bearer_auth(&admin.access)
        .send()
        .await
        .unwrap();
    assert_eq!(unknown_user.status(), 404);
    assert!(path_is_routed(&app, &format!("/users/{DUMMY_ID}")).await);
    assert!(!path_is_routed(&app, "/no/such/route").await);
}

#[tokio::test]
async fn the_viewer_loads_nothing_from_elsewhere() {
    let app = spawn_app().await;

    let redirect = app.client.get(app.url("/docs")).send().await.unwrap();
    assert_eq!(redirect.status(), 308);
    assert_eq!(redirect.headers()[LOCATION], "/docs/");

    let page = app.client.get(app.url("/docs/")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let csp = page.headers()[CONTENT_SECURITY_POLICY]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(csp.contains("default-src 'self'"), "{csp}");
    assert!(
        !csp.contains("script-src"),
        "scripts stay 'self' only: {csp}"
    );
    let html = page.text().await.unwrap();

    let assets = attribute_values(&html, "src")
        .into_iter()
        .chain(attribute_values(&html, "href"))
        .collect::<Vec<_>>();
    assert!(
        assets.iter().any(|asset| asset.ends_with(".js")),
        "no script in {html}"
    );
    for asset in &assets {
        assert!(
            !asset.contains("//") && !asset.contains(':'),
            "{asset} is not a local asset"
        );
        let url = app.url(&format!("/docs/{}", asset.trim_start_matches("./")));
        let response = app.client.get(&url).send().await.unwrap();
        assert_eq!(response.status(), 200, "{url}");
    }

    let initializer = app
        .client
        .get(app.url("/docs/swagger-initializer.js"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        initializer.contains(r#""url": "/openapi.json""#),
        "{initializer}"
    );
    assert!(!initializer.contains("http"), "{initializer}");
}

#[tokio::test]
async fn only_the_viewer_relaxes_the_content_security_policy() {
    let app = spawn_app().await;

    for path in ["/openapi.json", "/health", "/", "/docs"] {
        let response = app.client.get(app.url(path)).send().await.unwrap();
        let csp = response.headers()[CONTENT_SECURITY_POLICY]
            .to_str()
            .unwrap();
        assert!(!csp.contains("unsafe-inline"), "{path}: {csp}");
        assert!(!csp.contains("data:"), "{path}: {csp}");
    }
}

/// The values of `name="..."` attributes in `html`.
fn attribute_values(html: &str, name: &str) -> Vec<String> {
    let marker = format!(" {name}=\"");
    html.split(&marker)
        .skip(1)
        .filter_map(|rest| rest.split('"').next())
        .map(str::to_owned)
        .collect()
}

/// Swagger UI's "Authorize" logs in with the OAuth2 password flow the document declares (as
/// fastapi-users' does), then sends the token as a bearer token to the routes that list it.
#[tokio::test]
async fn the_password_flow_logs_in_and_is_offered_wherever_a_bearer_token_is() {
    let app = spawn_app().await;
    let document = document(&app).await;
    let scheme = &document["components"]["securitySchemes"]["OAuth2PasswordBearer"];
    assert_eq!(scheme["type"], "oauth2", "{scheme}");
    let password = &scheme["flows"]["password"];
    assert_eq!(password["tokenUrl"], "/auth/jwt/login", "an absolute path");
    assert_eq!(password["scopes"], serde_json::json!({}));

    let mut offered = BTreeSet::new();
    for (method, path, operation) in operations(&document) {
        let requirements: Vec<&Value> = operation["security"]
            .as_array()
            .into_iter()
            .flatten()
            .collect();
        let names = |name: &str| requirements.iter().any(|r| r.get(name).is_some());
        assert_eq!(
            names("bearer"),
            names("OAuth2PasswordBearer"),
            "{method} {path}: {requirements:?}"
        );
        if names("OAuth2PasswordBearer") {
            let flow = requirements
                .iter()
                .find(|r| r.get("OAuth2PasswordBearer").is_some());
            assert_eq!(flow.unwrap()["OAuth2PasswordBearer"], serde_json::json!([]));
            offered.insert(format!("{method} {path}"));
        }
    }
    for expected in [
        "GET /users/me",
        "PATCH /users/me",
        "GET /users/{id}",
        "POST /auth/jwt/logout",
    ] {
        assert!(offered.contains(expected), "{expected} in {offered:?}");
    }
    assert!(!offered.contains("GET /metrics") && !offered.contains("POST /auth/token"));

    // What the viewer sends: the flow's form, with the empty client id and secret in a Basic
    // header (its default), then the token on "Try it out".
    assert_eq!(
        app.register("swagger@example.com", PASSWORD).await.status(),
        201
    );
    let login = app
        .client
        .post(app.url("/auth/jwt/login"))
        .header("Authorization", "Basic Og==")
        .form(&[
            ("grant_type", "password"),
            ("username", "swagger@example.com"),
            ("password", PASSWORD),
            ("scope", ""),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let body: Value = login.json().await.unwrap();
    assert_eq!(body["token_type"], "bearer");
    let me = app
        .get("/users/me", body["access_token"].as_str().unwrap())
        .await;
    assert_eq!(me.status(), 200);
}
