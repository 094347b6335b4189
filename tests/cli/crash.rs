//! A crash between committing a refresh and answering it: after a restart, the client's retry
//! with the token it still holds keeps its session, however long the restart took.

use std::time::Duration;

use diesel::prelude::*;
use diesel::sql_types::BigInt;
use serde_json::json;

use crate::harness::*;

/// A one-second grace window, and a restart that takes longer than that.
const GRACE: (&str, &str) = ("REFRESH_REUSE_GRACE", "1");
const RESTART_TAKES: Duration = Duration::from_millis(2500);

fn revoked_sessions(db: &std::path::Path) -> i64 {
    #[derive(QueryableByName)]
    struct Count {
        #[diesel(sql_type = BigInt)]
        n: i64,
    }
    diesel::sql_query("SELECT COUNT(*) AS n FROM sessions WHERE revoked_at IS NOT NULL")
        .get_result::<Count>(&mut connect(db))
        .expect("count revoked sessions")
        .n
}

#[tokio::test]
async fn a_refresh_lost_to_a_crash_is_given_again_after_the_restart() {
    const EMAIL: &str = "crash@example.com";
    let sandbox = Sandbox::new();
    let mut server = sandbox.serve(&[GRACE]).await;
    server.register(EMAIL, PASSWORD).await;
    let (_, parent) = server.login(EMAIL, PASSWORD).await;
    // The rotation commits; the client never sees its answer, because ...
    let (_, lost) = server.refresh(&parent).await;

    // ... the server is killed (SIGKILL: no shutdown, no goodbye) and takes a while to return.
    let before = server.stop();
    tokio::time::sleep(RESTART_TAKES).await;
    let server = sandbox.serve(&[GRACE]).await;

    // The client retries with the token it still holds.
    let response = server
        .client
        .post(server.url("/auth/jwt/refresh"))
        .json(&json!({"refresh_token": parent}))
        .send()
        .await
        .expect("refresh after the restart");
    let status = response.status();
    let body: serde_json::Value = response.json().await.expect("JSON body");
    assert_eq!(
        status, 200,
        "the retry after the restart: {body}\n--- before the crash ---\n{before}"
    );
    let child = string_field(&body, "refresh_token");
    assert_eq!(child, lost, "the same successor as the lost answer");
    let me = server.me(&string_field(&body, "access_token")).await;
    assert_eq!(me["email"], EMAIL);
    assert_eq!(
        revoked_sessions(&sandbox.db_path()),
        0,
        "no session revoked"
    );

    // The session goes on.
    let (access, _) = server.refresh(&child).await;
    server.me(&access).await;
}
