// @generated automatically by Diesel CLI.

diesel::table! {
    audit_events (id) {
        id -> Text,
        occurred_at -> BigInt,
        event -> Text,
        actor_id -> Nullable<Text>,
        actor_label -> Nullable<Text>,
        subject_id -> Nullable<Text>,
        subject_label -> Nullable<Text>,
        ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        detail -> Nullable<Text>,
        search_text -> Text,
    }
}

diesel::table! {
    authorization_codes (code_hash) {
        code_hash -> Text,
        client_id -> Text,
        user_id -> Text,
        redirect_uri -> Text,
        code_challenge -> Text,
        nonce -> Nullable<Text>,
        scopes -> Text,
        amr -> Text,
        auth_time -> BigInt,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        session_id -> Nullable<Text>,
    }
}

diesel::table! {
    clients (id) {
        id -> Text,
        name -> Text,
        secret_hash -> Text,
        scopes -> Text,
        created_at -> BigInt,
        redirect_uris -> Text,
        post_logout_redirect_uris -> Text,
        is_public -> Bool,
        skip_consent -> Bool,
        id_token_alg -> Text,
    }
}

diesel::table! {
    email_outbox (id) {
        id -> Text,
        recipient -> Text,
        subject -> Text,
        message -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        next_attempt_at -> BigInt,
        claimed_by -> Nullable<Text>,
        claimed_until -> Nullable<BigInt>,
        last_error -> Nullable<Text>,
        created_at -> BigInt,
        sent_at -> Nullable<BigInt>,
        failed_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    email_tokens (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        purpose -> Text,
        email_normalized -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        new_email -> Nullable<Text>,
    }
}

diesel::table! {
    health_probe (id) {
        id -> Integer,
        checked_at -> BigInt,
    }
}

diesel::table! {
    legacy_token_cutoffs (user_id) {
        user_id -> Text,
        cutoff_at -> BigInt,
    }
}

diesel::table! {
    mfa_challenges (token_hash) {
        token_hash -> Text,
        user_id -> Text,
        created_at -> BigInt,
        expires_at -> BigInt,
        used_at -> Nullable<BigInt>,
        failures -> Integer,
    }
}

diesel::table! {
    oauth_consents (user_id, client_id) {
        user_id -> Text,
        client_id -> Text,
        scopes -> Text,
        granted_at -> BigInt,
    }
}

diesel::table! {
    passkeys (id) {
        id -> Text,
        user_id -> Text,
        name -> Text,
        credential_id -> Text,
        credential -> Text,
        created_at -> BigInt,
        last_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    recovery_codes (code_hash) {
        code_hash -> Text,
        user_id -> Text,
        created_at -> BigInt,
        used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    refresh_tokens (token_hash) {
        token_hash -> Text,
        session_id -> Text,
        issued_at -> BigInt,
        expires_at -> BigInt,
        rotated_at -> Nullable<BigInt>,
        generation -> BigInt,
        access_used_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    server_secrets (name) {
        name -> Text,
        secret -> Text,
        created_at -> BigInt,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Text,
        created_at -> BigInt,
        last_used_at -> BigInt,
        expires_at -> BigInt,
        revoked_at -> Nullable<BigInt>,
        user_agent -> Nullable<Text>,
        amr -> Text,
        auth_time -> BigInt,
        client_id -> Nullable<Text>,
        scopes -> Nullable<Text>,
        ip_address -> Nullable<Text>,
    }
}

diesel::table! {
    throttle_counters (counter_key) {
        counter_key -> Text,
        hits -> Integer,
        window_started_at -> BigInt,
        blocked_until -> BigInt,
    }
}

diesel::table! {
    totp_factors (user_id) {
        user_id -> Text,
        sealed_secret -> Text,
        created_at -> BigInt,
        confirmed_at -> Nullable<BigInt>,
        last_used_step -> BigInt,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        email -> Text,
        email_normalized -> Text,
        hashed_password -> Text,
        is_active -> Bool,
        is_superuser -> Bool,
        is_verified -> Bool,
        created_at -> BigInt,
        updated_at -> BigInt,
        email_skeleton -> Nullable<Text>,
        last_login_at -> Nullable<BigInt>,
    }
}

diesel::table! {
    webauthn_ceremonies (id) {
        id -> Text,
        user_id -> Nullable<Text>,
        purpose -> Text,
        state -> Text,
        expires_at -> BigInt,
    }
}

diesel::joinable!(authorization_codes -> clients (client_id));
diesel::joinable!(authorization_codes -> users (user_id));
diesel::joinable!(email_tokens -> users (user_id));
diesel::joinable!(legacy_token_cutoffs -> users (user_id));
diesel::joinable!(mfa_challenges -> users (user_id));
diesel::joinable!(oauth_consents -> clients (client_id));
diesel::joinable!(oauth_consents -> users (user_id));
diesel::joinable!(passkeys -> users (user_id));
diesel::joinable!(recovery_codes -> users (user_id));
diesel::joinable!(refresh_tokens -> sessions (session_id));
diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(totp_factors -> users (user_id));
diesel::joinable!(webauthn_ceremonies -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_events,
    authorization_codes,
    clients,
    email_outbox,
    email_tokens,
    health_probe,
    legacy_token_cutoffs,
    mfa_challenges,
    oauth_consents,
    passkeys,
    recovery_codes,
    refresh_tokens,
    server_secrets,
    sessions,
    throttle_counters,
    totp_factors,
    users,
    webauthn_ceremonies,
);
