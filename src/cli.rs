//! The command line: `serve` (the default), `migrate`, `create-superuser`, `keys generate`,
//! `clients create`.

use std::io::BufRead;

use base64::Engine as _;
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::auth::keys::{generate_jwks, generate_shared_secret};
use crate::config::{Environment, JwtAlgorithm, Settings};
use crate::db::{self, users, Creation};
use crate::domain::{printable, ClientName, Email, IdTokenAlgorithm, RedirectUri, Scopes};
use crate::services;
use crate::services::context::Context;
use crate::startup::{assemble, Application};

/// Gatehouse: sign-up, login and JWT tokens in the fastapi-users HTTP dialect.
///
/// Configuration comes from the environment and a `.env` file; see `.env.example`.
#[derive(Debug, Parser)]
#[command(name = "gatehouse", version, about)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Apply pending migrations, then serve HTTP on BIND_ADDR (the default command).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Create a superuser, or promote an existing user to superuser.
    CreateSuperuser {
        /// The superuser's email address.
        #[arg(long)]
        email: String,
        /// Read the password from the first line of standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Manage signing keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Manage clients: machine clients (services that get tokens with a client id and secret)
    /// and applications that sign their users in with Gatehouse (OpenID Connect).
    Clients {
        #[command(subcommand)]
        command: ClientsCommand,
    },
}

#[derive(Debug, Subcommand)]
pub enum ClientsCommand {
    /// Register a client; prints its id and secret (the secret is shown only once). With
    /// `--redirect-uri` it is an application whose users "Log in with Gatehouse".
    Create {
        /// A name that tells people what the client is, e.g. "billing service".
        #[arg(long)]
        name: String,
        /// A scope the client may ask for with its own credentials (repeat for several).
        #[arg(long = "scope", value_name = "SCOPE")]
        scopes: Vec<String>,
        /// Where the application receives its users back after they sign in: an exact https
        /// URL, or http on localhost (repeat for several).
        #[arg(long = "redirect-uri", value_name = "URL")]
        redirect_uris: Vec<String>,
        /// Where the application may send its users after they sign out (repeat for several).
        #[arg(long = "post-logout-redirect-uri", value_name = "URL")]
        post_logout_redirect_uris: Vec<String>,
        /// A browser or mobile app, which cannot keep a secret: no secret, PKCE only.
        #[arg(long)]
        public: bool,
        /// A first-party application: its users are not asked for consent.
        #[arg(long)]
        skip_consent: bool,
        /// How its ID tokens are signed.
        #[arg(long, value_name = "ALG", default_value = "ES256", value_parser = ["ES256", "RS256"])]
        id_token_alg: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum KeysCommand {
    /// Print a new ES256 JWK set as a `JWT_JWKS=…` line (append it to .env), and its public half.
    Generate {
        /// Print an HS256 shared secret instead (`JWT_ALGORITHM=HS256` and `JWT_SECRET=…`).
        #[arg(long)]
        hs256: bool,
    },
}

/// Makes every file and directory the process creates private to its user (0600 and 0700),
/// whatever umask it was started with: the database and its `-wal`/`-shm` files hold password
/// hashes, and the outbox holds live reset links. Call it first, before any file is opened.
pub fn keep_created_files_private() {
    #[cfg(unix)]
    // SAFETY: umask only sets the process's file-creation mask; it cannot fail.
    unsafe {
        libc::umask(0o077);
    }
}

/// Starts the logger (`RUST_LOG`, `info` by default), in env_logger's usual layout, with every
/// message made printable: a value inside it (a username typed into a form, a header) cannot
/// break the line and forge another.
pub fn start_logger() {
    use std::io::Write as _;
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info"))
        .format(|buf, record| {
            let level = buf.default_level_style(record.level());
            writeln!(
                buf,
                "[{} {level}{:<5}{level:#} {}] {}",
                buf.timestamp(),
                record.level(),
                record.target(),
                printable(&record.args().to_string())
            )
        })
        .init();
}

/// A failure worth telling the operator about, in one line.
pub type CliResult = Result<(), Box<dyn std::error::Error>>;

pub async fn run(cli: Cli) -> CliResult {
    match cli.command.unwrap_or(Command::Serve) {
        Command::Keys {
            command: KeysCommand::Generate { hs256 },
        } => {
            if hs256 {
                shared_secret_generate();
            } else {
                keys_generate();
            }
            Ok(())
        }
        Command::Serve => serve(Settings::from_env()?).await,
        Command::Migrate => migrate(&Settings::from_env()?).await,
        Command::CreateSuperuser {
            email,
            password_stdin,
        } => create_superuser(&Settings::from_env()?, &email, password_stdin).await,
        Command::Clients { command } => create_client(&Settings::from_env()?, command).await,
    }
}

async fn serve(settings: Settings) -> CliResult {
    let summary = format!(
        "database {}, {}, {} mode",
        settings.database_url,
        match settings.jwt.algorithm {
            JwtAlgorithm::Es256 => "ES256",
            JwtAlgorithm::Hs256 => "HS256",
        },
        match settings.environment {
            Environment::Development => "development",
            Environment::Production => "production",
        }
    );
    let host = settings
        .bind_addr
        .rsplit_once(':')
        .map_or("127.0.0.1", |(host, _)| host)
        .to_owned();
    let app = Application::build(settings).await?;
    log::info!(
        "Gatehouse listening on http://{host}:{} ({summary})",
        app.port()
    );
    app.run_until_stopped().await?;
    Ok(())
}

async fn migrate(settings: &Settings) -> CliResult {
    let pool = db::connect(&settings.database_url, settings.pool(), Creation::Allowed)?;
    let applied = db::migrate(&pool)?;
    if applied.is_empty() {
        println!("{}: up to date", settings.database_url);
    }
    for name in applied {
        println!("applied {name}");
    }
    Ok(())
}

async fn create_superuser(settings: &Settings, email: &str, password_stdin: bool) -> CliResult {
    let email = Email::parse(email)?;
    let state = assemble(settings)?.state;
    let ctx = Context::command_line();
    let normalized = email.normalized();
    let existing = db::run(&state.pool, move |conn| {
        users::find_by_email(conn, &normalized)
    })
    .await?;
    if let Some(user) = existing {
        let changes = services::users::AdminChanges {
            is_superuser: Some(true),
            is_active: Some(true),
            ..Default::default()
        };
        services::users::update_any(&state, &ctx, user.id, changes).await?;
        println!("{} is now a superuser", user.email);
        return Ok(());
    }
    let password = read_password(password_stdin)?;
    let user = services::users::create(&state, &ctx, email, password, true)
        .await
        .map_err(|e| match e {
            services::ServiceError::WeakPassword(violation) => violation.to_string(),
            other => other.to_string(),
        })?;
    println!("created superuser {} ({})", user.email, user.id);
    Ok(())
}

async fn create_client(settings: &Settings, command: ClientsCommand) -> CliResult {
    let ClientsCommand::Create {
        name,
        scopes,
        redirect_uris,
        post_logout_redirect_uris,
        public,
        skip_consent,
        id_token_alg,
    } = command;
    let new = services::clients::NewClient {
        name: ClientName::parse(&name)?,
        scopes: Scopes::parse_each(scopes.iter().map(String::as_str))?,
        app: services::clients::AppSettings {
            redirect_uris: RedirectUri::parse_each(redirect_uris.iter().map(String::as_str))?,
            post_logout_redirect_uris: RedirectUri::parse_each(
                post_logout_redirect_uris.iter().map(String::as_str),
            )?,
            public,
            skip_consent,
            id_token_alg: IdTokenAlgorithm::parse(&id_token_alg)
                .ok_or("--id-token-alg must be ES256 or RS256")?,
        },
    };
    let state = assemble(settings)?.state;
    let ctx = Context::command_line();
    let registered = services::clients::register(&state, &ctx, new).await?;
    let client = registered.client;
    let kind = if client.is_application() {
        "Application"
    } else {
        "Machine client"
    };
    match &registered.secret {
        Some(_) => println!(
            "# {kind} \"{}\". The secret is shown only this once.",
            client.name
        ),
        None => println!("# {kind} \"{}\" (public: no secret).", client.name),
    }
    println!("client_id={}", client.id);
    if let Some(secret) = &registered.secret {
        println!("client_secret={}", secret.expose_secret());
    }
    println!("scopes={}", client.scopes.to_space_separated());
    for uri in &client.redirect_uris {
        println!("redirect_uri={}", uri.as_str());
    }
    Ok(())
}

fn read_password(from_stdin: bool) -> Result<SecretString, Box<dyn std::error::Error>> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned().into());
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Password (again): ")?;
    if first != second {
        return Err("the passwords do not match".into());
    }
    Ok(first.into())
}

fn shared_secret_generate() {
    let secret = generate_shared_secret();
    println!("# A new HS256 secret (32 random bytes). Keep these lines secret; add them to the");
    println!("# environment or .env. Every instance and every verifier needs the same secret.");
    println!("JWT_ALGORITHM=HS256");
    println!("JWT_SECRET={}", secret.expose_secret());
}

fn keys_generate() {
    let (private, public) = generate_jwks();
    let encoded = base64::engine::general_purpose::STANDARD.encode(private.expose_secret());
    let public = serde_json::to_string(&public).expect("a JWK set serializes");
    println!(
        "# A new ES256 signing key. Keep this line secret; add it to the environment or .env."
    );
    println!("# To rotate, put the new key first in the set and keep the old one until its tokens expire.");
    println!("JWT_JWKS={encoded}");
    println!("# Public JWK set (served at /.well-known/jwks.json): {public}");
}
