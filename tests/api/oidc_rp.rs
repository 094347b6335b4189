//! A real relying party against the provider: the `openidconnect` crate runs the code flow as
//! an application would (discovery, its own authorization URL with PKCE and a nonce, the code
//! exchange, the ID token verified through the discovered JWK set, `at_hash`, userinfo, and
//! refresh-token rotation), while `OidcBrowser` plays the user at the login and consent pages.

use openidconnect::core::{
    CoreAuthenticationFlow, CoreClient, CoreErrorResponseType, CoreIdTokenClaims,
    CoreJwsSigningAlgorithm, CoreProviderMetadata, CoreTokenResponse, CoreUserInfoClaims,
};
use openidconnect::{
    AccessTokenHash, AuthorizationCode, ClientId, ClientSecret, CsrfToken, EndpointMaybeSet,
    EndpointNotSet, EndpointSet, IssuerUrl, Nonce, OAuth2TokenResponse, PkceCodeChallenge,
    RedirectUrl, RequestTokenError, Scope, TokenResponse,
};

use crate::helpers::*;

const USER: &str = "ada.lovelace@example.com";

/// The client `from_provider_metadata` makes: the authorization endpoint set, the token and
/// userinfo endpoints as discovery gave them.
type Rp = CoreClient<
    EndpointSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointNotSet,
    EndpointMaybeSet,
    EndpointMaybeSet,
>;

/// The relying party's HTTP client: no redirects followed, as the crate asks.
fn http() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A provider with a user and the application `spec` registered; the application. A rotated
/// refresh token has no grace period: presented again once its successor has been used, it is
/// refused at once.
async fn provider_with(spec: &AppSpec) -> (TestApp, RegisteredApp) {
    let app = spawn_oidc_app_with(&[("REFRESH_REUSE_GRACE", "0")]).await;
    let admin = app.superuser("root@example.com").await;
    assert_eq!(app.register(USER, PASSWORD).await.status(), 201);
    let client = app.application(&admin.access, spec).await;
    (app, client)
}

/// Discovery by the crate, then its client for `registered`.
async fn relying_party(app: &TestApp, registered: &RegisteredApp) -> Rp {
    let issuer = IssuerUrl::new(app.address.clone()).unwrap();
    let metadata = CoreProviderMetadata::discover_async(issuer, &http())
        .await
        .unwrap_or_else(|e| panic!("discovery by openidconnect: {e:?}"));
    CoreClient::from_provider_metadata(
        metadata,
        ClientId::new(registered.id.clone()),
        registered.secret.clone().map(ClientSecret::new),
    )
    .set_redirect_uri(RedirectUrl::new(registered.redirect_uri.clone()).unwrap())
}

/// What one sign-in gave the relying party.
struct SignedIn {
    tokens: CoreTokenResponse,
    claims: CoreIdTokenClaims,
    alg: CoreJwsSigningAlgorithm,
}

/// The code flow: the crate's authorization URL for `scopes` (besides `openid`), the user
/// through login and consent, the crate's exchange with the PKCE verifier, and the ID token
/// verified (signature through the JWK set, issuer, audience, expiry, nonce) and its
/// `at_hash` checked against the access token.
async fn sign_in(app: &TestApp, rp: &Rp, scopes: &[&str]) -> SignedIn {
    let (challenge, verifier) = PkceCodeChallenge::new_random_sha256();
    let mut request = rp.authorize_url(
        CoreAuthenticationFlow::AuthorizationCode,
        CsrfToken::new_random,
        Nonce::new_random,
    );
    for scope in scopes {
        request = request.add_scope(Scope::new(scope.to_string()));
    }
    let (url, state, nonce) = request.set_pkce_challenge(challenge).url();
    assert!(
        url.as_str()
            .starts_with(&format!("{}/oauth/authorize?", app.address)),
        "{url}"
    );

    let browser = OidcBrowser::new(app);
    let back = browser.authorize(url.as_str(), USER, Decision::Allow).await;
    assert_eq!(browser.logins.get(), 1, "the user signed in on the way");
    assert_eq!(browser.consents.get(), 1, "and allowed the application");
    assert!(
        is_redirect_to(&back, rp.redirect_uri().unwrap().as_str()),
        "{back}"
    );
    let query = query_of(&back);
    assert_eq!(query.get("state"), Some(state.secret()), "{back}");
    assert_eq!(query.get("iss"), Some(&app.address), "RFC 9207: {back}");
    let code = query
        .get("code")
        .unwrap_or_else(|| panic!("a code: {back}"));

    let tokens = rp
        .exchange_code(AuthorizationCode::new(code.clone()))
        .unwrap()
        .set_pkce_verifier(verifier)
        .request_async(&http())
        .await
        .unwrap_or_else(|e| panic!("the code exchange by openidconnect: {e:?}"));
    let id_token = tokens.id_token().expect("an ID token");
    let id_verifier = rp.id_token_verifier();
    let claims = id_token
        .claims(&id_verifier, &nonce)
        .unwrap_or_else(|e| panic!("the ID token does not verify: {e:?}"))
        .clone();
    let alg = id_token.signing_alg().unwrap().clone();
    let expected = AccessTokenHash::from_token(
        tokens.access_token(),
        &alg,
        id_token.signing_key(&id_verifier).unwrap(),
    )
    .unwrap();
    assert_eq!(
        claims.access_token_hash(),
        Some(&expected),
        "at_hash binds the access token"
    );
    SignedIn {
        tokens,
        claims,
        alg,
    }
}

#[tokio::test]
async fn the_openidconnect_crate_signs_a_user_in_reads_userinfo_and_refreshes() {
    let (app, registered) = provider_with(&AppSpec::default()).await;
    let rp = relying_party(&app, &registered).await;

    let signed_in = sign_in(&app, &rp, &["email", "offline_access"]).await;

    // The ID token, as the crate verified it.
    let claims = &signed_in.claims;
    assert_eq!(signed_in.alg, CoreJwsSigningAlgorithm::EcdsaP256Sha256);
    assert_eq!(claims.subject().as_str(), app.user_id(USER));
    assert_eq!(claims.issuer().as_str(), app.address);
    assert_eq!(claims.audiences().len(), 1, "{:?}", claims.audiences());
    assert_eq!(claims.audiences()[0].as_str(), registered.id);
    assert_eq!(claims.email().map(|e| e.as_str()), Some(USER));
    assert_eq!(claims.email_verified(), Some(false));
    assert!(claims.auth_time().is_some(), "auth_time");
    let amr: Vec<&str> = claims
        .auth_method_refs()
        .expect("amr")
        .iter()
        .map(|m| m.as_str())
        .collect();
    assert!(amr.contains(&"pwd"), "{amr:?}");
    let granted: Vec<&str> = signed_in
        .tokens
        .scopes()
        .expect("the granted scopes")
        .iter()
        .map(|s| s.as_str())
        .collect();
    for scope in ["openid", "email", "offline_access"] {
        assert!(granted.contains(&scope), "{scope} in {granted:?}");
    }

    // Userinfo, for the same subject.
    let info: CoreUserInfoClaims = rp
        .user_info(
            signed_in.tokens.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http())
        .await
        .unwrap_or_else(|e| panic!("userinfo by openidconnect: {e:?}"));
    assert_eq!(info.email().map(|e| e.as_str()), Some(USER));
    assert_eq!(info.email_verified(), Some(false));

    // offline_access: a refresh token, which rotates.
    let refresh = signed_in
        .tokens
        .refresh_token()
        .expect("a refresh token with offline_access");
    let refreshed = rp
        .exchange_refresh_token(refresh)
        .unwrap()
        .request_async(&http())
        .await
        .unwrap_or_else(|e| panic!("the refresh by openidconnect: {e:?}"));
    let new_refresh = refreshed.refresh_token().expect("a new refresh token");
    assert_ne!(new_refresh.secret(), refresh.secret(), "rotated");
    let info: CoreUserInfoClaims = rp
        .user_info(
            refreshed.access_token().clone(),
            Some(claims.subject().clone()),
        )
        .unwrap()
        .request_async(&http())
        .await
        .unwrap_or_else(|e| panic!("userinfo with the refreshed token: {e:?}"));
    assert_eq!(info.email().map(|e| e.as_str()), Some(USER));

    // The successor rotates in its turn; the first token, whose successor has reached the
    // application, is then refused, and that replay ends the family.
    let third = rp
        .exchange_refresh_token(new_refresh)
        .unwrap()
        .request_async(&http())
        .await
        .unwrap_or_else(|e| panic!("the second refresh: {e:?}"));
    let third = third.refresh_token().expect("a third refresh token");
    for (token, what) in [
        (refresh, "the first refresh token"),
        (third, "the latest one"),
    ] {
        match rp
            .exchange_refresh_token(token)
            .unwrap()
            .request_async(&http())
            .await
        {
            Err(RequestTokenError::ServerResponse(error)) => {
                assert_eq!(
                    error.error(),
                    &CoreErrorResponseType::InvalidGrant,
                    "{what}: {error:?}"
                )
            }
            other => panic!("{what} was not refused as invalid_grant: {other:?}"),
        }
    }
}

#[tokio::test]
async fn without_offline_access_there_is_no_refresh_token() {
    let (app, registered) = provider_with(&AppSpec::default()).await;
    let rp = relying_party(&app, &registered).await;

    let signed_in = sign_in(&app, &rp, &[]).await;

    assert!(signed_in.tokens.refresh_token().is_none());
    assert_eq!(signed_in.claims.email(), None, "no email scope, no email");
    assert_eq!(signed_in.claims.subject().as_str(), app.user_id(USER));
}

#[tokio::test]
async fn an_application_registered_for_rs256_gets_rs256_id_tokens_the_crate_verifies() {
    let spec = AppSpec {
        alg: Some("RS256".into()),
        ..AppSpec::default()
    };
    let (app, registered) = provider_with(&spec).await;
    let rp = relying_party(&app, &registered).await;

    let signed_in = sign_in(&app, &rp, &["email"]).await;

    assert_eq!(signed_in.alg, CoreJwsSigningAlgorithm::RsaSsaPkcs1V15Sha256);
    assert_eq!(signed_in.claims.subject().as_str(), app.user_id(USER));
    assert_eq!(signed_in.claims.email().map(|e| e.as_str()), Some(USER));
}

#[tokio::test]
async fn a_public_client_signs_in_with_pkce_alone() {
    let spec = AppSpec {
        name: "Acme Mobile".into(),
        redirect_uris: vec!["http://127.0.0.1:8765/callback".into()],
        public: true,
        ..AppSpec::default()
    };
    let (app, registered) = provider_with(&spec).await;
    assert_eq!(registered.secret, None, "a public client has no secret");
    let rp = relying_party(&app, &registered).await;

    let signed_in = sign_in(&app, &rp, &["email", "offline_access"]).await;

    assert_eq!(signed_in.claims.subject().as_str(), app.user_id(USER));
    let refresh = signed_in.tokens.refresh_token().expect("a refresh token");
    let refreshed = rp
        .exchange_refresh_token(refresh)
        .unwrap()
        .request_async(&http())
        .await
        .unwrap_or_else(|e| panic!("a public client's refresh: {e:?}"));
    assert_ne!(
        refreshed.refresh_token().expect("rotated").secret(),
        refresh.secret()
    );
}
