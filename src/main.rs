use clap::Parser;
use gatehouse::cli::{keep_created_files_private, run, start_logger, Cli};
use gatehouse::domain::printable;

#[actix_web::main]
async fn main() -> std::process::ExitCode {
    keep_created_files_private();
    let cli = Cli::parse();
    let _ = dotenvy::dotenv();
    start_logger();
    match run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("gatehouse: {}", printable(&error.to_string()));
            std::process::ExitCode::FAILURE
        }
    }
}
