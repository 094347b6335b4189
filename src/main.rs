use clap::Parser;
use gatehouse::cli::{keep_created_files_private, run, Cli};

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    keep_created_files_private();
    let cli = Cli::parse();
    let _ = dotenvy::dotenv();
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gatehouse: {error}");
            std::process::ExitCode::FAILURE
        }
    }
}
