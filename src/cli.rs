//! The command line: `serve` (the default), `migrate`, `create-superuser`, `keys generate`,
//! `clients create`, `import fastapi-users`, `seed`.

use std::io::BufRead;

use base64::Engine as _;
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};

use crate::auth::keys::{generate_jwks, generate_shared_secret};
use crate::config::{Environment, JwtAlgorithm, Settings};
use crate::db::fastapi_users::{Source, TableName};
use crate::db::{self, users, Creation};
use crate::domain::{printable, ClientName, Email, IdTokenAlgorithm, RedirectUri, Scopes};
use crate::services;
use crate::services::context::Context;
use crate::services::import::Outcome;
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
    /// Bring users over from another system.
    Import {
        #[command(subcommand)]
        command: ImportCommand,
    },
    /// Fill a new database with many accounts and audit events, to measure Gatehouse at the
    /// size of a large service (see the README's "Performance").
    ///
    /// Account n is user{n}@example{n % 50}.com, all with the same password; a third are
    /// unverified and seven in ten have signed in. Events are logins, logouts, failed logins
    /// and password changes about them, spread over the accounts' lifetime. Refused in
    /// production and on a database that has accounts already.
    Seed {
        /// How many accounts.
        #[arg(long, default_value_t = 1_000_000, value_parser = clap::value_parser!(i64).range(1..=100_000_000))]
        users: i64,
        /// How many audit events.
        #[arg(long, default_value_t = 10_000_000, value_parser = clap::value_parser!(i64).range(0..=1_000_000_000))]
        events: i64,
        /// Read the accounts' password from the first line of standard input instead of
        /// prompting.
        #[arg(long)]
        password_stdin: bool,
    },
}

#[derive(Debug, Subcommand)]
pub enum ImportCommand {
    /// Copy the users of a fastapi-users database into Gatehouse, with their ids, addresses,
    /// flags and password hashes.
    ///
    /// Password hashes are kept as they are (bcrypt, as passlib wrote them, and argon2, as
    /// pwdlib does): each user signs in with the same password, and the hash is replaced by
    /// Gatehouse's own at the first login. Users already here (by id) are skipped, so running
    /// it again is harmless. A user is refused, and named, when its address is not one
    /// Gatehouse accepts, is the same address as another account's (in another letter case,
    /// say: accounts are never merged), or when its password hash is of an unknown format.
    /// Exits with status 1 when any user was refused, after importing the others.
    #[command(name = "fastapi-users")]
    FastapiUsers {
        /// The fastapi-users database, as SQLAlchemy's URL: sqlite:///app.db (relative),
        /// sqlite:////var/lib/app.db (absolute), postgresql://user:password@host/db; a driver
        /// such as +aiosqlite or +asyncpg is ignored.
        #[arg(long = "from", value_name = "URL")]
        from: String,
        /// The users table.
        #[arg(long, default_value = "user", value_name = "NAME")]
        table: String,
        /// Show what would be imported, skipped and refused, and write nothing.
        #[arg(long)]
        dry_run: bool,
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
    /// Print a new JWK set as a `JWT_JWKS=…` line (append it to .env), and its public half.
    ///
    /// The set holds an ES256 key (P-256; it signs access tokens and ID tokens) and an RS256
    /// key (RSA-2048; it signs only the ID tokens of applications registered for RS256).
    /// To rotate the ES256 key: add a new one to the set, set JWT_SIGNING_KID to its kid
    /// once verifiers have fetched the new JWKS, and drop the old key when its last access
    /// token has expired.
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
        Command::Import {
            command:
                ImportCommand::FastapiUsers {
                    from,
                    table,
                    dry_run,
                },
        } => import_fastapi_users(&Settings::from_env()?, &from, &table, dry_run).await,
        Command::Seed {
            users,
            events,
            password_stdin,
        } => seed(&Settings::from_env()?, users, events, password_stdin).await,
    }
}

async fn seed(settings: &Settings, users: i64, events: i64, password_stdin: bool) -> CliResult {
    if settings.environment == Environment::Production {
        return Err("seed makes made-up accounts: it is refused in production".into());
    }
    let state = assemble(settings)?.state;
    let existing = services::seed::existing_users(&state).await?;
    if existing > 0 {
        return Err(format!(
            "{} has {existing} account(s) already: seed fills a new database only",
            settings.database_url
        )
        .into());
    }
    let password = read_password(password_stdin)?;
    let progress = |what: &str, done: i64, of: i64| eprint!("\r{what}: {done} of {of}   ");
    let took = services::seed::fill(&state, users, events, password, progress).await?;
    eprintln!();
    println!(
        "{users} accounts in {:.1} s, {events} audit events in {:.1} s",
        took.users.as_secs_f64(),
        took.events.as_secs_f64()
    );
    Ok(())
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

async fn import_fastapi_users(
    settings: &Settings,
    from: &str,
    table: &str,
    dry_run: bool,
) -> CliResult {
    let source = Source::parse(from)?;
    let table = TableName::parse(table)?;
    let state = assemble(settings)?.state;
    let ctx = Context::command_line();
    println!(
        "{} users of fastapi-users from {source}, table \"{table}\"{}",
        if dry_run { "Checking" } else { "Importing" },
        if dry_run {
            " (dry run: nothing is written)"
        } else {
            ""
        }
    );
    let report = services::import::fastapi_users(&state, &ctx, source, table, dry_run).await?;
    for line in &report.lines {
        let (verb, note) = match &line.outcome {
            Outcome::Imported(format) if dry_run => ("would import", format),
            Outcome::Imported(format) => ("imported", format),
            Outcome::Skipped(why) => ("skipped", why),
            Outcome::Refused(why) => ("refused", why),
        };
        println!("{verb:<12} {} (id {}): {note}", line.email, line.id);
    }
    println!("{}", report.summary());
    if report.refused() > 0 {
        return Err(format!(
            "{} user(s) refused (see above); fix them in fastapi-users and run the import again",
            report.refused()
        )
        .into());
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
        "# A new key set: an ES256 key (access tokens and ID tokens) and an RS256 key (ID tokens"
    );
    println!("# of applications registered for RS256). Keep this line secret; add it to the");
    println!("# environment or .env. To rotate the ES256 key, add a new one to the set, set");
    println!("# JWT_SIGNING_KID to its kid once verifiers have fetched the new JWKS, and drop the");
    println!("# old key when its last access token has expired.");
    println!("JWT_JWKS={encoded}");
    println!("# Public JWK set (served at /.well-known/jwks.json): {public}");
}
